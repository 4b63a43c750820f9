"""The IstioOperator CRD, applied with kubectl because the kubernetes provider cannot plan a
custom resource whose CRD does not exist yet (the blog's reason for null_resources)."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import AssetType, DataResource, TerraformAsset
from cdktf_cdktf_provider_null.resource import Resource

from constructs import Construct
from constructs.istio_operator_manifest import MANIFESTS, manifest_sha1
from constructs.istio_releases import OPERATOR_APIS
from constructs.kubectl import Action, Kubectl, reapplied_with, target_triggers
from constructs.workspace_config import Cluster, IstioVersion

CRD_NAME = "istiooperators.install.istio.io"


@dataclass(frozen=True, kw_only=True)
class OperatorCrdProps:
    istio_version: IstioVersion
    cluster: Cluster
    kubectl: Kubectl


class OperatorCrd(Construct):
    """Applies manifests/<version>/crd-operator.yaml and waits until it is Established.

    Two resources, because a replacement must not delete: `applied` (a null_resource) is replaced
    whenever the file's bytes change (its trigger is their sha1) and only applies; `removal` (a
    terraform_data) deletes the CRD, and with it every IstioOperator, only when the stack is
    destroyed (or it is replaced by hand). It holds no cluster target, so repointing the
    workspace never touches it; `applied` is triggered by its id, so a replaced removal applies
    the CRD again. Everything else in the stack depends on `applied`, so on destroy the CRD goes
    last.
    """

    def __init__(self, scope: Construct, id: str, props: OperatorCrdProps) -> None:
        super().__init__(scope, id)
        relative = OPERATOR_APIS[props.istio_version].crd
        target = target_triggers(props.cluster)
        asset = TerraformAsset(self, "file", path=str(MANIFESTS / relative), type=AssetType.FILE)

        self.removal = DataResource(
            self,
            "removal",
            triggers_replace={"crd": CRD_NAME},
            provisioners=[
                props.kubectl.step(
                    Action.DELETE_CRD,
                    "${self.triggers_replace.crd}",
                    on_destroy=True,
                )
            ],
        )
        self.removal.override_logical_id("operator_crd_removal")
        self.applied = Resource(
            self,
            "applied",
            triggers={
                **target,
                "manifest_sha1": manifest_sha1(relative),
                **reapplied_with(self.removal),
            },
            provisioners=[
                props.kubectl.step(Action.APPLY, asset.path),
                props.kubectl.step(Action.WAIT_ESTABLISHED, CRD_NAME),
            ],
            depends_on=[self.removal],
        )
        self.applied.override_logical_id("operator_crd")
