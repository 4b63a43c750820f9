"""Shared fixtures: project paths, temporary workspaces and synthesized stacks."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from constructs.provider_modules import install

install()  # the same fast path main.py takes; tests/test_provider_modules.py checks it is safe

from cdktf import Testing  # noqa: E402

from constructs.workspace_config import WorkspaceConfig, load_file  # noqa: E402
from constructs.workspace_stack import WorkspaceStack  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

MINIMAL_CONFIG = """\
cluster: {kubeconfig: ~/.kube/config, context: test}
istio_version: "1.23.6"
"""

Synth = Callable[[WorkspaceConfig], dict[str, Any]]


def synth_stack(config: WorkspaceConfig) -> dict[str, Any]:
    """The stack's Terraform JSON, as `cdktf synth` would write it."""
    stack = WorkspaceStack(Testing.app(), config)
    result: dict[str, Any] = json.loads(Testing.synth(stack))
    return result


def shipped(name: str) -> WorkspaceConfig:
    """A workspace shipped in config/, loaded without environment overrides."""
    return load_file(ROOT / "config" / f"{name}.yaml", ROOT, environ={})


@pytest.fixture
def workspace(tmp_path: Path) -> Callable[..., WorkspaceConfig]:
    """Write config/<name>.yaml under a temporary root and load it."""

    def make(text: str = MINIMAL_CONFIG, name: str = "test") -> WorkspaceConfig:
        (tmp_path / "config").mkdir(exist_ok=True)
        path = tmp_path / "config" / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        return load_file(path, tmp_path, environ={})

    return make


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A copy of the project's sources (no venv, no node_modules, no build output)."""
    dest = tmp_path / "project"
    ignore = shutil.ignore_patterns(
        ".venv", "node_modules", "cdktf.out*", "state", ".git", "__pycache__", ".*_cache"
    )
    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest
