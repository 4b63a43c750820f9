"""`existing_namespaces`: namespaces the stack only labels, and never creates or deletes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from constructs.workspace_config import WorkspaceConfig
from tests import test_terraform_e2e as e2e
from tests.conftest import MINIMAL_CONFIG, synth_stack
from tests.test_hardening_e2e import events
from tests.test_terraform_e2e import Deployment
from tests.test_workspace_config import problems_of

Workspace = Callable[..., WorkspaceConfig]
deployment = e2e.deployment  # the fixture, shared

EXISTING = """\
injection_namespaces: [ads-api, web]
namespace_labels: {ads-api: {team: ads}}
existing_namespaces: [istio-system, istio-operator, ads-api]
"""


def test_existing_namespaces_are_labelled_not_created(workspace: Workspace) -> None:
    stack = synth_stack(workspace(MINIMAL_CONFIG + EXISTING))
    resources = stack["resource"]
    # Only `web` is the stack's own namespace now.
    assert sorted(resources["kubernetes_namespace_v1"]) == ["web"]
    labels = resources["kubernetes_labels"]
    # 1.23.6 gives istio-system no labels: an existing one needs no resource at all.
    assert sorted(labels) == ["ads_api", "istio_operator"]
    assert labels["ads_api"] == {
        "api_version": "v1",
        "kind": "Namespace",
        "metadata": {"name": "ads-api"},
        "labels": {"istio-injection": "enabled", "team": "ads"},
        "field_manager": "istio-cdktf",
        "force": True,
    }
    assert labels["istio_operator"]["labels"] == {
        "istio-injection": "disabled",
        "istio-operator-managed": "Reconcile",
    }
    assert labels["istio_operator"]["depends_on"] == ["null_resource.operator_crd"]
    # What lives in the operator's namespace waits for its labels; the control plane for nothing
    # of istio-system's.
    account = resources["kubernetes_service_account_v1"]["istio_operator"]
    assert account["depends_on"] == ["kubernetes_labels.istio_operator"]
    control_plane = resources["null_resource"]["control_plane"]["depends_on"]
    assert not any("istio_system" in d for d in control_plane), control_plane


def test_an_existing_watched_namespace_with_labels_is_labelled(workspace: Workspace) -> None:
    config = MINIMAL_CONFIG.replace("1.23.6", "1.7.3") + "existing_namespaces: [istio-system]\n"
    resources = synth_stack(workspace(config))["resource"]
    assert resources["kubernetes_labels"]["istio_system"]["labels"] == {
        "istio-injection": "disabled"
    }
    assert "istio_system" not in resources["kubernetes_namespace_v1"]
    assert (
        "kubernetes_labels.istio_system"
        in resources["null_resource"]["control_plane"]["depends_on"]
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (
            "[kube-system]",
            "config/production.yaml: existing_namespaces: ['kube-system'] is not a namespace "
            "this stack would create (operator.namespace, operator.watched_namespaces, "
            "injection_namespaces: ['istio-operator', 'istio-system'])",
        ),
        (
            "[istio-system, istio-system]",
            "config/production.yaml: existing_namespaces: lists ['istio-system'] more than once",
        ),
    ],
)
def test_existing_namespaces_must_be_the_stacks(tmp_path: Path, value: str, problem: str) -> None:
    assert problems_of(tmp_path, MINIMAL_CONFIG + f"existing_namespaces: {value}\n") == [problem]


def test_existing_namespaces_on_sail_name_sail_s_keys(tmp_path: Path) -> None:
    # On a Sail version the operator's namespace is always created, and there is no
    # operator.watched_namespaces: the message names the keys that version has.
    sail = MINIMAL_CONFIG.replace('"1.23.6"', '"1.30.3"')
    assert problems_of(tmp_path, sail + "existing_namespaces: [sail-operator]\n") == [
        "config/production.yaml: existing_namespaces: ['sail-operator'] is not a namespace "
        "this stack would create (control_plane.namespace, injection_namespaces: "
        "['istio-system'])"
    ]


def test_apply_and_destroy_leave_existing_namespaces_in_place(
    deployment: Callable[[str], Deployment],
) -> None:
    staging = deployment("staging")
    path = staging.project / "config/staging.yaml"
    path.write_text(path.read_text() + "existing_namespaces: [istio-system, ads-api]\n")
    staging.synth()
    created = events(staging.apply().stdout)
    destroyed = events(staging.destroy().stdout)
    for done in (created, destroyed):
        addresses = {address for address, _ in done}
        assert "kubernetes_labels__ads_api" in addresses
        assert not {"kubernetes_namespace_v1__ads_api", "kubernetes_namespace_v1__istio_system"} & (
            addresses
        )
