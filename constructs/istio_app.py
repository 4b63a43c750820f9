"""The cdktf app: every config/<workspace>.yaml becomes a stack, synthesized atomically."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from cdktf import App

from constructs.istio_operator_manifest import ManifestError, RenderedManifest, render
from constructs.workspace_config import ConfigError, WorkspaceConfig, load_named
from constructs.workspace_stack import WorkspaceStack

# Files Terraform keeps in a stack directory between runs (providers, lock file, state of a
# `terraform init`). A new synth carries them over instead of forcing a fresh init.
_KEPT_IN_STACK_DIRS = (".terraform", ".terraform.lock.hcl")


def build_app(
    configs: Sequence[WorkspaceConfig],
    outdir: str,
    manifests: Mapping[str, RenderedManifest] | None = None,
) -> App:
    """One stack per workspace; `manifests` (by workspace name) are reused, not rendered again."""
    # cdktf's synth-time validations are skipped on purpose. Besides provider presence (every
    # stack declares both providers; tests/test_app.py checks each resource has its provider),
    # they run `terraform version` on the synth machine for every terraform_data resource: two
    # child processes per stack (most of a stack's synth time), and no synth at all where
    # terraform is not installed. The stacks carry `required_version` instead, which Terraform
    # checks where it actually runs: the laptop or the Terraform Cloud run.
    app = App(outdir=outdir, skip_validation=True)
    for config in configs:
        WorkspaceStack(app, config, (manifests or {}).get(config.name))
    return app


def synth(
    configs: Sequence[WorkspaceConfig],
    outdir: Path,
    manifests: Mapping[str, RenderedManifest] | None = None,
) -> None:
    """Synthesize into a scratch directory beside `outdir`, then swap it in.

    A failure anywhere leaves the previous cdktf.out exactly as it was.
    """
    outdir = outdir.resolve()
    outdir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{outdir.name}.", dir=outdir.parent))
    try:
        build_app(configs, str(scratch), manifests).synth()
        for kept in _KEPT_IN_STACK_DIRS:
            for old in outdir.glob(f"stacks/*/{kept}"):
                new = scratch / "stacks" / old.parent.name
                if new.is_dir():
                    old.rename(new / kept)
        retired = outdir.with_name(outdir.name + ".old")
        if retired.exists():
            shutil.rmtree(retired)
        if outdir.exists():
            outdir.rename(retired)
        scratch.rename(outdir)
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch)


def validate(
    root: Path, names: Sequence[str] = (), environ: Mapping[str, str] | None = None
) -> tuple[list[WorkspaceConfig], dict[str, RenderedManifest]]:
    """Load every workspace (or only the named ones) and render its manifest; ConfigError lists
    every problem, one a line.

    The renderings are returned so the stacks use exactly what was checked.
    """
    configs = load_named(root / "config", root, names, environ)
    problems: list[str] = []
    manifests = {}
    for config in configs:
        try:
            manifests[config.name] = render(config)
        except ManifestError as exc:
            problems.extend(f"{config.source}: {problem}" for problem in exc.problems)
    if problems:
        raise ConfigError(problems)
    return configs, manifests


def main(root: Path, outdir: Path) -> int:
    try:
        configs, manifests = validate(root)
    except ConfigError as exc:
        print("Invalid workspace configuration; nothing was synthesized:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    synth(configs, outdir, manifests)
    return 0
