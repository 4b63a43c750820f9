"""The workspace's IstioOperator: rendered at synth, applied with kubectl after the CRD and the
operator, deleted first on destroy (after the operator has removed the control plane)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cdktf import AssetType, ITerraformDependable, TerraformAsset

from constructs import Construct
from constructs.istio_operator_manifest import RenderedManifest
from constructs.kubectl import Action, Kubectl
from constructs.kubectl_pair import kubectl_pair
from constructs.plan_view import manifest_triggers
from constructs.workspace_config import Cluster


@dataclass(frozen=True, kw_only=True)
class ControlPlaneProps:
    manifest: RenderedManifest
    cluster: Cluster
    kubectl: Kubectl
    # How long destroy waits for the operator to remove the control plane and its finalizer.
    delete_timeout_seconds: int
    # The CRD, the operator's deployment and RBAC, and the watched namespace.
    depends_on: Sequence[ITerraformDependable]


class ControlPlane(Construct):
    """Applies the rendered IstioOperator; its trigger is the sha1 of the rendered bytes.

    As with the CRD, applying and deleting are separate resources: a changed value replaces
    `applied` (a plain re-apply, which the operator reconciles in place) and never deletes the
    control plane. `removal` deletes the IstioOperator on destroy, or when its name or namespace
    changes, and waits for the operator's finalizer; it depends on the operator, so the operator
    is still running while it does. Its cluster target and timeout are read from the
    configuration when it runs. `applied` is triggered by the removal's id, so whatever replaces
    the removal (deleting the IstioOperator) applies it again.
    """

    def __init__(self, scope: Construct, id: str, props: ControlPlaneProps) -> None:
        super().__init__(scope, id)
        manifest = props.manifest
        asset = TerraformAsset(self, "file", path=str(_materialize(manifest)), type=AssetType.FILE)
        self.applied, self.removal = kubectl_pair(
            self,
            name="control_plane",
            kubectl=props.kubectl,
            cluster=props.cluster,
            content_triggers=manifest_triggers(manifest.data, manifest.sha1),
            apply_steps=[(Action.APPLY, asset.path)],
            identity={"namespace": manifest.namespace, "name": manifest.name},
            removal_step=(
                Action.DELETE_ISTIOOPERATOR,
                "${self.triggers_replace.namespace}/${self.triggers_replace.name}"
                f"/{props.delete_timeout_seconds}",
            ),
            depends_on=props.depends_on,
        )


@cache
def _scratch() -> Path:
    # TerraformAsset copies from a file at synth time; rendered manifests wait here until then.
    # Only the content-addressed copy under cdktf.out is kept, so this path never reaches output.
    path = Path(tempfile.mkdtemp(prefix="istio-cdktf-rendered-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def _materialize(manifest: RenderedManifest) -> Path:
    return materialize(manifest.data, manifest.sha1, "istio-operator.yaml")


def materialize(data: bytes, sha1: str, filename: str) -> Path:
    """A file holding `data` (whose sha1 is `sha1`) for a TerraformAsset, written once per synth."""
    path = _scratch() / sha1 / filename
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return path
