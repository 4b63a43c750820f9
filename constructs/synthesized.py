"""Synthesized stacks for the commands that read them (drift check, dependency graph)."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from constructs.istio_app import build_app
from constructs.istio_operator_manifest import RenderedManifest
from constructs.workspace_config import WorkspaceConfig


@contextmanager
def synthesized_stacks(
    root: Path,
    configs: Sequence[WorkspaceConfig],
    manifests: Mapping[str, RenderedManifest],
) -> Iterator[Path]:
    """The stacks of `configs`, synthesized as `make synth` would, in a scratch directory.

    The scratch directory sits beside cdktf.out (`<root>/cdktf.out.*`, git-ignored), so a
    relative path in a stack resolves from it as from cdktf.out/stacks/<workspace>, where
    Terraform runs. cdktf.out itself is left alone; the scratch directory is removed afterwards.
    Yields the `stacks` directory.
    """
    scratch = Path(tempfile.mkdtemp(prefix="cdktf.out.", dir=root))
    try:
        build_app(configs, str(scratch), manifests).synth()
        yield scratch / "stacks"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def read_stack(stack_dir: Path) -> dict[str, Any]:
    stack: dict[str, Any] = json.loads((stack_dir / "cdk.tf.json").read_text(encoding="utf-8"))
    return stack


def resources(stack: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every resource of a synthesized stack by its Terraform address (`type.name`)."""
    return {
        f"{resource_type}.{name}": body
        for resource_type, by_name in stack.get("resource", {}).items()
        for name, body in by_name.items()
    }
