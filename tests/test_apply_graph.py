"""The apply/destroy picture in README.md: generated from the stack, and it is Terraform's graph."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from constructs.apply_graph import (
    END,
    START,
    dependencies,
    mermaid,
    readme_block,
    reduced,
    transitive_closure,
)
from tests import test_terraform_e2e as e2e
from tests.conftest import ROOT, shipped, synth_stack
from tests.terraform_harness import projected_name
from tests.test_terraform_e2e import Deployment

deployment = e2e.deployment  # the fixture: a project copy, synthesized, `terraform init` done


def test_the_readme_shows_the_staging_stack_graph() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = readme.index(START), readme.index(END) + len(END)
    assert readme[start:end] == readme_block(synth_stack(shipped("staging"))), (
        "README.md's apply/destroy picture is stale: run `make graph` and commit README.md"
    )


def test_the_graph_is_terraforms_own(deployment: Callable[[str], Deployment]) -> None:
    staging = deployment("staging")
    stack = synth_stack(shipped("staging"))
    ours = transitive_closure(dependencies(stack))

    def projected(address: str) -> str:
        resource_type, name = address.split(".")
        return name if resource_type == "terraform_data" else projected_name(resource_type, name)

    theirs = staging.workdir.depends_on()  # from `terraform graph`, transitively closed
    assert {projected(a): {projected(d) for d in deps} for a, deps in ours.items()} == theirs


def test_any_resource_of_any_engine_is_drawn_with_its_edges() -> None:
    stack = {
        "resource": {
            "sail_crd": {"a": {}},
            "sail_operator": {"b": {"depends_on": ["sail_crd.a"]}},
            "terraform_data": {
                "c": {
                    "input": {"ns": "${sail_operator.b.id}", "literal": "$${sail_crd.a.id}"},
                    "depends_on": ["sail_crd.a"],
                    "provisioner": [
                        {"local-exec": {"interpreter": ["sh", "x", "apply"], "command": "f"}},
                        {
                            "local-exec": {
                                "interpreter": ["sh", "x", "delete"],
                                "command": "g",
                                "when": "destroy",
                            }
                        },
                    ],
                }
            },
        }
    }
    graph = dependencies(stack)
    # The reference counts, the escaped `$${...}` does not, and a.id is implied through b.
    assert graph == {
        "sail_crd.a": set(),
        "sail_operator.b": {"sail_crd.a"},
        "terraform_data.c": {"sail_crd.a", "sail_operator.b"},
    }
    assert reduced(graph)["terraform_data.c"] == {"sail_operator.b"}
    apply, destroy = mermaid(stack).split("```\n\n```mermaid\n")
    assert '  terraform_data_c["terraform_data.c<br/>apply"]:::destroy' in apply
    assert "  sail_operator_b --> terraform_data_c" in apply
    assert '  terraform_data_c["terraform_data.c<br/>destroy: delete"]:::destroy' in destroy
    assert "  terraform_data_c --> sail_operator_b" in destroy
    assert "sail_crd_a --> terraform_data_c" not in apply


def _graph(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    return subprocess.run(
        [sys.executable, "main.py", "graph", *args],
        cwd=project,
        env={k: v for k, v in env.items() if not k.startswith("ISTIO_")},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_make_graph_rewrites_a_stale_picture_and_check_says_so(project_copy: Path) -> None:
    readme = project_copy / "README.md"
    current = readme.read_text(encoding="utf-8")
    stale = current.replace(" --> ", " --- ", 1)
    readme.write_text(stale, encoding="utf-8")
    check = _graph(project_copy, "--check")
    assert check.returncode == 1
    assert "run `make graph`" in check.stderr
    assert readme.read_text(encoding="utf-8") == stale
    rewrite = _graph(project_copy)
    assert (rewrite.returncode, rewrite.stdout) == (0, "README.md: graph rewritten\n")
    assert readme.read_text(encoding="utf-8") == current
