"""The apply and destroy order of a stack as Mermaid flowcharts, for README.md.

Read from the synthesized stack itself, so the picture is whatever resources the stack has,
whichever engine made them: a resource waits for every resource in its `depends_on` and every
resource an expression of it refers to, which is the graph Terraform builds
(tests/test_apply_graph.py checks it against `terraform graph`). Destroy walks the same edges
backwards. Arrows implied by others are left out, so the picture stays readable.

`python main.py graph` rewrites the README between the markers; `--check` only compares.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from constructs.istio_app import validate
from constructs.synthesized import read_stack, resources, synthesized_stacks
from constructs.workspace_config import ConfigError

WORKSPACE = "staging"  # the shipped workspace the README pictures
START = "<!-- graph:start -->"
END = "<!-- graph:end -->"
_EXPRESSION = re.compile(r"\$\{([^}]*)\}")
_ADDRESS = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*\.[A-Za-z0-9_-]+)\b")


def dependencies(stack: Mapping[str, Any]) -> dict[str, set[str]]:
    """Each resource address -> the addresses it waits for directly."""
    found = resources(stack)
    graph: dict[str, set[str]] = {}
    for address, body in found.items():
        waits = set(body.get("depends_on", []))
        for text in _strings({k: v for k, v in body.items() if k not in ("depends_on", "//")}):
            for expression in _EXPRESSION.findall(text.replace("$${", "")):
                waits |= {ref for ref in _ADDRESS.findall(expression) if ref in found}
        graph[address] = (waits & found.keys()) - {address}
    return graph


def reduced(graph: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """The same order with every edge implied by a longer path removed."""
    closure = transitive_closure(graph)
    return {
        node: {dep for dep in deps if not any(dep in closure[other] for other in deps - {dep})}
        for node, deps in graph.items()
    }


def transitive_closure(graph: Mapping[str, set[str]]) -> dict[str, set[str]]:
    closure: dict[str, set[str]] = {}

    def walk(node: str) -> set[str]:
        if node not in closure:
            closure[node] = set()
            for dep in graph[node]:
                closure[node] |= {dep, *walk(dep)}
        return closure[node]

    for node in graph:
        walk(node)
    return closure


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _runs(body: Mapping[str, Any], when: str | None) -> list[str]:
    """The kubectl step actions (last interpreter argument) a resource runs at create or
    destroy time."""
    actions = []
    for provisioner in body.get("provisioner", []):
        local = provisioner.get("local-exec")
        if local is not None and local.get("when") == when and local.get("interpreter"):
            actions.append(str(local["interpreter"][-1]))
    return actions


def _node_id(address: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", address)


def mermaid(stack: Mapping[str, Any]) -> str:
    """Two Mermaid flowcharts (apply, then destroy) in Markdown code fences."""
    bodies = resources(stack)
    order = reduced(dependencies(stack))
    lines = []

    def node(address: str, when: str | None) -> str:
        runs = _runs(bodies[address], when)
        label = address + (f"<br/>{'destroy: ' if when else ''}{', '.join(runs)}" if runs else "")
        marked = ":::destroy" if _runs(bodies[address], "destroy") else ""
        return f'  {_node_id(address)}["{label}"]{marked}'

    for title, when, reverse in (
        ("Apply: each arrow points to a resource that waits for it", None, False),
        (
            "Destroy: the same arrows backwards; red border: runs kubectl when destroyed",
            "destroy",
            True,
        ),
    ):
        lines += ["```mermaid", "---", f"title: {json.dumps(title)}", "---", "flowchart TD"]
        lines += [node(address, when) for address in sorted(bodies)]
        for address in sorted(order):
            for dep in sorted(order[address]):
                first, then = (address, dep) if reverse else (dep, address)
                lines.append(f"  {_node_id(first)} --> {_node_id(then)}")
        lines.append("  classDef destroy stroke:#c00,stroke-width:3px")
        lines += ["```", ""]
    return "\n".join(lines)


def readme_block(stack: Mapping[str, Any]) -> str:
    return f"{START}\n{mermaid(stack)}{END}"


def replace_block(readme: str, block: str) -> str:
    start, end = readme.find(START), readme.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README.md has no {START} ... {END} section")
    return readme[:start] + block + readme[end + len(END) :]


def main(root: Path, arguments: Sequence[str]) -> int:
    if arguments not in ([], ["--check"]):
        print("usage: main.py graph [--check]", file=sys.stderr)
        return 2
    try:
        configs, manifests = validate(root)
    except ConfigError as exc:
        print("Invalid workspace configuration:", *exc.problems, sep="\n  ", file=sys.stderr)
        return 2
    [config] = [c for c in configs if c.name == WORKSPACE]
    with synthesized_stacks(root, [config], manifests) as stacks:
        block = readme_block(read_stack(stacks / WORKSPACE))
    path = root / "README.md"
    readme = path.read_text(encoding="utf-8")
    updated = replace_block(readme, block)
    if updated == readme:
        print("README.md: the graph is up to date")
        return 0
    if arguments:
        print("README.md: the graph differs from the stack; run `make graph`", file=sys.stderr)
        return 1
    path.write_text(updated, encoding="utf-8")
    print("README.md: graph rewritten")
    return 0
