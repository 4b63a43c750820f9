"""The drift check (`python main.py drift`), run as a user would, with the recording kubectl.

Each case runs the check in a copy of the project: main.py itself, or for named workspaces the
same function in this process (its jsii kernel is warm already), with tests/fake_kubectl first
on PATH (or the real kubectl, aimed at a closed port on 127.0.0.1). It checks the exit status,
what is printed and every kubectl call made: only `kubectl diff`, with the exact bytes and
cluster target the apply steps use.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import constructs.drift as drift_module
import constructs.istio_operator_manifest as manifest_module
from constructs.drift import StackError, Status, Step, check_step, diff_steps
from constructs.drift import main as drift_main
from constructs.istio_operator_manifest import render
from constructs.synthesized import synthesized_stacks
from constructs.workspace_config import load_file
from tests import test_kubectl_provision_e2e as provision
from tests import test_sail_e2e as e2e_sail
from tests import test_terraform_e2e as e2e
from tests.conftest import ROOT
from tests.test_kubectl_provision_e2e import Mirror, runner_path, settings_yaml
from tests.test_terraform_e2e import SYSTEM_PATH, Deployment

# The fixtures: a project copy, synthesized, `terraform init` done; one whose workspace reads its
# cluster from KUBE_* variables; and a loopback kubectl download server.
deployment = e2e.deployment
cloud = e2e.cloud
mirror = provision.mirror  # a kubectl download server on 127.0.0.1
CRD_FILE = ROOT / "manifests/1.23.6/crd-operator.yaml"


def run_drift(deployed: Deployment, *workspaces: str) -> subprocess.CompletedProcess[str]:
    """`python main.py drift` in the project copy, with the environment Terraform gets there."""
    env = {**deployed.workdir.env, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    return subprocess.run(
        [sys.executable, "main.py", "drift", *workspaces],
        cwd=deployed.project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def in_process(
    deployed: Deployment, capsys: pytest.CaptureFixture[str], *workspaces: str
) -> subprocess.CompletedProcess[str]:
    """The same, named workspaces only, in this process: its warm jsii kernel synthesizes."""
    capsys.readouterr()
    status = drift_main(deployed.project, workspaces, deployed.workdir.env)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["drift", *workspaces], status, out, err)


@pytest.fixture
def drift(project_copy: Path, tmp_path: Path) -> Deployment:
    """A project copy, not synthesized: the drift check synthesizes on its own."""
    return Deployment(project_copy, "staging", tmp_path)


def rendered(drift: Deployment, workspace: str) -> bytes:
    config = load_file(drift.project / "config" / f"{workspace}.yaml", drift.project, environ={})
    return render(config).data


def test_in_sync_workspaces_print_in_sync_and_exit_0(drift: Deployment) -> None:
    result = run_drift(drift)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "production: in sync\nstaging: in sync\n"
    calls = drift.calls()
    kubeconfig = str(drift.home / ".kube" / "config")
    # Per workspace: the CRD first, then the control plane; only diffs, nothing else asked.
    assert [(c.target, c.verb) for c in calls] == [
        ((kubeconfig, context), ["diff", "-f", "-"])
        for context in ("production", "production", "staging", "staging")
    ]
    assert [c.stdin for c in calls] == [
        CRD_FILE.read_bytes(),
        rendered(drift, "production"),
        CRD_FILE.read_bytes(),
        rendered(drift, "staging"),
    ]
    # The scratch synth is gone and cdktf.out was never written.
    assert not list(drift.project.glob("cdktf.out*"))


def test_a_hand_edited_control_plane_prints_the_diff_and_exits_1(
    drift: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    drift.workdir.env["KUBECTL_DIFF_DRIFT"] = "IstioOperator"
    drift.workdir.env["KUBECTL_DIFF_OUTPUT"] = "-          cpu: 777m\n+          cpu: 100m\n"
    result = in_process(drift, capsys, "staging")
    assert result.returncode == 1, result.stderr
    assert result.stdout == (
        "staging: drift in null_resource.control_plane; applying it again would change:\n"
        "-          cpu: 777m\n+          cpu: 100m\n"
    )
    assert [c.target[1] for c in drift.calls()] == ["staging", "staging"]


def test_a_drifted_crd_is_drift_too(drift: Deployment, capsys: pytest.CaptureFixture[str]) -> None:
    drift.workdir.env["KUBECTL_DIFF_DRIFT"] = "CustomResourceDefinition"
    result = in_process(drift, capsys, "production")
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith(
        "production: drift in null_resource.operator_crd; applying it again would change:\n"
        "diff -u -N /tmp/LIVE-1/x /tmp/MERGED-1/x\n"
    )
    assert "in sync" not in result.stdout


def test_an_unreachable_cluster_cannot_be_checked_exit_2(
    drift: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    drift.workdir.env["KUBECTL_UNREACHABLE"] = "1"
    result = in_process(drift, capsys, "staging")
    assert result.returncode == 2
    assert result.stdout == (
        "staging: could not check null_resource.operator_crd:\n"
        '  error: unable to recognize "STDIN": Get "https://127.0.0.1:6443/api?timeout=32s": '
        "dial tcp 127.0.0.1:6443: connect: connection refused\n"
    )
    # The control plane is not tried against the same unreachable cluster.
    assert len(drift.calls()) == 1


def test_the_real_kubectl_against_a_closed_port_cannot_check_exit_2(
    drift: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a port on 127.0.0.1 that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (drift.home / ".kube").mkdir()
    (drift.home / ".kube" / "config").write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: staging, context: {cluster: c, user: u}}]\n"
    )
    drift.workdir.env["PATH"] = (
        SYSTEM_PATH  # the real kubectl (on PATH on these machines, and in CI)
    )
    result = in_process(drift, capsys, "staging")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout.startswith("staging: could not check null_resource.operator_crd:\n")
    assert f"dial tcp 127.0.0.1:{port}: connect: connection refused" in result.stdout


def test_missing_kubectl_cannot_check_exit_2(
    drift: Deployment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = tmp_path / "bin"  # no kubectl
    bare.mkdir()
    drift.workdir.env["PATH"] = str(bare)
    result = in_process(drift, capsys, "staging")
    assert result.returncode == 2
    assert result.stdout.startswith("staging: could not check null_resource.operator_crd:\n")
    # The workspace's `kubectl.provision: auto` reached the step: kubectl would be downloaded,
    # but the tools for that are missing too.
    assert "istio-kubectl: kubectl is needed but cannot be downloaded" in result.stdout
    assert drift.calls() == []


def test_provision_never_and_no_kubectl_cannot_check_exit_2(
    drift: Deployment, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = drift.project / "config" / "staging.yaml"
    path.write_text(path.read_text() + "kubectl: {provision: never}\n")
    bare = tmp_path / "bin"
    bare.mkdir()
    drift.workdir.env["PATH"] = str(bare)
    result = in_process(drift, capsys, "staging")
    assert result.returncode == 2
    assert "kubectl was not found on PATH, so nothing was applied or deleted." in result.stdout
    assert "this workspace sets kubectl.provision: never" in result.stdout
    assert drift.calls() == []


def test_a_provisioning_failure_cannot_check_exit_2_not_drift(
    project_copy: Path,
    tmp_path: Path,
    mirror: Mirror,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A file named .terraform where the download goes: provisioning's `mkdir -p` fails, and
    # set -e ends it with status 1, which a diff step would otherwise pass on as "drift".
    (project_copy / "config" / "tfc.yaml").write_text(
        'cluster: {kubeconfig: ~/.kube/config, context: tfc}\nistio_version: "1.23.6"\n'
        + settings_yaml(mirror, "always")
    )
    tfc = Deployment(project_copy, "tfc", tmp_path / "tfc")
    tfc.workdir.env["PATH"] = runner_path(tmp_path / "runner-bin", "curl", "sha256sum")

    @contextmanager
    def blocked(*args: Any) -> Iterator[Path]:
        with synthesized_stacks(*args) as stacks:
            (stacks / "tfc" / ".terraform").write_text("not a directory\n")
            yield stacks

    monkeypatch.setattr("constructs.drift.synthesized_stacks", blocked)
    result = in_process(tfc, capsys, "tfc")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout.startswith("tfc: could not check null_resource.operator_crd:\n  mkdir")
    assert ".terraform" in result.stdout
    assert mirror.downloads() == 0
    assert tfc.calls() == []


def test_a_workspace_that_cannot_be_checked_wins_over_drift_elsewhere(
    drift: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    # cloud.yaml reads its target from KUBE_* variables, and none are set: it cannot be
    # checked. staging has drifted. Both are reported; the exit status says "not all checked".
    (drift.project / "config" / "cloud.yaml").write_text(
        'cluster: {credentials: environment}\nistio_version: "1.23.6"\n'
    )
    drift.workdir.env["KUBECTL_DIFF_DRIFT"] = "IstioOperator"
    result = in_process(drift, capsys, "cloud", "staging")
    assert result.returncode == 2
    lines = result.stdout.splitlines()
    assert lines[:2] == [
        "cloud: could not check null_resource.operator_crd:",
        "  istio-kubectl: credentials 'environment' needs KUBE_HOST (or KUBE_CONFIG_PATH) in "
        "the environment",
    ]
    assert lines[2] == (
        "staging: drift in null_resource.control_plane; applying it again would change:"
    )


def test_invalid_config_checks_nothing_exit_2(drift: Deployment) -> None:
    path = drift.project / "config" / "staging.yaml"
    path.write_text(path.read_text().replace("cpu: 100m", "cpu: 100x", 1))
    result = run_drift(drift)
    assert result.returncode == 2
    assert result.stderr == (
        "Invalid workspace configuration; nothing was checked:\n"
        "  config/staging.yaml: pilot.resources.requests.cpu: '100x' is not a Kubernetes "
        "quantity\n"
    )
    assert result.stdout == ""
    assert drift.calls() == []


def test_an_unknown_workspace_checks_nothing_exit_2(
    drift: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    result = in_process(drift, capsys, "staging", "qa")
    assert result.returncode == 2
    assert result.stderr == (
        "Invalid workspace configuration; nothing was checked:\n"
        "  config: no workspace 'qa' (workspaces: production, staging)\n"
    )
    assert drift.calls() == []


def test_a_yml_workspace_is_checked_by_name(
    drift: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(drift.project / "config/staging.yaml", drift.project / "config/qa.yml")
    result = in_process(drift, capsys, "qa")
    assert (result.returncode, result.stdout) == (0, "qa: in sync\n"), result.stderr
    assert [c.verb for c in drift.calls()] == [["diff", "-f", "-"]] * 2


def test_every_manifest_problem_of_a_named_workspace_is_its_own_line(
    drift: Deployment, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copy(ROOT / "tests/data/sail-1.30.3.yaml", drift.project / "config/sail.yaml")
    original = manifest_module._render_template

    def broken(template: str, context_json: str) -> str:
        text = original(template, context_json)
        return text.replace('profile: "default"', 'profile: "minimal"').replace(
            'version: "v1.30.3"', 'version: "v9.9.9"'
        )

    monkeypatch.setattr(manifest_module, "_render_template", broken)
    result = in_process(drift, capsys, "sail")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "Invalid workspace configuration; nothing was checked:"
    assert [line.split(":")[:2] for line in lines[1:]] == [
        ["  config/sail.yaml", " control_plane.profile"],
        ["  config/sail.yaml", " istio_version"],
    ]
    assert drift.calls() == []


def test_a_named_workspace_is_validated_alone(
    drift: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    path = drift.project / "config" / "production.yaml"
    path.write_text(path.read_text().replace("cpu: 500m", "cpu: 500x", 1))
    result = in_process(drift, capsys, "staging")
    assert (result.returncode, result.stdout) == (0, "staging: in sync\n")
    result = in_process(drift, capsys, "production")
    assert result.returncode == 2
    assert "config/production.yaml: pilot.resources.requests.cpu: '500x'" in result.stderr


def test_a_sail_workspace_is_diffed_server_side_as_it_is_applied(
    drift: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(ROOT / "tests/data/sail-1.30.3.yaml", drift.project / "config/sail.yaml")
    drift.workdir.env["KUBECTL_DIFF_DRIFT"] = "Istio"
    result = in_process(drift, capsys, "sail")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith(
        "sail: drift in null_resource.istio; applying it again would change:\n"
    )
    calls = drift.calls()
    # The CRDs (not their wait, nor the IstioOperator guard), then the Istio: both as the apply
    # steps apply them, server-side with the stack's field manager.
    server_side = ["--server-side", "--field-manager=istio-cdktf", "--force-conflicts"]
    assert [c.verb for c in calls] == [["diff", *server_side, "-f", "-"]] * 2
    assert calls[0].stdin == e2e_sail.shipped_crds()
    assert calls[1].stdin == rendered(drift, "sail")
    assert b"kind: Istio\n" in calls[1].stdin


# --- the same target and bytes as the apply steps Terraform ran ---------------------------------
def test_drift_aims_where_the_apply_steps_aimed(
    deployment: Callable[[str], Deployment], capsys: pytest.CaptureFixture[str]
) -> None:
    staging = deployment("staging")
    # A teammate's own kubeconfig, through the documented override, for apply and drift alike.
    staging.workdir.env["ISTIO_STAGING_KUBECONFIG"] = "~/clusters/staging.yaml"
    staging.synth(ISTIO_STAGING_KUBECONFIG="~/clusters/staging.yaml")
    staging.apply()
    applied = [c for c in staging.calls() if c.verb[0] == "apply"]
    result = in_process(staging, capsys, "staging")
    assert result.returncode == 0, result.stdout + result.stderr
    checked = staging.calls()
    assert [c.verb for c in checked] == [["diff", "-f", "-"]] * 2
    assert [(c.target, c.stdin) for c in checked] == [(c.target, c.stdin) for c in applied]
    assert checked[0].target == (str(staging.home / "clusters/staging.yaml"), "staging")


def test_drift_hands_over_the_same_in_memory_kubeconfig_in_environment_mode(
    cloud: Deployment,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cloud.workdir.env.update(
        KUBE_HOST="https://203.0.113.10:6443",
        KUBE_TOKEN="token-value-never-in-argv",
        KUBE_CLUSTER_CA_CERT_DATA=e2e.CA,
    )
    cloud.apply()
    applied = [c for c in cloud.calls() if c.verb[0] == "apply"]
    result = in_process(cloud, capsys, "cloud")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "cloud: in sync\n"
    checked = cloud.calls()
    assert [c.stdin for c in checked] == [c.stdin for c in applied]
    for diff, apply in zip(checked, applied, strict=True):
        assert diff.target == apply.target == ("/dev/fd/3", "target")
        assert diff.kubeconfig is not None
        assert diff.kubeconfig == apply.kubeconfig  # token and CA inline: the same bytes
        assert not any("token-value" in arg for arg in diff.args)
    assert list((cloud.tmp / "scratch").iterdir()) == []  # TMPDIR: nothing written, ever


def test_drift_runs_the_pinned_kubectl_the_apply_steps_run(
    project_copy: Path, tmp_path: Path, mirror: Mirror, capsys: pytest.CaptureFixture[str]
) -> None:
    # `provision: always` with a kubectl on PATH that must not run: only the provisioner's
    # environment (ISTIO_KUBECTL_*, the provisioning script's stack-relative path) leads to the
    # mirror's pinned stand-in.
    (project_copy / "config" / "tfc.yaml").write_text(
        'cluster: {kubeconfig: ~/.kube/config, context: tfc}\nistio_version: "1.23.6"\n'
        + settings_yaml(mirror, "always")
    )
    tfc = Deployment(project_copy, "tfc", tmp_path / "tfc")
    ran = tmp_path / "path-kubectl-ran"
    decoy = tmp_path / "decoy-bin"
    decoy.mkdir()
    (decoy / "kubectl").write_text(f"#!/bin/sh\n: >'{ran}'\nexit 1\n")
    (decoy / "kubectl").chmod(0o755)
    runner = runner_path(tmp_path / "runner-bin", "curl", "sha256sum")
    tfc.workdir.env["PATH"] = f"{decoy}:{runner}"
    result = in_process(tfc, capsys, "tfc")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "tfc: in sync\n"
    assert not ran.exists()
    assert mirror.downloads() == 1  # two steps, one verified download
    calls = tfc.calls()
    assert [c.verb for c in calls] == [["diff", "-f", "-"]] * 2
    assert calls[0].stdin == CRD_FILE.read_bytes()
    assert calls[1].stdin == rendered(tfc, "tfc")


# --- which steps are checked, in any stack ------------------------------------------------------
def _step(action: str, command: str, when: str | None = None) -> dict[str, Any]:
    interpreter = ["/bin/sh", "run.sh", "${var.kubectl_bin}", "${self.triggers.context}", action]
    environment = {"ISTIO_KUBECTL_PROVISION_SCRIPT": "assets/p.sh", "SEEN": "${var.kubectl_bin}"}
    local: dict[str, Any] = {
        "interpreter": interpreter,
        "command": command,
        "environment": environment,
    }
    if when:
        local["when"] = when
    return {"local-exec": local}


def test_every_create_time_apply_step_of_any_engine_is_checked_in_apply_order() -> None:
    stack: dict[str, Any] = {
        "variable": {"kubectl_bin": {"default": "kubectl"}},
        "resource": {
            "null_resource": {
                "sail_istio": {
                    "triggers": {"context": "c2"},
                    "depends_on": ["null_resource.sail_crds"],
                    "provisioner": [_step("apply", "istio.yaml")],
                },
                "sail_crds": {
                    "triggers": {"context": "c1"},
                    "provisioner": [_step("apply", "crds.yaml"), _step("wait", "x")],
                },
            },
            "terraform_data": {
                "removal": {"input": {}, "provisioner": [_step("apply", "no", "destroy")]}
            },
        },
    }
    steps = list(diff_steps(stack, environ={}))
    assert [(s.address, s.argv) for s in steps] == [
        ("null_resource.sail_crds", ["/bin/sh", "run.sh", "kubectl", "c1", "diff", "crds.yaml"]),
        ("null_resource.sail_istio", ["/bin/sh", "run.sh", "kubectl", "c2", "diff", "istio.yaml"]),
    ]
    assert [s.environment for s in steps] == [
        {"ISTIO_KUBECTL_PROVISION_SCRIPT": "assets/p.sh", "SEEN": "kubectl"}
    ] * 2
    [first, _] = diff_steps(stack, environ={"TF_VAR_kubectl_bin": "/opt/kubectl"})
    assert first.argv[2] == "/opt/kubectl"  # as Terraform would take it
    assert first.environment["SEEN"] == "/opt/kubectl"
    del stack["variable"]
    with pytest.raises(StackError, match=r"cannot resolve '\$\{var.kubectl_bin\}'"):
        list(diff_steps(stack, environ={}))


# --- what a step's exit status means ------------------------------------------------------------
RUN_SCRIPT = ROOT / "constructs/kubectl_run.sh"


@pytest.mark.parametrize(("provisioning", "expected"), [(1, 2), (2, 2), (127, 127)])
def test_a_provisioning_failure_is_never_the_status_that_means_drift(
    tmp_path: Path, provisioning: int, expected: int
) -> None:
    script = tmp_path / "provision.sh"
    script.write_text(f"echo 'mkdir: cannot create directory' >&2\nexit {provisioning}\n")
    done = subprocess.run(
        ["/bin/sh", str(RUN_SCRIPT), "kubeconfig", "kc", "ctx", "diff", "x.yaml"],
        env={"PATH": SYSTEM_PATH, "ISTIO_KUBECTL_PROVISION_SCRIPT": str(script)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (expected, "")
    assert done.stderr == "mkdir: cannot create directory\n"


def _sh_step(script: str) -> Step:
    return Step("null_resource.x", ["/bin/sh", "-c", script], {})


def test_status_1_is_drift_only_with_a_diff_to_show(tmp_path: Path) -> None:
    assert check_step(tmp_path, _sh_step("echo '+ changed'; exit 1"), {}) == (
        Status.DRIFT,
        "+ changed\n",
    )
    assert check_step(tmp_path, _sh_step("echo 'why' >&2; exit 1"), {}) == (
        Status.UNCHECKED,
        "why",
    )
    assert check_step(tmp_path, _sh_step("exit 1"), {}) == (Status.UNCHECKED, "exit status 1")


def test_a_step_that_does_not_answer_is_ended_with_everything_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drift_module, "TIMEOUT_SECONDS", 1)
    # sh waits for a child of its own, as kubectl_run.sh waits for kubectl diff; the child holds
    # no pipe of ours, so nothing but the process group kill ends it before its minute is up.
    step = _sh_step("sleep 60 >/dev/null 2>&1 & echo $! >child; wait")
    assert check_step(tmp_path, step, {"PATH": SYSTEM_PATH}) == (
        Status.UNCHECKED,
        "no answer within 1 s",
    )
    child = Path(f"/proc/{(tmp_path / 'child').read_text().strip()}/stat")
    # Gone, or a zombie its new parent has not reaped yet: either way no longer running.
    assert not child.exists() or child.read_text().rsplit(")", 1)[1].split()[0] == "Z"
