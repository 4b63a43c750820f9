"""Golden files: the exact synthesized stack and IstioOperator manifest of each workspace.

Any change to what a workspace deploys shows up here as a diff to review. The files are rewritten
only on request: `UPDATE_GOLDEN=1 make test`, then read the diff before committing it.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from pathlib import Path

import pytest

from constructs.istio_app import build_app
from constructs.workspace_config import WorkspaceConfig, load_file
from tests.conftest import ROOT, shipped

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def blog() -> WorkspaceConfig:
    config = load_file(ROOT / "tests/data/blog-1.7.3.yaml", ROOT, environ={})
    return dataclasses.replace(config, name="blog")


def sail() -> WorkspaceConfig:
    config = load_file(ROOT / "tests/data/sail-1.30.3.yaml", ROOT, environ={})
    return dataclasses.replace(config, name="sail")


@pytest.fixture(scope="module")
def outdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("golden")
    build_app([shipped("staging"), shipped("production"), blog(), sail()], str(out)).synth()
    return out


def compare(actual: bytes, golden: Path) -> None:
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(actual)
        return
    assert golden.exists(), f"{golden} is missing; create it with UPDATE_GOLDEN=1 and review it"
    expected = golden.read_bytes()
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.decode().splitlines(keepends=True),
                actual.decode().splitlines(keepends=True),
                str(golden.relative_to(ROOT)),
                "synthesized",
            )
        )
        pytest.fail(f"output differs from the golden file (UPDATE_GOLDEN=1 to accept):\n{diff}")


@pytest.mark.parametrize(
    ("workspace", "manifest_name"),
    [
        ("staging", "istio-operator.yaml"),
        ("production", "istio-operator.yaml"),
        ("blog", "istio-operator.yaml"),
        ("sail", "istio.yaml"),
    ],
)
def test_stack_matches_its_golden_file(outdir: Path, workspace: str, manifest_name: str) -> None:
    stack_dir = outdir / "stacks" / workspace
    compare((stack_dir / "cdk.tf.json").read_bytes(), GOLDEN / workspace / "cdk.tf.json")
    [manifest] = (stack_dir / "assets").rglob(manifest_name)
    compare(manifest.read_bytes(), GOLDEN / workspace / manifest_name)
