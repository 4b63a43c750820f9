"""The apply/removal pair that every kubectl-managed object of both engines uses.

A null_resource that only applies, replaced whenever its triggers (the cluster target and the sha1
of the bytes) change, so a replacement never deletes; and a terraform_data whose destroy-time
step deletes, replaced only when what identifies the object changes. The removal holds no
cluster target (its destroy step names the configured one), the apply is triggered by the
removal's id (whatever replaces the removal re-applies the object), and the apply depends on the
removal, so on destroy the object is deleted before anything it depends on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cdktf import DataResource, ITerraformDependable, LocalExecProvisioner
from cdktf_cdktf_provider_null.resource import Resource

from constructs import Construct
from constructs.kubectl import Action, Kubectl, reapplied_with, target_triggers
from constructs.workspace_config import Cluster


def kubectl_pair(
    scope: Construct,
    *,
    name: str,
    kubectl: Kubectl,
    cluster: Cluster,
    content_triggers: Mapping[str, str],
    apply_steps: Sequence[tuple[Action, str]],
    identity: Mapping[str, str],
    removal_step: tuple[Action, str],
    depends_on: Sequence[ITerraformDependable],
) -> tuple[Resource, DataResource]:
    """`null_resource.<name>` and `terraform_data.<name>_removal`, as (applied, removal).

    `identity` is the removal's triggers_replace; the removal step's argument may refer to it
    through `${self.triggers_replace...}`.
    """
    action, argument = removal_step
    removal = DataResource(
        scope,
        "removal",
        triggers_replace=dict(identity),
        provisioners=[kubectl.step(action, argument, on_destroy=True)],
        depends_on=list(depends_on) or None,
    )
    removal.override_logical_id(f"{name}_removal")
    steps: list[LocalExecProvisioner] = [kubectl.step(a, arg) for a, arg in apply_steps]
    applied = Resource(
        scope,
        "applied",
        triggers={**target_triggers(cluster), **content_triggers, **reapplied_with(removal)},
        provisioners=steps,
        depends_on=[*depends_on, removal],
    )
    applied.override_logical_id(name)
    return applied, removal
