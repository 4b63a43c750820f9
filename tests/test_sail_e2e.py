"""Real Terraform on a Sail Operator workspace (Istio 1.30.3): apply, change, migrate, destroy.

The same provider-free projection and recording kubectl as tests/test_terraform_e2e.py: the
order of kubectl calls, their flags and the exact bytes on their stdin are what the cluster
would see.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from constructs.istio_releases import SAIL_APIS
from tests.conftest import ROOT
from tests.test_terraform_e2e import Deployment, _said

API = SAIL_APIS["1.30.3"]
LOOKUP = "--request-timeout=60s"
SERVER_SIDE = ["--server-side", "--field-manager=istio-cdktf", "--force-conflicts"]
GUARD = [
    "get",
    "customresourcedefinition",
    "istiooperators.install.istio.io",
    "--ignore-not-found",
    "-o",
    "name",
    "--request-timeout=60s",
]


def shipped_crds() -> bytes:
    """The 20 upstream files, each its own YAML document, in the data's order."""
    upstream = Path("/work/shared/upstream/sail-operator-1.30.3/chart/crds")
    source = upstream if upstream.is_dir() else ROOT / API.crd_dir
    return b"".join(b"---\n" + (source / f).read_bytes() for f in API.crd_files)


@pytest.fixture
def sail(project_copy: Path, tmp_path: Path) -> Callable[[], Deployment]:
    def make() -> Deployment:
        shutil.copy(ROOT / "tests/data/sail-1.30.3.yaml", project_copy / "config/sail.yaml")
        deployed = Deployment(project_copy, "sail", tmp_path / "sail")
        deployed.synth()
        deployed.workdir.terraform("init", "-input=false")
        return deployed

    return make


@pytest.fixture
def applied(sail: Callable[[], Deployment]) -> Deployment:
    deployed = sail()
    deployed.apply()
    deployed.calls()
    return deployed


def test_apply_guards_then_applies_crds_server_side_then_the_istio(
    sail: Callable[[], Deployment],
) -> None:
    deployed = sail()
    result = deployed.apply()
    calls = deployed.calls()
    kubeconfig = str(deployed.home / ".kube" / "config")
    assert {c.target for c in calls} == {(kubeconfig, "staging")}
    [guard, iops, crd_apply, crd_wait, istio_apply] = calls
    assert guard.verb == GUARD
    assert iops.verb[:2] == ["get", "istiooperators.install.istio.io"]
    assert crd_apply.verb == ["apply", *SERVER_SIDE, "-f", "-"]
    assert crd_apply.stdin == shipped_crds()
    assert crd_wait.verb == ["wait", "--for=condition=Established", "--timeout=120s", "-f", "-"]
    assert crd_wait.stdin == shipped_crds()
    assert istio_apply.verb == ["apply", *SERVER_SIDE, "-f", "-"]
    assert istio_apply.stdin == deployed.asset("istio.yaml")
    assert b"kind: Istio\n" in istio_apply.stdin

    order = re.findall(r"terraform_data\.(\S+): Creation complete", result.stdout)
    istio = order.index("null_resource__istio")
    for address in (
        "kubernetes_namespace_v1__istio_system",
        "null_resource__sail_crds",
        "kubernetes_namespace_v1__sail_operator",
        "kubernetes_deployment_v1__sail_operator",
        "kubernetes_cluster_role_binding_v1__sail_operator",
    ):
        assert order.index(address) < istio, (address, order)
    crds = order.index("null_resource__sail_crds")
    assert order.index("kubernetes_namespace_v1__istio_system") < crds
    assert crds < order.index("kubernetes_deployment_v1__sail_operator")


def test_a_pilot_value_reapplies_only_the_istio(applied: Deployment) -> None:
    applied.edit(
        "config/sail.yaml", "limits: {cpu: 100m, memory: 256Mi}", "limits: {cpu: 200m, memory: 1Gi}"
    )
    applied.synth()
    result = applied.apply()
    assert "1 added, 0 changed, 1 destroyed" in result.stdout
    [call] = applied.calls()
    assert call.verb == ["apply", *SERVER_SIDE, "-f", "-"]
    assert b'limits: {"cpu": "200m", "memory": "1Gi"}' in call.stdin
    applied.synth()
    assert "0 added, 0 changed, 0 destroyed" in applied.apply().stdout
    assert applied.calls() == []


def test_editing_one_crd_file_reapplies_the_crds_only(applied: Deployment) -> None:
    applied.edit(
        f"manifests/{API.crd_dir}/networking.istio.io_gateways.yaml",
        "  group: networking.istio.io\n",
        "  group: networking.istio.io\n  # edited\n",
    )
    applied.synth()
    plan = applied.workdir.terraform("plan", "-input=false").stdout
    # The plan names the one CRD whose bytes changed.
    changed = re.findall(r'~ "([a-z.]+)"\s+= "[0-9a-f]{40}" -> "[0-9a-f]{40}"', plan)
    assert changed == ["gateways.networking.istio.io"], plan
    applied.apply()
    [guard, _, apply, wait] = applied.calls()
    assert guard.verb == GUARD
    assert b"  # edited\n" in apply.stdin
    assert wait.verb[0] == "wait"


def test_the_guard_refuses_sail_steps_while_an_istio_operator_exists(
    sail: Callable[[], Deployment],
) -> None:
    deployed = sail()
    deployed.workdir.env["KUBECTL_ISTIOOPERATORS"] = "istio-system   default-istiocontrolplane\n"
    result = deployed.apply(check=False)
    assert result.returncode != 0
    said = _said(result)
    assert (
        "not installing the Sail Operator: IstioOperators remain "
        "(istio-system/default-istiocontrolplane), and two control planes would fight" in said
    )
    assert "destroy -target=terraform_data.control_plane_removal" in said
    calls = deployed.calls()
    assert [c.verb[0] for c in calls] == ["get", "get"]  # asked, and nothing applied
    created = re.findall(r"terraform_data\.(\S+): Creation complete", result.stdout)
    assert not [c for c in created if "sail_operator" in c or c == "null_resource__istio"]


def test_destroy_deletes_the_istio_waits_then_operator_crds_namespaces(
    applied: Deployment,
) -> None:
    result = applied.destroy()
    calls = applied.calls()
    verbs = [c.verb for c in calls]
    names = list(API.crd_names())
    assert verbs == [
        ["get", "customresourcedefinition", "istios.sailoperator.io", "--ignore-not-found",
         "-o", "name", LOOKUP],
        ["get", "istiorevisiontags.sailoperator.io", "default", "--ignore-not-found",
         "-o", "jsonpath={.spec.targetRef.name}", LOOKUP],
        ["delete", "istios.sailoperator.io", "default", "--ignore-not-found",
         "--cascade=foreground", "--wait=false", LOOKUP],
        ["wait", "--for=delete", "istios.sailoperator.io/default",
         "istiorevisions.sailoperator.io/default", "--timeout=600s"],
        ["get", "customresourcedefinition", *names, "--ignore-not-found", "-o", "name", LOOKUP],
        ["get", ",".join(names), "--all-namespaces", "-o", "name", LOOKUP],
        ["delete", "customresourcedefinition", *names, "--ignore-not-found", "--wait=true",
         "--timeout=300s"],
    ]  # fmt: skip
    destroyed = re.findall(r"terraform_data\.(\S+): Destruction complete", result.stdout)
    removal = destroyed.index("istio_removal")
    operator = destroyed.index("kubernetes_deployment_v1__sail_operator")
    crds = destroyed.index("sail_crds_removal")
    assert removal < operator < crds < destroyed.index("kubernetes_namespace_v1__istio_system")
    assert destroyed.index("kubernetes_cluster_role_v1__sail_operator") < crds


def test_destroy_keeps_the_crds_while_resources_of_their_kinds_remain(
    applied: Deployment,
) -> None:
    applied.workdir.env["KUBECTL_CRD_RESOURCES"] = (
        "virtualservice.networking.istio.io/reviews\nistiocni.sailoperator.io/default\n"
    )
    result = applied.workdir.terraform("destroy", "-auto-approve", "-input=false", check=False)
    assert result.returncode != 0
    assert (
        "not deleting the CRDs: resources of their kinds remain "
        "(virtualservice.networking.istio.io/reviews istiocni.sailoperator.io/default)"
        in _said(result)
    )
    assert not [c for c in applied.calls() if c.verb[:2] == ["delete", "customresourcedefinition"]]


def test_a_renamed_istio_gets_a_default_tag_which_destroy_deletes_first(
    sail: Callable[[], Deployment],
) -> None:
    deployed = sail()
    deployed.edit(
        "config/sail.yaml", "  namespace: istio-system ", "  name: mesh\n  namespace: istio-system "
    )
    deployed.synth()
    deployed.apply()
    [*_, istio_apply] = deployed.calls()
    assert b"kind: IstioRevisionTag\nmetadata:\n  name: default\n" in istio_apply.stdin
    deployed.workdir.env["KUBECTL_TAG_TARGET"] = "mesh"
    deployed.destroy()
    verbs = [c.verb for c in deployed.calls()][:5]
    assert [v[:3] for v in verbs[:2]] == [
        ["get", "customresourcedefinition", "istios.sailoperator.io"],
        ["get", "istiorevisiontags.sailoperator.io", "default"],
    ]
    assert verbs[2:] == [
        ["delete", "istiorevisiontags.sailoperator.io", "default", "--ignore-not-found",
         "--wait=false", LOOKUP],
        ["delete", "istios.sailoperator.io", "mesh", "--ignore-not-found",
         "--cascade=foreground", "--wait=false", LOOKUP],
        ["wait", "--for=delete", "istiorevisiontags.sailoperator.io/default",
         "istios.sailoperator.io/mesh", "istiorevisions.sailoperator.io/mesh", "--timeout=600s"],
    ]  # fmt: skip


def on_sail(text: str) -> str:
    """README step 2 for config/staging.yaml: the version, no `operator`, profile default."""
    text = text.replace('"1.23.6"', '"1.30.3"').replace("profile: minimal", "profile: default")
    start = text.index("\noperator:\n")
    return text[:start] + text[text.index("\n\n", start + 1) :]


@pytest.fixture
def applied_staging(project_copy: Path, tmp_path: Path) -> Deployment:
    staging = Deployment(project_copy, "staging", tmp_path / "staging")
    staging.synth()
    staging.workdir.terraform("init", "-input=false")
    staging.apply()
    staging.calls()
    return staging


def test_moving_staging_from_1_23_6_by_the_documented_procedure(
    applied_staging: Deployment,
) -> None:
    staging = applied_staging
    # Step 1, still on 1.23.6: the IstioOperator is deleted and waited for; nothing else.
    staging.workdir.terraform(
        "destroy", "-auto-approve", "-input=false", "-target=terraform_data.control_plane_removal"
    )
    [_, delete] = staging.calls()
    assert delete.verb[:3] == [
        "delete",
        "istiooperators.install.istio.io",
        "default-istiocontrolplane",
    ]
    # Step 2: the Sail version; the guard finds no IstioOperator and the install proceeds.
    config = staging.project / "config/staging.yaml"
    config.write_text(on_sail(config.read_text()))
    staging.synth()
    result = staging.apply()
    calls = staging.calls()
    assert [c.verb[:2] for c in calls[:2]] == [
        ["get", "customresourcedefinition"],
        ["get", "istiooperators.install.istio.io"],
    ]
    assert [c.verb[0] for c in calls[2:]] == ["apply", "wait", "apply"]
    # The control plane's namespace is kept (same address); the old operator goes.
    assert "kubernetes_namespace_v1__istio_system: Destroying" not in result.stdout
    assert "kubernetes_deployment_v1__istio_operator: Destruction complete" in result.stdout


def test_switching_without_removing_the_old_control_plane_is_refused(
    applied_staging: Deployment,
) -> None:
    staging = applied_staging
    config = staging.project / "config/staging.yaml"
    config.write_text(on_sail(config.read_text()))
    staging.synth()
    staging.workdir.env["KUBECTL_ISTIOOPERATORS"] = "istio-system   default-istiocontrolplane\n"
    result = staging.apply(check=False)
    assert result.returncode != 0
    assert "not installing the Sail Operator: IstioOperators remain" in _said(result)
    assert [c for c in staging.calls() if c.verb[0] == "apply"] == []
