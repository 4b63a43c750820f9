"""The app: one stack per config file, atomic and deterministic output, no secrets, portable."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cdktf import App

from constructs import istio_app
from constructs import istio_operator_manifest as iop
from constructs.workspace_config import WorkspaceConfig
from tests.conftest import MINIMAL_CONFIG, ROOT, shipped, synth_stack

Workspace = Callable[..., WorkspaceConfig]


def run_main(project: Path, outdir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    for name in [n for n in env if n.startswith("ISTIO_") and "KUBE" in n]:
        env.pop(name)
    env["CDKTF_OUTDIR"] = str(outdir or project / "cdktf.out")
    return subprocess.run(
        [sys.executable, "main.py"], cwd=project, env=env, capture_output=True, text=True
    )


def tree_bytes(outdir: Path) -> dict[str, bytes]:
    return {
        p.relative_to(outdir).as_posix(): p.read_bytes()
        for p in sorted(outdir.rglob("*"))
        if p.is_file()
    }


def test_a_new_config_file_adds_a_stack_with_no_code_change(project_copy: Path) -> None:
    (project_copy / "config" / "qa.yaml").write_text(MINIMAL_CONFIG)
    result = run_main(project_copy)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    manifest = json.loads((project_copy / "cdktf.out" / "manifest.json").read_text())
    assert sorted(manifest["stacks"]) == ["production", "qa", "staging"]
    for name in ("production", "qa", "staging"):
        stack = json.loads((project_copy / f"cdktf.out/stacks/{name}/cdk.tf.json").read_text())
        assert stack["//"]["metadata"]["stackName"] == name


def test_bad_config_exits_nonzero_without_traceback_and_keeps_previous_output(
    project_copy: Path,
) -> None:
    assert run_main(project_copy).returncode == 0
    before = tree_bytes(project_copy / "cdktf.out")
    production = project_copy / "config" / "production.yaml"
    production.write_text(production.read_text().replace("cpu: 500m", "cpu: 100x", 1))
    result = run_main(project_copy)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        "config/production.yaml: pilot.resources.requests.cpu: '100x' is not a Kubernetes quantity"
        in result.stderr
    )
    assert tree_bytes(project_copy / "cdktf.out") == before
    assert sorted(p.name for p in project_copy.iterdir() if p.name.startswith("cdktf.out")) == [
        "cdktf.out"
    ]


def test_synth_is_deterministic_and_portable(project_copy: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "checkout"
    other.parent.mkdir()
    project_copy.rename(other)
    first, second = tmp_path / "out1", tmp_path / "out2"
    assert run_main(other, first).returncode == 0
    assert run_main(other, second).returncode == 0
    a, b = tree_bytes(first), tree_bytes(second)
    assert a == b
    # Same bytes as this checkout, in another directory: nothing machine-specific leaks in.
    here = tmp_path / "out-here"
    assert run_main(ROOT, here).returncode == 0
    assert tree_bytes(here) == a
    for name, data in a.items():
        for needle in (str(tmp_path), str(ROOT), str(Path.home()), "/tmp/", "/root"):
            assert needle.encode() not in data, (name, needle)


def test_a_failure_while_writing_keeps_the_previous_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outdir = tmp_path / "cdktf.out"
    istio_app.synth([shipped("staging"), shipped("production")], outdir)
    before = tree_bytes(outdir)
    real_build = istio_app.build_app

    class FailsAfterWriting:
        """An app that writes every stack into the scratch directory, then fails."""

        def __init__(self, app: App) -> None:
            self.app = app

        def synth(self) -> None:
            self.app.synth()
            raise OSError("No space left on device")

    def build(*args: Any) -> FailsAfterWriting:
        return FailsAfterWriting(real_build(*args))

    monkeypatch.setattr(istio_app, "build_app", build)
    with pytest.raises(OSError, match="No space left"):
        istio_app.synth([shipped("staging")], outdir)
    assert tree_bytes(outdir) == before
    assert [p.name for p in tmp_path.iterdir()] == ["cdktf.out"]  # no scratch left behind


def test_each_workspace_is_rendered_and_checked_once_per_synth(
    project_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[str] = []
    real_check = iop.check

    def counting_check(text: str, *args: Any, **kwargs: Any) -> None:
        checked.append(text)
        real_check(text, *args, **kwargs)

    monkeypatch.setattr(iop, "check", counting_check)
    for name in [n for n in os.environ if n.startswith("ISTIO_") and "KUBE" in n]:
        monkeypatch.delenv(name)
    assert istio_app.main(project_copy, project_copy / "cdktf.out") == 0
    assert len(checked) == 2  # staging and production, each once, validation included
    stack = json.loads((project_copy / "cdktf.out/stacks/staging/cdk.tf.json").read_text())
    assert stack["resource"]["null_resource"]["control_plane"]["triggers"]["manifest_sha1"] == (
        hashlib.sha1(checked[1].encode()).hexdigest()
    )


def test_terraform_state_survives_a_new_synth(project_copy: Path) -> None:
    assert run_main(project_copy).returncode == 0
    init_dir = project_copy / "cdktf.out" / "stacks" / "staging" / ".terraform"
    init_dir.mkdir()
    (init_dir / "marker").write_text("providers")
    assert run_main(project_copy).returncode == 0
    assert (init_dir / "marker").read_text() == "providers"


def test_local_backend_keeps_state_outside_cdktf_out(workspace: Workspace) -> None:
    stack = synth_stack(workspace(name="staging"))
    path = stack["terraform"]["backend"]["local"]["path"]
    assert path == "../../../state/staging/terraform.tfstate"
    # Resolved from the stack's working directory, it lands in <project>/state/.
    resolved = (Path("/p/cdktf.out/stacks/staging") / path).resolve()
    assert resolved == Path("/p/state/staging/terraform.tfstate")


def test_cloud_backend_when_named(workspace: Workspace) -> None:
    config = workspace(
        MINIMAL_CONFIG + "backend: {cloud: {organization: acme, workspace: istio-prod, "
        "project: platform}}\n"
    )
    terraform = synth_stack(config)["terraform"]
    assert "local" not in terraform.get("backend", {})
    assert terraform["cloud"] == {
        "hostname": "app.terraform.io",
        "organization": "acme",
        "workspaces": {"name": "istio-prod", "project": "platform"},
    }


def test_synth_needs_no_terraform_on_the_machine(project_copy: Path, tmp_path: Path) -> None:
    # Only Node (for jsii) on PATH: synth itself never runs terraform or a shell.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    node = shutil.which("node")
    assert node is not None
    (bin_dir / "node").symlink_to(node)
    env = {
        "PATH": str(bin_dir),
        "HOME": str(tmp_path),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    result = subprocess.run(
        [sys.executable, "main.py"], cwd=project_copy, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert (project_copy / "cdktf.out/stacks/staging/cdk.tf.json").is_file()


@pytest.mark.parametrize("name", ["staging", "production"])
def test_every_resource_has_its_provider_declared(name: str) -> None:
    # What cdktf's skipped ValidateProviderPresence checked (constructs/istio_app.py).
    stack = synth_stack(shipped(name))
    for resource_type in stack["resource"]:
        provider = resource_type.split("_", 1)[0]
        if provider != "terraform":  # terraform_data is built in
            assert provider in stack["provider"], resource_type
            assert provider in stack["terraform"]["required_providers"], resource_type


def test_providers_are_pinned_and_aimed_at_the_named_cluster(workspace: Workspace) -> None:
    stack = synth_stack(workspace())
    assert stack["provider"]["kubernetes"] == [
        {"config_context": "test", "config_path": "~/.kube/config"}
    ]
    assert stack["terraform"]["required_providers"] == {
        "kubernetes": {"source": "kubernetes", "version": "2.38.0"},
        "null": {"source": "null", "version": "3.2.4"},
    }
    # terraform_data (the apply/removal pairs) needs Terraform 1.4; older ones stop at init.
    assert stack["terraform"]["required_version"] == ">= 1.4.0"


def pem(kind: str, body: str) -> str:
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----"


# What a Terraform Cloud run or a laptop may have in its environment while synthesizing.
SYNTH_ENV_SECRETS = {
    "KUBE_HOST": "https://leak-check-host.example:6443",
    "KUBE_TOKEN": "leak-check-token-9d81c",
    "KUBE_CLUSTER_CA_CERT_DATA": pem("CERTIFICATE", "LEAKCHECKCA"),
    "KUBE_CLIENT_CERT_DATA": pem("CERTIFICATE", "LEAKCHECKCERT"),
    "KUBE_CLIENT_KEY_DATA": pem("PRIVATE KEY", "LEAKCHECKKEY"),
    "KUBE_PASSWORD": "leak-check-password-51e0",
    "KUBE_CONFIG_PATH": "/leak-check/kubeconfig.yaml",
    "KUBE_CTX": "leak-check-context",
    "TF_TOKEN_app_terraform_io": "leak-check-tfc-token.atlasv1.3e7",
    "ISTIO_CLOUD_KUBECONFIG": "/leak-check/override.yaml",
}


def test_environment_credentials_write_nothing_into_any_output_file(project_copy: Path) -> None:
    # One workspace per engine: the Sail one synthesizes other constructs and templates.
    for name, version in (("cloud", "1.23.6"), ("cloud-sail", "1.30.3")):
        (project_copy / "config" / f"{name}.yaml").write_text(
            f'cluster: {{credentials: environment}}\nistio_version: "{version}"\n'
            f"backend: {{cloud: {{organization: acme, workspace: istio-{name}}}}}\n"
        )
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    env["CDKTF_OUTDIR"] = str(project_copy / "cdktf.out")
    # The shipped kubeconfig workspaces refuse KUBE_* at synth; this synth has only the cloud one.
    for name in ("staging", "production"):
        (project_copy / "config" / f"{name}.yaml").unlink()
    result = subprocess.run(
        [sys.executable, "main.py"],
        cwd=project_copy,
        env={**env, **SYNTH_ENV_SECRETS},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    outputs = tree_bytes(project_copy / "cdktf.out")
    for name in ("cloud", "cloud-sail"):
        stack = json.loads(outputs[f"stacks/{name}/cdk.tf.json"])
        assert stack["provider"]["kubernetes"] == [{}]
    assert (
        "sail_crds"
        in json.loads(outputs["stacks/cloud-sail/cdk.tf.json"])["resource"]["null_resource"]
    )
    for name, value in SYNTH_ENV_SECRETS.items():
        # Verbatim, and the forms a careless encoder would write: base64 and JSON-escaped.
        forms = [value.encode(), base64.b64encode(value.encode()), json.dumps(value).encode()]
        forms += [line.encode() for line in value.splitlines() if "LEAKCHECK" in line]
        for path, data in outputs.items():
            for form in forms:
                assert form not in data, (name, path)
    assert result.stdout.count("leak-check") == result.stderr.count("leak-check") == 0


def test_cdktf_cli_synth_runs_the_project_venv_quietly(project_copy: Path) -> None:
    for name in (".venv", "node_modules"):
        (project_copy / name).symlink_to(ROOT / name)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "VIRTUAL_ENV", "CI")
    }
    # The way the README runs it: through make, which also silences Node 20's jsii banner.
    # -o: the symlinked .venv and node_modules are this checkout's, already set up; never
    # reinstall them through the symlinks from a copy.
    result = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-o",
            ".venv/.installed",
            "-o",
            "node_modules/.installed",
            "synth",
        ],
        cwd=project_copy,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    for noise in ("end-of-life", "Warning", "WARN", "telemetry", "CLI configuration", "\x1b["):
        assert noise not in output, output
    assert "Generated Terraform code for the stacks: production, staging" in output
    assert (project_copy / "cdktf.out/stacks/staging/cdk.tf.json").is_file()
    assert (project_copy / "cdktf.out/stacks/production/cdk.tf.json").is_file()
