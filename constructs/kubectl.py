"""Run kubectl from Terraform provisioners, aimed at the same cluster as the kubernetes provider.

Every step runs constructs/kubectl_run.sh, copied into the stack as an asset, as
`/bin/sh <script> CREDENTIALS KUBECONFIG CONTEXT ACTION ARGUMENT`. Terraform's local-exec passes
the interpreter list and the command as separate argv entries, so no shell ever parses a config
value, and manifest bytes go from a file to kubectl's stdin untouched.

The cluster target travels with the resource and is read back from `self`, because destroy-time
provisioners may refer to nothing else: from `self.triggers` on the apply null_resources (a new
target re-applies), from `self.input` on the removal terraform_data resources (a new target is
an in-place update, never a replacement that would delete the control plane).

Which kubectl runs is the workspace's `kubectl` setting: every step carries it, and the path of
constructs/kubectl_provision.sh (a second asset), in its local-exec `environment`, as literal
strings. So destroy-time steps have it too, a Terraform Cloud workspace running the synthesized
directory needs nothing else, and changing it re-applies nothing (it is not a trigger).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from cdktf import AssetType, LocalExecProvisioner, TerraformAsset

from constructs import Construct
from constructs.workspace_config import Cluster, KubectlSettings

SCRIPT = Path(__file__).resolve().parent / "kubectl_run.sh"
PROVISION_SCRIPT = Path(__file__).resolve().parent / "kubectl_provision.sh"


class Action(StrEnum):
    APPLY = "apply"
    WAIT_ESTABLISHED = "wait-established"
    DELETE_CRD = "delete-crd"
    DELETE_ISTIOOPERATOR = "delete-istiooperator"


def target_triggers(cluster: Cluster) -> dict[str, str]:
    """The cluster identity a kubectl step uses; also a trigger, so retargeting re-applies."""
    return {
        "credentials": cluster.credentials,
        "kubeconfig": cluster.kubeconfig or "",
        "context": cluster.context or "",
    }


def provision_environment(settings: KubectlSettings, provision_script: str) -> dict[str, str]:
    """The variables constructs/kubectl_provision.sh reads, in a stable order."""
    environment = {
        "ISTIO_KUBECTL_PROVISION_SCRIPT": provision_script,
        "ISTIO_KUBECTL_PROVISION": settings.provision,
        "ISTIO_KUBECTL_VERSION": settings.version,
        "ISTIO_KUBECTL_DOWNLOAD_URL": settings.download_url,
    }
    for platform, digest in sorted(settings.pins.items()):
        environment[f"ISTIO_KUBECTL_SHA256_{platform.upper().replace('-', '_')}"] = digest
    return environment


class Kubectl(Construct):
    """The kubectl step scripts of one stack; `step` builds provisioners that run them."""

    def __init__(self, scope: Construct, id: str, settings: KubectlSettings) -> None:
        super().__init__(scope, id)
        self.script = TerraformAsset(self, "script", path=str(SCRIPT), type=AssetType.FILE)
        provision = TerraformAsset(
            self, "provision", path=str(PROVISION_SCRIPT), type=AssetType.FILE
        )
        self.environment = provision_environment(settings, provision.path)

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
            environment=self.environment,
            when="destroy" if on_destroy else None,
        )
