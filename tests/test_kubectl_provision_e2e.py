"""kubectl provisioned at run time, as on a Terraform Cloud runner: pinned, verified, fetched once.

A loopback HTTP server (127.0.0.1 only, stopped after each test) plays dl.k8s.io and serves the
recording stand-in kubectl (tests/fake_kubectl/kubectl); the workspace pins that stand-in's
SHA-256. PATH holds only the tools a bare runner has, never a kubectl. Terraform applies and
destroys for real (tests/terraform_harness.py), and constructs/kubectl_provision.sh is also run
on its own for the failures and the concurrency a whole stack cannot easily provoke.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from constructs.kubectl import PROVISION_SCRIPT, SCRIPT
from tests.test_terraform_e2e import FAKE_KUBECTL, SYSTEM_PATH, Deployment, _said

STAND_IN = (FAKE_KUBECTL / "kubectl").read_bytes()
STAND_IN_SHA256 = hashlib.sha256(STAND_IN).hexdigest()
VERSION = "v1.35.2"
PLATFORMS = ("linux-amd64", "linux-arm64", "darwin-amd64", "darwin-arm64")
# What a bare runner has. No kubectl, and no python: the scripts must not need them.
RUNNER_TOOLS = (
    *("sh", "uname", "mkdir", "mktemp", "chmod", "mv", "rm", "cat", "tr", "find", "sleep"),
    *("id", "ls", "wc", "cp", "dirname"),  # kubectl_run.sh and the recording stand-in
)


def host_platform() -> str:
    os_name = {"Linux": "linux", "Darwin": "darwin"}[platform.system()]
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
    return f"{os_name}-{arch[platform.machine()]}"


PLATFORM = host_platform()
OS, ARCH = PLATFORM.split("-")
RELEASE_PATH = f"/release/{VERSION}/bin/{OS}/{ARCH}/kubectl"


class Mirror:
    """A kubectl download server on 127.0.0.1: `files` by URL path, every request counted."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {RELEASE_PATH: STAND_IN}
        self.requests: list[str] = []
        self.delay = 0.0
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                mirror.requests.append(self.path)
                time.sleep(mirror.delay)
                body = mirror.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/release"

    @property
    def binary_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{RELEASE_PATH}"

    def downloads(self) -> int:
        return self.requests.count(RELEASE_PATH)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def mirror() -> Iterator[Mirror]:
    served = Mirror()
    yield served
    served.stop()


def runner_path(directory: Path, *extra: str, without: tuple[str, ...] = ()) -> str:
    """A PATH directory of symlinks to RUNNER_TOOLS and `extra`, minus `without`: no kubectl."""
    directory.mkdir()
    for tool in (*RUNNER_TOOLS, *extra):
        if tool in without:
            continue
        found = shutil.which(tool, path=SYSTEM_PATH)
        assert found, f"{tool} is not in {SYSTEM_PATH}"
        (directory / tool).symlink_to(found)
    assert shutil.which("kubectl", path=str(directory)) is None
    return str(directory)


def settings_yaml(mirror: Mirror, provision: str, digest: str = STAND_IN_SHA256) -> str:
    pins = ", ".join(f"{p}: {digest}" for p in PLATFORMS)
    return (
        f"kubectl:\n  provision: {provision}\n  version: {VERSION}\n"
        f"  download_url: {mirror.url}/\n  sha256: {{{pins}}}\n"
    )


def cached(workdir: Path) -> Path:
    return workdir / ".terraform" / "istio-kubectl" / VERSION / PLATFORM


def runner(
    project_copy: Path, tmp_path: Path, mirror: Mirror, provision: str = "auto"
) -> Deployment:
    """The `tfc` workspace pinned to the mirror's stand-in, applied with the runner's PATH."""
    config = project_copy / "config" / "tfc.yaml"
    config.write_text(
        'cluster: {kubeconfig: ~/.kube/config, context: tfc}\nistio_version: "1.23.6"\n'
        + settings_yaml(mirror, provision)
    )
    deployed = Deployment(project_copy, "tfc", tmp_path / "tfc")
    deployed.synth()
    deployed.workdir.env["PATH"] = runner_path(tmp_path / "runner-bin", "curl", "sha256sum")
    deployed.workdir.terraform("init", "-input=false")
    return deployed


def test_apply_downloads_once_then_reuses_the_verified_binary_through_destroy(
    project_copy: Path, tmp_path: Path, mirror: Mirror
) -> None:
    tfc = runner(project_copy, tmp_path, mirror)
    result = tfc.apply()
    calls = tfc.calls()
    assert [c.verb[:2] for c in calls] == [
        ["apply", "-f"],
        ["wait", "--for=condition=Established"],
        ["apply", "-f"],
    ]
    assert calls[2].stdin == tfc.asset("istio-operator.yaml")
    assert mirror.downloads() == 1  # three steps, one download
    assert (
        f"downloaded kubectl {VERSION} for {PLATFORM} from {mirror.binary_url} (SHA-256 verified)"
        in _said(result)
    )
    directory = cached(tfc.workdir.path)
    assert sorted(p.name for p in directory.iterdir()) == ["kubectl"]  # no temp file, no lock
    binary = directory / "kubectl"
    assert binary.read_bytes() == STAND_IN
    assert binary.stat().st_mode & 0o777 == 0o755

    # A change re-applies the IstioOperator with the cached binary, checked again, not fetched.
    tfc.edit("config/tfc.yaml", "\nkubectl:", "\ncontrol_plane: {profile: default}\nkubectl:")
    tfc.synth()
    tfc.apply()
    assert [c.verb[0] for c in tfc.calls()] == ["apply"]
    assert mirror.downloads() == 1

    tfc.destroy()
    assert [c.verb[0] for c in tfc.calls()] == ["get", "delete", "get", "get", "delete"]
    assert mirror.downloads() == 1


def test_a_tampered_download_stops_the_apply_and_never_runs(
    project_copy: Path, tmp_path: Path, mirror: Mirror
) -> None:
    tfc = runner(project_copy, tmp_path, mirror)
    ran = tmp_path / "tampered-binary-ran"
    tampered = STAND_IN.replace(b"set -eu\n", f"set -eu\n: >'{ran}'\n".encode(), 1)
    mirror.files[RELEASE_PATH] = tampered
    result = tfc.apply(check=False)
    assert result.returncode != 0
    said = _said(result)
    assert (
        f"the kubectl downloaded from {mirror.binary_url} has SHA-256 "
        f"{hashlib.sha256(tampered).hexdigest()}, but {STAND_IN_SHA256} is pinned "
        f"(kubectl.sha256.{PLATFORM}); it was deleted without running"
    ) in said
    assert not ran.exists()
    assert tfc.calls() == []
    assert mirror.downloads() == 1  # the first step failed; nothing else ran
    assert list(cached(tfc.workdir.path).iterdir()) == []
    # Terraform keeps the failed step tainted, so the next apply runs it again; nothing after it
    # (the operator, the IstioOperator) was created.
    state = tfc.workdir.terraform("state", "list").stdout.split()
    assert state == [
        "terraform_data.null_resource__operator_crd",
        "terraform_data.operator_crd_removal",
    ]
    assert (
        "terraform_data.null_resource__operator_crd: (tainted)"
        in tfc.workdir.terraform("show").stdout
    )


def test_provision_never_gives_the_missing_kubectl_message(
    project_copy: Path, tmp_path: Path, mirror: Mirror
) -> None:
    tfc = runner(project_copy, tmp_path, mirror, provision="never")
    result = tfc.apply(check=False)
    assert result.returncode != 0
    said = _said(result)
    assert "kubectl was not found on PATH, so nothing was applied or deleted." in said
    assert "set kubectl.provision: auto (or always)" in said
    assert tfc.calls() == []
    assert mirror.requests == []


def test_provision_always_downloads_even_with_kubectl_on_path(
    project_copy: Path, tmp_path: Path, mirror: Mirror
) -> None:
    tfc = runner(project_copy, tmp_path, mirror, provision="always")
    ran = tmp_path / "path-kubectl-ran"
    local = tmp_path / "local-bin"
    local.mkdir()
    (local / "kubectl").write_text(f"#!/bin/sh\n: >'{ran}'\nexit 1\n")
    (local / "kubectl").chmod(0o755)
    tfc.workdir.env["PATH"] = f"{local}:{tfc.workdir.env['PATH']}"
    tfc.apply()
    assert [c.verb[0] for c in tfc.calls()] == ["apply", "wait", "apply"]
    assert not ran.exists()
    assert mirror.downloads() == 1


# --- the provisioning script on its own -----------------------------------------------------------
def provision_env(mirror: Mirror, path: str, **changes: str) -> dict[str, str]:
    env = {
        "PATH": path,
        "HOME": "/nonexistent",
        "ISTIO_KUBECTL_PROVISION": "auto",
        "ISTIO_KUBECTL_VERSION": VERSION,
        "ISTIO_KUBECTL_DOWNLOAD_URL": mirror.url,
        f"ISTIO_KUBECTL_SHA256_{PLATFORM.upper().replace('-', '_')}": STAND_IN_SHA256,
    }
    env.update(changes)
    return {k: v for k, v in env.items() if v}


def provision(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(PROVISION_SCRIPT)], cwd=cwd, env=env, capture_output=True, text=True
    )


@pytest.fixture
def stack_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "stack"
    directory.mkdir()
    return directory


@pytest.fixture
def bare_path(tmp_path: Path) -> str:
    return runner_path(tmp_path / "bare-bin", "curl", "sha256sum")


def test_concurrent_steps_share_one_download(
    stack_dir: Path, bare_path: str, mirror: Mirror
) -> None:
    mirror.delay = 1.0  # the others start while the first is still downloading
    env = provision_env(mirror, bare_path)
    steps = [
        subprocess.Popen(
            ["/bin/sh", str(PROVISION_SCRIPT)],
            cwd=stack_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [step.communicate(timeout=60) for step in steps]
    assert [step.returncode for step in steps] == [0, 0, 0], outputs
    binary = cached(stack_dir) / "kubectl"
    assert {out for out, _ in outputs} == {f"{binary}\n"}
    assert mirror.downloads() == 1
    assert sorted(p.name for p in cached(stack_dir).iterdir()) == ["kubectl"]


def test_a_stale_lock_of_a_dead_step_is_taken_over(
    stack_dir: Path, bare_path: str, mirror: Mirror
) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock = cached(stack_dir) / ".lock"
    lock.mkdir(parents=True)
    (lock / "pid").write_text(f"{dead.pid}\n")
    result = provision(stack_dir, provision_env(mirror, bare_path))
    assert result.returncode == 0, result.stderr
    assert "taking over the stale download lock" in result.stderr
    assert sorted(p.name for p in cached(stack_dir).iterdir()) == ["kubectl"]


def test_a_cached_binary_changed_since_is_downloaded_again(
    stack_dir: Path, bare_path: str, mirror: Mirror
) -> None:
    env = provision_env(mirror, bare_path)
    assert provision(stack_dir, env).returncode == 0
    binary = cached(stack_dir) / "kubectl"
    binary.write_bytes(STAND_IN + b"# changed\n")
    result = provision(stack_dir, env)
    assert result.returncode == 0, result.stderr
    assert "its SHA-256 is" in result.stderr and "downloading it again" in result.stderr
    assert binary.read_bytes() == STAND_IN
    assert mirror.downloads() == 2


def test_wget_is_used_where_curl_is_missing(
    stack_dir: Path, tmp_path: Path, mirror: Mirror
) -> None:
    if shutil.which("wget", path=SYSTEM_PATH) is None:
        pytest.fail("wget is needed for this test (the Debian image has it)")
    path = runner_path(tmp_path / "wget-bin", "wget", "sha256sum")
    result = provision(stack_dir, provision_env(mirror, path))
    assert result.returncode == 0, result.stderr
    assert (cached(stack_dir) / "kubectl").read_bytes() == STAND_IN
    assert mirror.downloads() == 1


def test_shasum_verifies_where_sha256sum_is_missing(
    stack_dir: Path, tmp_path: Path, mirror: Mirror
) -> None:
    # macOS has shasum, not sha256sum. shasum is a perl script: perl comes along.
    path = runner_path(tmp_path / "mac-bin", "curl", "shasum", "perl")
    result = provision(stack_dir, provision_env(mirror, path))
    assert result.returncode == 0, result.stderr
    assert mirror.downloads() == 1


@pytest.mark.parametrize(
    ("changes", "tools", "message"),
    [
        (
            {"ISTIO_KUBECTL_DOWNLOAD_URL": "MIRROR/missing"},
            ("curl", "sha256sum"),
            f"downloading kubectl from MIRROR/missing/{VERSION}/bin/{OS}/{ARCH}/kubectl failed "
            "(HTTP status 404; curl: (22) The requested URL returned error: 404",
        ),
        (
            {"ISTIO_KUBECTL_DOWNLOAD_URL": "MIRROR/missing"},
            ("wget", "sha256sum"),
            f"downloading kubectl from MIRROR/missing/{VERSION}/bin/{OS}/{ARCH}/kubectl with wget "
            "failed (exit status 8",  # wget's "server issued an error response"
        ),
        (
            {"ISTIO_KUBECTL_DOWNLOAD_URL": "http://127.0.0.1:9/release"},
            ("curl", "sha256sum"),
            f"downloading kubectl from http://127.0.0.1:9/release/{VERSION}/bin/{OS}/{ARCH}/kubectl"
            " failed (HTTP status 000; curl: (7) Failed to connect",
        ),
        (
            {},
            ("sha256sum",),
            f"kubectl is not on PATH and kubectl {VERSION} cannot be downloaded: neither curl nor "
            "wget is installed, so nothing was applied or deleted.",
        ),
        (
            {},
            ("curl",),
            "neither sha256sum nor shasum is installed, so a kubectl download could not be "
            "verified",
        ),
        (
            {f"ISTIO_KUBECTL_SHA256_{PLATFORM.upper().replace('-', '_')}": ""},
            ("curl", "sha256sum"),
            f"no SHA-256 is pinned for kubectl {VERSION} on {PLATFORM}, the platform running "
            "Terraform, so nothing was downloaded, applied or deleted. Add "
            f"kubectl.sha256.{PLATFORM} to the workspace's config file",
        ),
    ],
)
def test_failures_say_what_to_do_and_download_nothing_usable(
    stack_dir: Path,
    tmp_path: Path,
    mirror: Mirror,
    changes: dict[str, str],
    tools: tuple[str, ...],
    message: str,
) -> None:
    path = runner_path(tmp_path / "some-bin", *tools)
    changes = {
        k: v.replace("MIRROR", mirror.url.removesuffix("/release")) for k, v in changes.items()
    }
    result = provision(stack_dir, provision_env(mirror, path, **changes))
    assert result.returncode != 0
    assert result.stdout == ""  # no kubectl path for kubectl_run.sh to run
    said = " ".join(result.stderr.split())
    assert message.replace("MIRROR", mirror.url.removesuffix("/release")) in said
    directory = cached(stack_dir)
    assert not directory.exists() or list(directory.iterdir()) == []


def test_a_bare_path_is_named_tool_by_tool(stack_dir: Path, tmp_path: Path, mirror: Mirror) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = provision(stack_dir, provision_env(mirror, str(empty)))
    assert result.returncode != 0
    assert "these tools are not on PATH: uname mkdir mktemp" in " ".join(result.stderr.split())
    assert mirror.requests == []


def test_kubectl_on_path_wins_in_auto_mode(stack_dir: Path, tmp_path: Path, mirror: Mirror) -> None:
    path = runner_path(tmp_path / "with-kubectl", "curl", "sha256sum")
    (Path(path) / "kubectl").symlink_to(FAKE_KUBECTL / "kubectl")
    result = provision(stack_dir, provision_env(mirror, path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{path}/kubectl\n"
    assert mirror.requests == []
    assert not os.path.exists(cached(stack_dir))


def test_kubectl_run_by_hand_outside_a_stack_uses_path_only(tmp_path: Path) -> None:
    # No provisioner environment: no download either, and a plain message.
    env = {"PATH": runner_path(tmp_path / "hand-bin", "curl", "sha256sum"), "HOME": str(tmp_path)}
    result = subprocess.run(
        ["/bin/sh", str(SCRIPT), "kubeconfig", "k", "c", "apply", "/dev/null"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "istio-kubectl: kubectl was not found on PATH, so nothing was applied or deleted\n"
    )
