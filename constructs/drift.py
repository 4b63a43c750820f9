"""`python main.py drift [WORKSPACE...]`: is each cluster still what its workspace applied?

Terraform never reads back what kubectl applied (the CRD and the control-plane resource), so a
hand edit of the IstioOperator goes unnoticed. This check finds every kubectl apply step in each
workspace's synthesized stack (any resource, whatever the engine) and runs the very same step
script with the action `diff` instead of `apply`: same file, same kubeconfig and context, or the
same KUBE_* environment, and the provisioner's own `environment` (which kubectl to run: the
workspace's pinned, verified kubectl, as constructs/kubectl_provision.sh finds or fetches it).
`kubectl diff` then shows what applying the file again would change, computed by the API server
from dry-run requests: nothing is written to the cluster.

"Applied" means what the current config renders, which is exactly what `make synth` writes and
what the last `cdktf deploy` of this checkout applied.

Exit status: 0 every workspace in sync, 1 drift found, 2 something could not be checked (bad
config, unknown workspace, no kubectl, unreachable cluster, refused credentials), even when
another workspace drifted: its diff is still printed.

Named workspaces are validated alone; without names, every workspace is, as for a synth.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from constructs.apply_graph import dependencies, transitive_closure
from constructs.istio_app import validate
from constructs.synthesized import read_stack, resources, synthesized_stacks
from constructs.workspace_config import ConfigError

# Each apply action of the step script, and the diff action that asks what it would change:
# kubectl diff as the apply applies, client-side or server-side with the same field manager.
DIFF_OF = {
    "apply": "diff",
    "apply-server-side": "diff-server-side",
}
# A step that neither answers nor fails (a black-holed API server) must not hang a CI job.
TIMEOUT_SECONDS = 300
_REFERENCE = re.compile(r"\$\{(self|var)\.([A-Za-z0-9_-]+)(?:\.([A-Za-z0-9_]+))?\}")


class Status(IntEnum):
    """Also the exit status; a larger value wins."""

    IN_SYNC = 0
    DRIFT = 1
    UNCHECKED = 2


@dataclass(frozen=True)
class Step:
    """One kubectl apply step of a stack, turned into its diff."""

    address: str
    argv: list[str]
    # The provisioner's `environment`, which Terraform sets over its own for the step.
    environment: dict[str, str]


class StackError(Exception):
    """A stack's apply step cannot be turned into a diff."""


def diff_steps(stack: dict[str, Any], environ: Mapping[str, str] | None = None) -> Iterator[Step]:
    """The stack's create-time kubectl apply steps, each as the same script call with `diff`,
    in apply order (the CRD before what needs it).

    The step script's last interpreter argument is its action. Arguments that are Terraform
    references are resolved as Terraform would: `${self.<attr>.<key>}` (the cluster target) from
    the resource itself, `${var.<name>}` from TF_VAR_<name> or the variable's default.
    """
    environ = os.environ if environ is None else environ
    waits_for = transitive_closure(dependencies(stack))
    found = resources(stack)
    for address in sorted(found, key=lambda a: (len(waits_for[a]), a)):
        body = found[address]
        for provisioner in body.get("provisioner", []):
            local = provisioner.get("local-exec")
            if local is None or local.get("when") == "destroy":
                continue
            interpreter = local.get("interpreter") or []
            if not interpreter or interpreter[-1] not in DIFF_OF:
                continue
            argv = [*interpreter[:-1], DIFF_OF[interpreter[-1]], local["command"]]
            environment = local.get("environment") or {}
            yield Step(
                address,
                [_resolve(stack, address, arg, environ) for arg in argv],
                {k: _resolve(stack, address, v, environ) for k, v in environment.items()},
            )


def _resolve(stack: dict[str, Any], address: str, value: str, environ: Mapping[str, str]) -> str:
    reference = _REFERENCE.fullmatch(value)
    if reference:
        kind, name, key = reference.groups()
        body = resources(stack)[address]
        variable = stack.get("variable", {}).get(name, {})
        if kind == "self" and key in body.get(name, {}):
            return str(body[name][key])
        if kind == "var" and key is None and f"TF_VAR_{name}" in environ:
            return environ[f"TF_VAR_{name}"]
        if kind == "var" and key is None and "default" in variable:
            return str(variable["default"])
    if "${" in value or "%{" in value:
        raise StackError(f"{address}: cannot resolve {value!r} outside Terraform")
    return value


def check_step(stack_dir: Path, step: Step, environ: Mapping[str, str]) -> tuple[Status, str]:
    """Run one diff; returns its status and what to print (the diff, or why it failed)."""
    try:
        # cwd: the stack directory, where Terraform runs the step (asset paths are relative,
        # ISTIO_KUBECTL_PROVISION_SCRIPT included). The step's environment goes over the
        # caller's, as local-exec sets it over Terraform's. A session of its own, so a timeout
        # ends kubectl too, not only the sh running it.
        with subprocess.Popen(
            step.argv,
            cwd=stack_dir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**environ, **step.environment},
            start_new_session=True,
        ) as process:
            try:
                stdout, stderr = process.communicate(timeout=TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):  # the whole group is gone
                    os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
                return Status.UNCHECKED, f"no answer within {TIMEOUT_SECONDS} s"
    except OSError as exc:
        return Status.UNCHECKED, str(exc)
    if process.returncode == 0:
        return Status.IN_SYNC, ""
    # 1 is drift only with a diff to show: a step that failed before kubectl diff ran says why
    # on stderr and prints nothing.
    if process.returncode == 1 and stdout.strip():
        return Status.DRIFT, stdout
    reason = stderr.strip() or stdout.strip() or f"exit status {process.returncode}"
    return Status.UNCHECKED, reason


def check_workspace(name: str, stack_dir: Path, environ: Mapping[str, str]) -> Status:
    """Check every apply step of one workspace and print the outcome; stops at the first step
    that cannot be checked, since the others would fail the same way (same kubectl, cluster)."""
    try:
        steps = list(diff_steps(read_stack(stack_dir), environ))
    except StackError as exc:
        print(f"{name}: could not check: {exc}")
        return Status.UNCHECKED
    if not steps:
        print(f"{name}: nothing applied with kubectl")
        return Status.IN_SYNC
    worst = Status.IN_SYNC
    for step in steps:
        status, output = check_step(stack_dir, step, environ)
        if status is Status.UNCHECKED:
            print(f"{name}: could not check {step.address}:")
            print(_indent(output))
            return Status.UNCHECKED
        if status is Status.DRIFT:
            print(f"{name}: drift in {step.address}; applying it again would change:")
            print(output, end="" if output.endswith("\n") else "\n")
        worst = max(worst, status)
    if worst is Status.IN_SYNC:
        print(f"{name}: in sync")
    return worst


def main(root: Path, names: Sequence[str], environ: Mapping[str, str] | None = None) -> int:
    """`environ`: what kubectl steps and named workspaces see (os.environ if None)."""
    environ = os.environ if environ is None else environ
    try:
        # Named workspaces are validated alone: a CI job checking a `credentials: environment`
        # workspace has KUBE_* set, which a kubeconfig workspace's validation rightly refuses.
        configs, manifests = validate(root, names, environ)
    except ConfigError as exc:
        print("Invalid workspace configuration; nothing was checked:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return Status.UNCHECKED
    worst = Status.IN_SYNC
    with synthesized_stacks(root, configs, manifests) as stacks:
        for config in configs:
            worst = max(worst, check_workspace(config.name, stacks / config.name, environ))
    return worst


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
