"""Run kubectl from Terraform provisioners, aimed at the same cluster as the kubernetes provider.

Every step runs constructs/kubectl_run.sh, copied into the stack as an asset, as
`/bin/sh <script> CREDENTIALS KUBECONFIG CONTEXT ACTION ARGUMENT`. Terraform's local-exec passes
the interpreter list and the command as separate argv entries, so no shell ever parses a config
value, and manifest bytes go from a file to kubectl's stdin untouched.

The cluster target travels with the resource and is read back from `self`, because destroy-time
provisioners may refer to nothing else: from `self.triggers` on the apply null_resources (a new
target re-applies), from `self.input` on the removal terraform_data resources (a new target is
an in-place update, never a replacement that would delete the control plane).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from cdktf import AssetType, LocalExecProvisioner, TerraformAsset

from constructs import Construct
from constructs.workspace_config import Cluster

SCRIPT = Path(__file__).resolve().parent / "kubectl_run.sh"


class Action(StrEnum):
    APPLY = "apply"
    WAIT_ESTABLISHED = "wait-established"
    DELETE_CRD = "delete-crd"
    DELETE_ISTIOOPERATOR = "delete-istiooperator"
    # The Sail Operator engine.
    REFUSE_ISTIOOPERATOR = "refuse-istiooperator"
    APPLY_SERVER_SIDE = "apply-server-side"
    APPLY_CRDS = "apply-crds"
    DELETE_ISTIO = "delete-istio"
    DELETE_CRDS = "delete-crds"


def target_triggers(cluster: Cluster) -> dict[str, str]:
    """The cluster identity a kubectl step uses; also a trigger, so retargeting re-applies."""
    return {
        "credentials": cluster.credentials,
        "kubeconfig": cluster.kubeconfig or "",
        "context": cluster.context or "",
    }


class Kubectl(Construct):
    """The kubectl step script of one stack; `step` builds provisioners that run it."""

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        self.script = TerraformAsset(self, "script", path=str(SCRIPT), type=AssetType.FILE)

    def step(
        self,
        action: Action,
        argument: str,
        *,
        target_in: Literal["triggers", "input"] = "triggers",
        on_destroy: bool = False,
    ) -> LocalExecProvisioner:
        """A local-exec provisioner; `self.<target_in>` must hold the `target_triggers`."""
        return LocalExecProvisioner(
            type="local-exec",
            interpreter=[
                "/bin/sh",
                self.script.path,
                f"${{self.{target_in}.credentials}}",
                f"${{self.{target_in}.kubeconfig}}",
                f"${{self.{target_in}.context}}",
                action.value,
            ],
            command=argument,
            when="destroy" if on_destroy else None,
        )
