"""The workspace's `Istio` (sailoperator.io/v1): rendered at synth, applied server-side after the
CRDs and the Sail Operator, deleted first on destroy, waiting until istiod is uninstalled."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cdktf import AssetType, ITerraformDependable, TerraformAsset, TerraformResource

from constructs import Construct
from constructs.control_plane import materialize
from constructs.istio_operator_manifest import RenderedManifest
from constructs.kubectl import Action, Kubectl
from constructs.kubectl_pair import kubectl_pair
from constructs.namespaces import namespace_logical_id, stack_namespace
from constructs.plan_view import manifest_triggers
from constructs.workspace_config import Cluster


def control_plane_namespace(
    scope: Construct, name: str, *, existing: bool
) -> TerraformResource | None:
    """`spec.namespace` must exist before the Istio is applied (the operator refuses it
    otherwise). Unlabelled, and at the address a 1.23.6 stack gave it
    (`kubernetes_namespace_v1.istio_system`), so moving a workspace to Sail keeps it. One listed
    in `existing_namespaces` is left alone (None: no labels to set)."""
    return stack_namespace(
        scope, name, {}, existing=existing, construct_id=f"{namespace_logical_id(name)}_namespace"
    )


@dataclass(frozen=True, kw_only=True)
class SailControlPlaneProps:
    manifest: RenderedManifest
    cluster: Cluster
    kubectl: Kubectl
    # How long destroy waits for the Istio and its IstioRevision (istiod's uninstall).
    delete_timeout_seconds: int
    # The CRDs, the operator's deployment and RBAC, and the control plane's namespace.
    depends_on: Sequence[ITerraformDependable]


class SailControlPlane(Construct):
    """Applies the rendered Istio (and its IstioRevisionTag); trigger: the rendered bytes' sha1
    (and their text, for the plan).

    The pair of ControlPlane: a changed value replaces only `applied` (a server-side re-apply,
    which the operator reconciles in place); `removal` deletes the Istio on destroy, or when
    its name or namespace (immutable in the CRD) changes, and waits until the operator has
    uninstalled istiod. It depends on the operator, so the operator is still running then.
    """

    def __init__(self, scope: Construct, id: str, props: SailControlPlaneProps) -> None:
        super().__init__(scope, id)
        manifest = props.manifest
        path = materialize(manifest.data, manifest.sha1, "istio.yaml")
        asset = TerraformAsset(self, "file", path=str(path), type=AssetType.FILE)
        self.applied, self.removal = kubectl_pair(
            self,
            name="istio",
            kubectl=props.kubectl,
            cluster=props.cluster,
            # The text beside the sha1, so a plan shows the changed lines.
            content_triggers=manifest_triggers(manifest.data, manifest.sha1),
            apply_steps=[(Action.APPLY_SERVER_SIDE, asset.path)],
            identity={"name": manifest.name, "namespace": manifest.namespace},
            removal_step=(
                Action.DELETE_ISTIO,
                f"${{self.triggers_replace.name}}/{props.delete_timeout_seconds}",
            ),
            depends_on=props.depends_on,
        )
