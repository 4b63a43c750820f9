"""The workspace's `kubectl` settings: validated at the edge, carried by every kubectl step."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from constructs.workspace_config import ConfigError, WorkspaceConfig, load_file
from tests.conftest import MINIMAL_CONFIG, shipped, synth_stack

Workspace = Callable[..., WorkspaceConfig]
DIGEST = "ab" * 32
# The pins for kubectl v1.35.2, written out again here rather than imported.
V1_35_2 = {
    "linux-amd64": "924eb50779153f20cb668117d141440b95df2f325a64452d78dff9469145e277",
    "linux-arm64": "cd859449f54ad2cb05b491c490c13bb836cdd0886ae013c0aed3dd67ff747467",
    "darwin-amd64": "163955964d4ed9e66656eab45c0114f5c1110d1b430ace432b20ddc430023df5",
    "darwin-arm64": "b0b59cdd7ba20ca20b85214943100e578dd50ddd85242fcddf277a87c2249706",
}


def problems_of(tmp_path: Path, snippet: str) -> list[str]:
    (tmp_path / "config").mkdir(exist_ok=True)
    path = tmp_path / "config" / "production.yaml"
    path.write_text(MINIMAL_CONFIG + snippet + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_file(path, tmp_path, environ={})
    return caught.value.problems


def test_defaults_download_the_pinned_v1_35_2_only_when_path_has_none(
    workspace: Workspace,
) -> None:
    kubectl = workspace().spec.kubectl
    assert kubectl.provision == "auto"
    assert kubectl.version == "v1.35.2"
    assert kubectl.download_url == "https://dl.k8s.io/release"
    assert kubectl.pins == V1_35_2


def test_a_custom_version_with_its_pins_and_a_mirror(workspace: Workspace) -> None:
    kubectl = workspace(
        MINIMAL_CONFIG + "kubectl:\n  provision: always\n  version: v1.36.4\n"
        f"  sha256: {{linux-amd64: {DIGEST}}}\n"
        "  download_url: http://127.0.0.1:8080/mirror/kubectl/\n"
    ).spec.kubectl
    assert kubectl.provision == "always"
    assert kubectl.pins == {"linux-amd64": DIGEST}  # replaces the defaults, not merged
    assert kubectl.download_url == "http://127.0.0.1:8080/mirror/kubectl"


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (
            "kubectl: {provision: sometimes}",
            "kubectl.provision: 'sometimes': Input should be 'auto', 'always' or 'never'",
        ),
        (
            "kubectl: {version: 1.35.2}",
            "kubectl.version: '1.35.2' is not a kubectl release version such as 'v1.35.2'",
        ),
        (
            "kubectl: {version: v1.36.4}",
            "kubectl.sha256: kubectl.version v1.36.4 has no default digests: add kubectl.sha256 "
            "with the SHA-256 of each platform that runs Terraform (linux-amd64, linux-arm64, "
            "darwin-amd64, darwin-arm64), as published in "
            "<download_url>/v1.36.4/bin/<os>/<arch>/kubectl.sha256",
        ),
        (
            f"kubectl: {{sha256: {{linux-386: {DIGEST}}}}}",
            "kubectl.sha256: 'linux-386': Input should be 'linux-amd64', 'linux-arm64', "
            "'darwin-amd64' or 'darwin-arm64'",
        ),
        (
            f"kubectl: {{sha256: {{linux-amd64: {DIGEST.upper()}}}}}",
            f"kubectl.sha256.linux-amd64: '{DIGEST.upper()}' is not a SHA-256 digest "
            "(64 lower-case hex digits)",
        ),
        (
            # 63 digits: a pin that can never match
            f"kubectl: {{sha256: {{linux-amd64: {DIGEST[:-1]}}}}}",
            f"kubectl.sha256.linux-amd64: '{DIGEST[:-1]}' is not a SHA-256 digest",
        ),
        ("kubectl: {sha256: {}}", "kubectl.sha256: {}: Dictionary should have at least 1 item"),
        (
            "kubectl: {download_url: 'ftp://mirror/kubectl'}",
            "kubectl.download_url: 'ftp://mirror/kubectl' is not an http:// or https:// URL "
            "without spaces, '?' or '#'",
        ),
        (
            "kubectl: {download_url: 'https://mirror/kube ctl'}",
            "kubectl.download_url: 'https://mirror/kube ctl' is not an http:// or https:// URL",
        ),
        (
            "kubectl: {download_url: 'https://mirror/release?token=x'}",
            "kubectl.download_url: 'https://mirror/release?token=x' is not an http:// or https://",
        ),
        (
            "kubectl: {download_url: 'https:///'}",
            "kubectl.download_url: 'https:///' is not an http",
        ),
        (
            "kubectl: {download_url: 'https://mirror/${path.cwd}'}",
            "kubectl.download_url: 'https://mirror/${path.cwd}' contains a Terraform template",
        ),
        (
            "kubectl: {mirror: https://mirror}",
            "kubectl.mirror: unknown key (allowed: download_url, provision, sha256, version)",
        ),
    ],
)
def test_bad_kubectl_settings_are_named(tmp_path: Path, snippet: str, expected: str) -> None:
    [problem] = problems_of(tmp_path, snippet)
    assert problem.startswith("config/production.yaml: " + expected), problem


def local_execs(stack: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for resource_type in ("null_resource", "terraform_data"):
        for body in stack["resource"][resource_type].values():
            found += [p["local-exec"] for p in body.get("provisioner", [])]
    return found


def test_every_kubectl_step_carries_the_settings_including_destroy_time_ones() -> None:
    stack = synth_stack(shipped("staging"))
    steps = local_execs(stack)
    assert len(steps) == 5
    assert sum(step.get("when") == "destroy" for step in steps) == 2
    environment = steps[0]["environment"]
    assert all(step["environment"] == environment for step in steps)
    script = environment.pop("ISTIO_KUBECTL_PROVISION_SCRIPT")
    # Relative to the stack directory Terraform runs in: portable, no machine's path in it.
    assert re.fullmatch(
        r"assets/kubectl_provision_[0-9A-F]+/[0-9A-F]+/kubectl_provision\.sh", script
    )
    assert environment == {
        "ISTIO_KUBECTL_PROVISION": "auto",
        "ISTIO_KUBECTL_VERSION": "v1.35.2",
        "ISTIO_KUBECTL_DOWNLOAD_URL": "https://dl.k8s.io/release",
        **{f"ISTIO_KUBECTL_SHA256_{p.upper().replace('-', '_')}": d for p, d in V1_35_2.items()},
    }


def test_kubectl_settings_change_the_steps_but_trigger_nothing(workspace: Workspace) -> None:
    before = synth_stack(workspace())
    after = synth_stack(
        workspace(
            MINIMAL_CONFIG + "kubectl:\n  provision: never\n  version: v1.36.4\n"
            f"  sha256: {{darwin-arm64: {DIGEST}}}\n"
        )
    )
    environment = local_execs(after)[0]["environment"]
    assert environment["ISTIO_KUBECTL_PROVISION"] == "never"
    assert environment["ISTIO_KUBECTL_SHA256_DARWIN_ARM64"] == DIGEST
    assert "ISTIO_KUBECTL_SHA256_LINUX_AMD64" not in environment
    for resource_type in ("null_resource", "terraform_data"):
        for name, body in before["resource"][resource_type].items():
            after_body = after["resource"][resource_type][name]
            for key in ("triggers", "triggers_replace", "input"):
                assert body.get(key) == after_body.get(key), (name, key)
