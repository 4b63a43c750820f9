"""Run kubectl from Terraform provisioners, aimed at the same cluster as the kubernetes provider.

Every step runs constructs/kubectl_run.sh, copied into the stack as an asset, as
`/bin/sh <script> CREDENTIALS KUBECONFIG CONTEXT ACTION ARGUMENT`. Terraform's local-exec passes
the interpreter list and the command as separate argv entries, so no shell ever parses a config
value, and manifest bytes go from a file to kubectl's stdin untouched.

Apply steps read the cluster target back from `self.triggers`, where it is a trigger: a new
target re-applies. Destroy steps name the target of the configuration being run, literally,
because that is the one the kubernetes provider uses in the same destroy; the target an earlier
apply stored would differ after a retarget that was synthesized but not applied. (A destroy-time
provisioner may refer to nothing but `self`, and its block is read from the configuration.)

Which kubectl runs is the workspace's `kubectl` setting: every step carries it, and the path of
constructs/kubectl_provision.sh (a second asset), in its local-exec `environment`, as literal
strings. So destroy-time steps have it too, a Terraform Cloud workspace running the synthesized
directory needs nothing else, and changing it re-applies nothing (it is not a trigger).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from cdktf import AssetType, DataResource, LocalExecProvisioner, TerraformAsset

from constructs import Construct
from constructs.workspace_config import Cluster, KubectlSettings

SCRIPT = Path(__file__).resolve().parent / "kubectl_run.sh"
PROVISION_SCRIPT = Path(__file__).resolve().parent / "kubectl_provision.sh"


class Action(StrEnum):
    APPLY = "apply"
    WAIT_ESTABLISHED = "wait-established"
    DELETE_CRD = "delete-crd"
    DELETE_ISTIOOPERATOR = "delete-istiooperator"
    # The Sail Operator engine.
    REFUSE_ISTIOOPERATOR = "refuse-istiooperator"
    APPLY_SERVER_SIDE = "apply-server-side"
    WAIT_CRDS_ESTABLISHED = "wait-crds-established"
    DELETE_ISTIO = "delete-istio"
    DELETE_CRDS = "delete-crds"


def target_triggers(cluster: Cluster) -> dict[str, str]:
    """The cluster identity a kubectl step uses; also a trigger, so retargeting re-applies."""
    return {
        "credentials": cluster.credentials,
        "kubeconfig": cluster.kubeconfig or "",
        "context": cluster.context or "",
    }


def reapplied_with(removal: DataResource) -> dict[str, str]:
    """A trigger for an apply null_resource that ties it to its removal resource.

    Replacing a removal runs its destroy step, which deletes the object; an apply resource
    triggered by the removal's id is then replaced too and applies the object again, whatever
    replaced the removal (`-replace`, a taint, a changed `triggers_replace`).
    """
    return {"removal_id": removal.id}


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

    def __init__(
        self, scope: Construct, id: str, *, cluster: Cluster, settings: KubectlSettings
    ) -> None:
        super().__init__(scope, id)
        self.script = TerraformAsset(self, "script", path=str(SCRIPT), type=AssetType.FILE)
        provision = TerraformAsset(
            self, "provision", path=str(PROVISION_SCRIPT), type=AssetType.FILE
        )
        self.target = target_triggers(cluster)
        self.environment = provision_environment(settings, provision.path)

    def step(
        self,
        action: Action,
        argument: str,
        *,
        on_destroy: bool = False,
    ) -> LocalExecProvisioner:
        """A local-exec provisioner. An apply step reads its target from `self.triggers`, which
        must hold the `target_triggers`; a destroy step names the configured target itself."""
        keys = ("credentials", "kubeconfig", "context")
        if on_destroy:
            target = [self.target[key] for key in keys]
        else:
            target = [f"${{self.triggers.{key}}}" for key in keys]
        return LocalExecProvisioner(
            type="local-exec",
            interpreter=["/bin/sh", self.script.path, *target, action.value],
            command=argument,
            environment=self.environment,
            when="destroy" if on_destroy else None,
        )
