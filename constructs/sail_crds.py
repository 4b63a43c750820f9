"""The Sail Operator's CRDs and Istio's own (the operator installs neither), applied with kubectl.

All the files of one release go to the cluster in a single server-side apply, then (a step of
its own) a wait until every CRD is Established. The apply's triggers hold one sha1 per CRD, so a
plan names exactly which CRD changed, while the cluster sees one kubectl call instead of twenty.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cdktf import AssetType, ITerraformDependable, TerraformAsset

from constructs import Construct
from constructs.control_plane import materialize
from constructs.istio_operator_manifest import MANIFESTS
from constructs.istio_releases import SailApi, crd_name
from constructs.kubectl import Action, Kubectl
from constructs.kubectl_pair import kubectl_pair
from constructs.workspace_config import Cluster

# The bundle's file name under the stack's assets.
BUNDLE = "sail-crds.yaml"


@dataclass(frozen=True)
class CrdBundle:
    """The exact bytes applied (every CRD file in order, as separate YAML documents), the sha1
    of each file's bytes by CRD name, and where the bytes wait for the TerraformAsset."""

    data: bytes
    sha1_by_crd: dict[str, str]

    @functools.cached_property
    def sha1(self) -> str:
        return hashlib.sha1(self.data, usedforsecurity=False).hexdigest()


def crd_bundle(api: SailApi) -> CrdBundle:
    return _crd_bundle(api.crd_dir, api.crd_files)


@functools.cache
def _crd_bundle(crd_dir: str, crd_files: tuple[str, ...]) -> CrdBundle:
    """Read and hash the ~3 MB of CRDs once per synth, however many stacks use them."""
    parts: list[bytes] = []
    sha1s: dict[str, str] = {}
    for file in crd_files:
        data = (MANIFESTS / crd_dir / file).read_bytes()
        sha1s[crd_name(file)] = hashlib.sha1(data, usedforsecurity=False).hexdigest()
        # Each file is one YAML document; a separator before each keeps them apart (a file
        # that starts with its own `---` then adds an empty document, which kubectl skips).
        parts.append(b"---\n" + data + (b"" if data.endswith(b"\n") else b"\n"))
    return CrdBundle(data=b"".join(parts), sha1_by_crd=sha1s)


@dataclass(frozen=True, kw_only=True)
class SailCrdsProps:
    api: SailApi
    cluster: Cluster
    kubectl: Kubectl
    # Created after these (the control plane's namespace), and destroyed before them.
    depends_on: Sequence[ITerraformDependable] = ()


class SailCrds(Construct):
    """Applies every CRD of the Sail release server-side and waits until all are Established.

    The same pair as OperatorCrd: `applied` (a null_resource, replaced when any file's bytes
    change) only applies, after the migration guard (no Sail step while an IstioOperator
    remains); `removal` (a terraform_data) deletes the CRDs when the stack is destroyed, and
    refuses while any resource of their kinds remains. Everything Sail depends on `applied`, so
    on destroy the CRDs go after the Istio resource and the operator.
    """

    def __init__(self, scope: Construct, id: str, props: SailCrdsProps) -> None:
        super().__init__(scope, id)
        bundle = crd_bundle(props.api)
        path = materialize(bundle.data, bundle.sha1, BUNDLE)
        asset = TerraformAsset(self, "file", path=str(path), type=AssetType.FILE)
        self.applied, self.removal = kubectl_pair(
            self,
            name="sail_crds",
            kubectl=props.kubectl,
            cluster=props.cluster,
            content_triggers=bundle.sha1_by_crd,
            # Two steps, not one action: each long kubectl call is then its step's process
            # itself, and a cancelled run leaves neither running (constructs/kubectl_run.sh).
            apply_steps=[
                (Action.REFUSE_ISTIOOPERATOR, "-"),
                (Action.APPLY_SERVER_SIDE, asset.path),
                (Action.WAIT_CRDS_ESTABLISHED, asset.path),
            ],
            identity={"crds": " ".join(props.api.crd_names())},
            removal_step=(Action.DELETE_CRDS, "${self.triggers_replace.crds}"),
            depends_on=props.depends_on,
        )
