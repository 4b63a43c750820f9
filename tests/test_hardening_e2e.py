"""Real Terraform on the failure paths: a cancelled run, replaced removals, a retarget before a
destroy, renames the provider replaces, and the kubectl script's edge cases.

Same machinery as tests/test_terraform_e2e.py (its fixtures are reused here): the stack projected
onto terraform_data, the recording stand-in for kubectl, Terraform itself for real.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import test_sail_e2e as sail_e2e
from tests import test_terraform_e2e as e2e
from tests.terraform_harness import terraform_command
from tests.test_terraform_e2e import CRD, Deployment

# The fixtures of tests/test_terraform_e2e.py, shared rather than copied.
deployment = e2e.deployment
applied_staging = e2e.applied_staging
cloud = e2e.cloud
sail = sail_e2e.sail

TOKEN = "cancelled-run-token-4f9a"


def events(output: str) -> list[tuple[str, str]]:
    """(address, "Creation" | "Destruction") in the order Terraform finished them."""
    found = re.findall(r"terraform_data\.(\S+): (Creation|Destruction) complete", output)
    return [(address, kind) for address, kind in found]


def processes_with(marker: str) -> list[int]:
    """Live processes whose environment holds `marker` (every process a test's Terraform ran)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and marker.encode() in environ.split(b"\0"):
            found.append(int(proc.name))
    return found


def files_containing(root: Path, secret: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret in p.read_bytes()]


def interrupt_terraform_during(deployed: Deployment, word: str, *args: str) -> str:
    """Run `terraform ARGS`, wait until a kubectl call with `word` in its argv runs (the stand-in
    then sleeps), send one SIGINT to the terraform process only, as a CI system or a Terraform
    Cloud cancel does, and return Terraform's output once it has exited."""
    env = {
        **deployed.workdir.env,
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
        "KUBECTL_SLEEP_ON": word,
    }
    # Output goes to a file: a process left holding a pipe would hang the read, not fail it.
    log = deployed.tmp / f"terraform-{word}.log"
    with log.open("w") as out:
        terraform = subprocess.Popen(
            [*terraform_command(), *args, "-no-color"],
            cwd=deployed.workdir.path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 120
            while not list(deployed.record.glob("*/sleeping")):
                assert terraform.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            terraform.send_signal(signal.SIGINT)
            terraform.wait(timeout=60)
        finally:
            if terraform.poll() is None:
                terraform.kill()
                terraform.wait()
    return log.read_text()


@pytest.mark.parametrize(
    ("phase", "word", "args"),
    [
        ("apply", "apply", ("apply", "-auto-approve", "-input=false")),
        ("destroy", "delete", ("destroy", "-auto-approve", "-input=false")),
    ],
)
def test_a_cancelled_run_leaves_no_secret_and_no_kubectl_behind(
    cloud: Deployment, phase: str, word: str, args: tuple[str, ...]
) -> None:
    cloud.workdir.env.update(
        KUBE_HOST="https://203.0.113.10:6443",
        KUBE_TOKEN=TOKEN,
        KUBE_CLIENT_CERT_DATA="CLIENT CERT",
        KUBE_CLIENT_KEY_DATA="CLIENT KEY 8d2e",
    )
    if phase == "destroy":
        cloud.apply()
    cloud.calls()
    marker = f"KUBECTL_RECORD={cloud.record}"
    output = interrupt_terraform_during(cloud, word, *args)
    try:
        assert "Interrupt received" in output, output
        [sleeping] = [c for c in cloud.calls() if word in c.verb]
        assert sleeping.kubeconfig is not None and TOKEN.encode() in sleeping.kubeconfig
        # Terraform killed the step's process, which was kubectl itself: nothing outlives it.
        assert processes_with(marker) == []
    finally:
        for pid in processes_with(marker):
            os.kill(pid, signal.SIGKILL)
    for secret in (TOKEN.encode(), b"CLIENT KEY 8d2e", b"Q0xJRU5UIEtFWSA4ZDJl"):
        assert files_containing(cloud.tmp / "scratch", secret) == []  # TMPDIR
        assert files_containing(cloud.workdir.path, secret) == []  # state, .terraform


APPLY = ("apply", "-auto-approve", "-input=false")
DESTROY = ("destroy", "-auto-approve", "-input=false")


@pytest.mark.parametrize(
    ("phase", "word", "args"),
    [
        # The server-side apply of the ~3 MB of CRDs, then the wait until they are Established.
        ("apply", "--server-side", APPLY),
        ("apply", "--for=condition=Established", APPLY),
        # The delete of the Istio: the one call with its timeout is the one that waits.
        ("destroy", "--timeout=600s", DESTROY),
    ],
)
def test_a_cancelled_sail_run_leaves_no_kubectl_behind(
    sail: Callable[[], Deployment], phase: str, word: str, args: tuple[str, ...]
) -> None:
    deployed = sail()
    if phase == "destroy":
        deployed.apply()
    deployed.calls()
    marker = f"KUBECTL_RECORD={deployed.record}"
    output = interrupt_terraform_during(deployed, word, *args)
    try:
        assert "Interrupt received" in output, output
        # Terraform killed the step's process, which was the sleeping kubectl itself.
        assert processes_with(marker) == []
        [sleeping] = [c for c in deployed.calls() if word in c.verb]
        assert sleeping.verb[0] in ("apply", "wait"), sleeping.verb
    finally:
        for pid in processes_with(marker):
            os.kill(pid, signal.SIGKILL)


def test_replacing_the_control_plane_removal_applies_the_istio_operator_again(
    applied_staging: Deployment,
) -> None:
    staging = applied_staging
    staging.workdir.terraform(
        "apply", "-auto-approve", "-input=false", "-replace=terraform_data.control_plane_removal"
    )
    [crd_exists, delete, apply] = staging.calls()
    assert crd_exists.verb[:2] == ["get", "customresourcedefinition"]
    assert delete.verb[:3] == [
        "delete",
        "istiooperators.install.istio.io",
        "default-istiocontrolplane",
    ]
    assert apply.verb == ["apply", "-f", "-"]
    assert apply.stdin == staging.asset("istio-operator.yaml")
    # And the next plan is empty: state and cluster agree again.
    assert "0 added, 0 changed, 0 destroyed" in staging.apply().stdout
    assert staging.calls() == []


def test_replacing_the_crd_removal_applies_the_crd_again(applied_staging: Deployment) -> None:
    staging = applied_staging
    staging.workdir.terraform(
        "apply", "-auto-approve", "-input=false", "-replace=terraform_data.operator_crd_removal"
    )
    calls = staging.calls()
    assert [c.verb[0] for c in calls] == ["get", "get", "delete", "apply", "wait"]
    assert calls[2].verb[:3] == ["delete", "customresourcedefinition", CRD]
    assert calls[3].stdin == (staging.project / "manifests/1.23.6/crd-operator.yaml").read_bytes()
    assert "0 added, 0 changed, 0 destroyed" in staging.apply().stdout


def test_replacing_the_crd_removal_while_istio_operators_exist_deletes_nothing(
    applied_staging: Deployment,
) -> None:
    # As on a real cluster, where the workspace's own IstioOperator always exists: deleting the
    # CRD would delete it, so the removal refuses and the run fails with nothing deleted; the
    # next apply puts the CRD's apply resource back.
    staging = applied_staging
    staging.workdir.env["KUBECTL_ISTIOOPERATORS"] = "istio-system   default-istiocontrolplane\n"
    result = staging.workdir.terraform(
        "apply",
        "-auto-approve",
        "-input=false",
        "-replace=terraform_data.operator_crd_removal",
        check=False,
    )
    assert result.returncode != 0
    assert "IstioOperators remain (istio-system/default-istiocontrolplane)" in e2e._said(result)
    assert [c.verb[0] for c in staging.calls()] == ["get", "get"]
    staging.apply()
    assert [c.verb[0] for c in staging.calls()] == ["apply", "wait"]
    assert "0 added, 0 changed, 0 destroyed" in staging.apply().stdout


def test_a_destroy_after_an_unapplied_retarget_uses_the_providers_target(
    applied_staging: Deployment,
) -> None:
    # Synthesized with a new kubeconfig, destroyed with no apply in between: the kubernetes
    # provider destroys with the new target, and so does every kubectl step.
    staging = applied_staging
    staging.synth(ISTIO_STAGING_KUBECONFIG="~/clusters/staging.yaml")
    staging.destroy()
    calls = staging.calls()
    assert [c.verb[0] for c in calls] == ["get", "delete", "get", "get", "delete"]
    assert {c.target for c in calls} == {(str(staging.home / "clusters/staging.yaml"), "staging")}


def test_renaming_the_control_plane_namespace_deletes_the_old_before_creating_the_new(
    applied_staging: Deployment,
) -> None:
    staging = applied_staging
    path = staging.project / "config/staging.yaml"
    path.write_text(path.read_text().replace("istio-system", "mesh-system"))
    staging.synth()
    result = staging.apply()
    [_, delete, apply] = staging.calls()
    assert delete.verb[:5] == [
        "delete",
        "istiooperators.install.istio.io",
        "default-istiocontrolplane",
        "--namespace",
        "istio-system",
    ]
    assert b'namespace: "mesh-system"' in apply.stdin
    done = events(result.stdout)
    at = {event: i for i, event in enumerate(done)}
    removal_gone = at["control_plane_removal", "Destruction"]
    # The old IstioOperator goes while its namespace (and the operator) still exist...
    assert removal_gone < at["kubernetes_namespace_v1__istio_system", "Destruction"], done
    # ...and the new one is applied once its namespace exists and the old one is gone.
    applied = at["null_resource__control_plane", "Creation"]
    assert at["kubernetes_namespace_v1__mesh_system", "Creation"] < applied, done
    assert removal_gone < applied, done


def test_renaming_the_operator_namespace_replaces_what_lives_in_it(
    applied_staging: Deployment,
) -> None:
    # metadata.namespace is ForceNew in the provider: the objects keep their addresses and are
    # replaced, after the new namespace exists and before the old one goes; the control plane is
    # left alone (the new operator reconciles it).
    staging = applied_staging
    staging.edit("config/staging.yaml", "namespace: istio-operator", "namespace: mesh-operator")
    staging.synth()
    result = staging.apply()
    assert staging.calls() == []
    done = events(result.stdout)
    at = {event: i for i, event in enumerate(done)}
    for inside in (
        "kubernetes_service_account_v1__istio_operator",
        "kubernetes_service_v1__istio_operator",
        "kubernetes_deployment_v1__istio_operator",
    ):
        assert at[inside, "Destruction"] < at[inside, "Creation"], done
        assert at["kubernetes_namespace_v1__mesh_operator", "Creation"] < at[inside, "Creation"]
        assert (
            at[inside, "Destruction"] < at["kubernetes_namespace_v1__istio_operator", "Destruction"]
        )
    assert not any(address.endswith("control_plane") for address, _ in done), done


# --- kubectl_run.sh edge cases ------------------------------------------------------------------
def test_a_refused_variable_ending_in_equals_is_still_refused(cloud: Deployment) -> None:
    cloud.workdir.env.update(KUBE_HOST="https://h", KUBE_PASSWORD="cGFzc3dvcmQ=")
    result = cloud.apply(check=False)
    assert result.returncode != 0
    assert "set in the environment: KUBE_PASSWORD," in e2e._said(result)
    assert cloud.calls() == []


def test_a_kube_variable_ending_in_equals_still_stops_kubeconfig_mode(
    deployment: Callable[[str], Deployment],
) -> None:
    staging = deployment("staging")
    staging.workdir.env["KUBE_TOKEN"] = "dG9rZW4="
    result = staging.apply(check=False)
    assert result.returncode != 0
    assert "KUBE_* cluster variables are set (KUBE_TOKEN)" in e2e._said(result)
    assert staging.calls() == []


def test_a_home_relative_path_without_home_is_refused_by_name(
    deployment: Callable[[str], Deployment],
) -> None:
    staging = deployment("staging")  # kubeconfig: ~/.kube/config
    del staging.workdir.env["HOME"]
    result = staging.apply(check=False)
    assert result.returncode != 0
    assert "the kubeconfig path '~/.kube/config' starts with ~/ but HOME is not set" in e2e._said(
        result
    )
    assert "parameter not set" not in e2e._said(result)
    assert staging.calls() == []


@pytest.mark.parametrize("false", ["false", "0", "F", "False"])
def test_kube_insecure_false_changes_nothing_and_is_accepted(cloud: Deployment, false: str) -> None:
    # The provider parses KUBE_INSECURE and acts only on true.
    cloud.workdir.env.update(
        KUBE_CONFIG_PATH="/etc/kube/ci.yaml", KUBE_CTX="ci", KUBE_INSECURE=false
    )
    cloud.apply()
    assert {c.target for c in cloud.calls()} == {("/etc/kube/ci.yaml", "ci")}


def test_kube_insecure_false_is_accepted_in_kubeconfig_mode(
    deployment: Callable[[str], Deployment],
) -> None:
    staging = deployment("staging")
    staging.workdir.env["KUBE_INSECURE"] = "false"
    staging.apply()
    assert [c.verb[0] for c in staging.calls()] == ["apply", "wait", "apply"]


def test_a_token_that_could_change_the_kubeconfig_is_refused(cloud: Deployment) -> None:
    cloud.workdir.env.update(KUBE_HOST="https://h", KUBE_TOKEN='t"\n  exec: {command: x}')
    result = cloud.apply(check=False)
    assert result.returncode != 0
    assert "KUBE_TOKEN has characters a bearer token does not" in e2e._said(result)
    assert cloud.calls() == []
