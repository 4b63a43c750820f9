"""The IstioOperator CRD, applied with kubectl because the kubernetes provider cannot plan a
custom resource whose CRD does not exist yet (the blog's reason for null_resources)."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import AssetType, TerraformAsset

from constructs import Construct
from constructs.istio_operator_manifest import MANIFESTS, manifest_sha1
from constructs.istio_releases import OPERATOR_APIS
from constructs.kubectl import Action, Kubectl
from constructs.kubectl_pair import kubectl_pair
from constructs.plan_view import manifest_file_triggers
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
        asset = TerraformAsset(self, "file", path=str(MANIFESTS / relative), type=AssetType.FILE)

        self.applied, self.removal = kubectl_pair(
            self,
            name="operator_crd",
            kubectl=props.kubectl,
            cluster=props.cluster,
            content_triggers=manifest_file_triggers(relative, manifest_sha1(relative)),
            apply_steps=[(Action.APPLY, asset.path), (Action.WAIT_ESTABLISHED, CRD_NAME)],
            identity={"crd": CRD_NAME},
            removal_step=(Action.DELETE_CRD, "${self.triggers_replace.crd}"),
            depends_on=(),
        )
