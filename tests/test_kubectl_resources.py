"""The CRD and IstioOperator null_resources: triggers, provisioners, dependencies, bytes."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from constructs.istio_app import build_app
from constructs.istio_operator_manifest import MANIFESTS, render
from constructs.workspace_config import WorkspaceConfig
from tests.conftest import MINIMAL_CONFIG, shipped, synth_stack

Workspace = Callable[..., WorkspaceConfig]


def self_target(source: str) -> list[str]:
    return [f"${{self.{source}.{key}}}" for key in ("credentials", "kubeconfig", "context")]


def null_resources(stack: dict[str, Any]) -> dict[str, Any]:
    resources: dict[str, Any] = stack["resource"]["null_resource"]
    return resources


def removals(stack: dict[str, Any]) -> dict[str, Any]:
    resources: dict[str, Any] = stack["resource"]["terraform_data"]
    return resources


def steps(
    resource: dict[str, Any], target: list[str] | None = None
) -> list[tuple[str, str, str | None]]:
    """(action, argument, when) for each local-exec provisioner, in order.

    Apply steps read the target from their triggers; destroy steps name `target` literally."""
    out = []
    for provisioner in resource["provisioner"]:
        local = provisioner["local-exec"]
        interpreter = local["interpreter"]
        assert interpreter[0] == "/bin/sh"
        assert re.fullmatch(
            r"assets/kubectl_script_[0-9A-F]+/[0-9A-F]+/kubectl_run\.sh", interpreter[1]
        )
        if local.get("when") == "destroy":
            assert interpreter[2:5] == target
        else:
            assert interpreter[2:5] == self_target("triggers")
        out.append((interpreter[5], local["command"], local.get("when")))
    return out


def test_crd_is_applied_then_waited_for_and_triggered_by_its_sha1() -> None:
    stack = synth_stack(shipped("staging"))
    crd = null_resources(stack)["operator_crd"]
    sha1 = hashlib.sha1((MANIFESTS / "1.23.6/crd-operator.yaml").read_bytes()).hexdigest()
    assert crd["triggers"] == {
        "credentials": "kubeconfig",
        "kubeconfig": "~/.kube/config",
        "context": "staging",
        "manifest_sha1": sha1,
        "removal_id": "${terraform_data.operator_crd_removal.id}",
    }
    [(apply, path, when), wait] = steps(crd)
    assert (apply, when) == ("apply", None)
    assert re.fullmatch(r"assets/operator_crd_file_[0-9A-F]+/[0-9A-F]+/crd-operator\.yaml", path)
    assert wait == ("wait-established", "istiooperators.install.istio.io", None)
    assert crd["depends_on"] == ["terraform_data.operator_crd_removal"]


def test_istio_operator_is_triggered_by_the_rendered_bytes_only() -> None:
    config = shipped("staging")
    control_plane = null_resources(synth_stack(config))["control_plane"]
    assert control_plane["triggers"] == {
        "credentials": "kubeconfig",
        "kubeconfig": "~/.kube/config",
        "context": "staging",
        "manifest_sha1": render(config).sha1,
        # Whatever replaces the removal (which deletes the IstioOperator) applies it again.
        "removal_id": "${terraform_data.control_plane_removal.id}",
    }
    [(action, path, when)] = steps(control_plane)
    assert (action, when) == ("apply", None)
    assert path.endswith("/istio-operator.yaml")


OPERATOR_AND_CRD = [
    "null_resource.operator_crd",
    "kubernetes_deployment_v1.istio_operator",
    "kubernetes_cluster_role_v1.istio_operator",
    "kubernetes_cluster_role_binding_v1.istio_operator",
    "kubernetes_service_account_v1.istio_operator",
    "kubernetes_namespace_v1.istio_system",
]


def test_istio_operator_waits_for_the_crd_the_operator_and_its_namespace() -> None:
    resources = null_resources(synth_stack(shipped("staging")))
    assert resources["control_plane"]["depends_on"] == [
        *OPERATOR_AND_CRD,
        "terraform_data.control_plane_removal",
    ]
    # The removal depends on the same, so on destroy it runs while the operator still runs.
    removal = removals(synth_stack(shipped("staging")))["control_plane_removal"]
    assert removal["depends_on"] == OPERATOR_AND_CRD


def test_the_operator_is_installed_after_the_crd() -> None:
    stack = synth_stack(shipped("staging"))
    for tf_type in ("kubernetes_cluster_role_v1", "kubernetes_namespace_v1"):
        for name, body in stack["resource"][tf_type].items():
            if name != "ads_api":
                assert body["depends_on"] == ["null_resource.operator_crd"], (tf_type, name)


def test_destroy_deletes_the_istio_operator_then_the_crd_at_the_configured_target() -> None:
    resources = removals(synth_stack(shipped("production")))
    removal = resources["control_plane_removal"]
    # A new name or namespace replaces the removal (the old IstioOperator is deleted). The
    # cluster target and the timeout are the configuration's, as the provider's are on destroy,
    # so the removal stores neither.
    assert removal["triggers_replace"] == {
        "namespace": "istio-system",
        "name": "default-istiocontrolplane",
    }
    assert "input" not in removal
    target = ["kubeconfig", "~/.kube/config", "production"]
    assert steps(removal, target) == [
        (
            "delete-istiooperator",
            "${self.triggers_replace.namespace}/${self.triggers_replace.name}/600",
            "destroy",
        )
    ]
    # Destroy runs in reverse dependency order: the IstioOperator removal depends on the CRD
    # and the operator, so it runs first; the CRD removal is depended on by the CRD apply,
    # which everything else depends on, so it runs last.
    assert removal["depends_on"] == OPERATOR_AND_CRD
    crd_removal = resources["operator_crd_removal"]
    assert crd_removal["triggers_replace"] == {"crd": "istiooperators.install.istio.io"}
    assert steps(crd_removal, target) == [("delete-crd", "${self.triggers_replace.crd}", "destroy")]
    assert "depends_on" not in crd_removal


def test_provisioners_refer_only_to_self() -> None:
    stack = synth_stack(shipped("staging"))
    for resources in (null_resources(stack), removals(stack)):
        for name, resource in resources.items():
            text = json.dumps(resource["provisioner"])
            for reference in re.findall(r"\$\{([^}]*)\}", text):
                assert reference.startswith(("self.triggers.", "self.triggers_replace.")), (
                    name,
                    reference,
                )


def test_environment_credentials_reach_kubectl_as_a_mode_not_values(workspace: Workspace) -> None:
    config = workspace('cluster: {credentials: environment}\nistio_version: "1.7.3"\n')
    stack = synth_stack(config)
    targets = [r["triggers"] for r in null_resources(stack).values()]
    assert len(targets) == 2
    for target in targets:
        assert (target["credentials"], target["kubeconfig"], target["context"]) == (
            "environment",
            "",
            "",
        )
    for removal in removals(stack).values():
        steps(removal, ["environment", "", ""])


def test_crd_file_follows_the_version(workspace: Workspace) -> None:
    config = workspace(MINIMAL_CONFIG.replace("1.23.6", "1.7.3"))
    sha1 = hashlib.sha1((MANIFESTS / "1.7.3/crd-operator.yaml").read_bytes()).hexdigest()
    assert null_resources(synth_stack(config))["operator_crd"]["triggers"]["manifest_sha1"] == sha1


def test_injection_namespaces_are_labelled(workspace: Workspace) -> None:
    config = workspace(MINIMAL_CONFIG + "injection_namespaces: [ads-api, web]\n")
    namespaces = synth_stack(config)["resource"]["kubernetes_namespace_v1"]
    assert namespaces["ads_api"]["metadata"] == {
        "name": "ads-api",
        "labels": {"istio-injection": "enabled"},
    }
    assert namespaces["web"]["metadata"]["name"] == "web"


def test_namespace_labels_are_added_beside_the_injection_label(workspace: Workspace) -> None:
    config = workspace(
        MINIMAL_CONFIG + "injection_namespaces: [ads-api, web]\n"
        "namespace_labels: {ads-api: {team: ads, example.com/cost-center: '4711'}}\n"
    )
    namespaces = synth_stack(config)["resource"]["kubernetes_namespace_v1"]
    assert namespaces["ads_api"]["metadata"]["labels"] == {
        "example.com/cost-center": "4711",
        "istio-injection": "enabled",
        "team": "ads",
    }
    assert namespaces["web"]["metadata"]["labels"] == {"istio-injection": "enabled"}


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("out")
    build_app([shipped("staging"), shipped("production")], str(outdir)).synth()
    return outdir


@pytest.mark.parametrize("workspace_name", ["staging", "production"])
def test_files_kubectl_reads_are_exactly_the_hashed_bytes(
    synthesized: Path, workspace_name: str
) -> None:
    stack_dir = synthesized / "stacks" / workspace_name
    stack = json.loads((stack_dir / "cdk.tf.json").read_text())
    resources = null_resources(stack)
    for name in ("operator_crd", "control_plane"):
        [(_, path, _), *_] = steps(resources[name])
        data = (stack_dir / path).read_bytes()
        assert hashlib.sha1(data).hexdigest() == resources[name]["triggers"]["manifest_sha1"]
    [(_, path, _)] = steps(resources["control_plane"])
    assert (stack_dir / path).read_bytes() == render(shipped(workspace_name)).data
    assert b"$(netstat -lnt" in (stack_dir / path).read_bytes()
    script = resources["operator_crd"]["provisioner"][0]["local-exec"]["interpreter"][1]
    assert (stack_dir / script).read_bytes() == (
        MANIFESTS.parent / "constructs/kubectl_run.sh"
    ).read_bytes()
