"""A namespace of the stack: created and owned, or, when it already exists, only labelled.

`existing_namespaces` in a workspace names namespaces that are in the cluster before the stack
and outlive it (an `istio-system` another tool made, a team's application namespace). For those
the stack writes only its own labels, with server-side apply under its own field manager, and
takes them off again on destroy; it never creates or deletes the namespace. `force` takes over
a label another manager set to a different value, as the stack's config says what it must be.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cdktf import ITerraformDependable, TerraformResource
from cdktf_cdktf_provider_kubernetes.labels import Labels, LabelsMetadata
from cdktf_cdktf_provider_kubernetes.namespace_v1 import NamespaceV1, NamespaceV1Metadata

from constructs import Construct

FIELD_MANAGER = "istio-cdktf"


def namespace_logical_id(name: str) -> str:
    """A namespace's Terraform address follows its name: `kubernetes_namespace_v1.istio_system`
    (or `kubernetes_labels.istio_system` for an existing one)."""
    return name.replace("-", "_")


def stack_namespace(
    scope: Construct,
    name: str,
    labels: Mapping[str, str] | None,
    *,
    existing: bool,
    depends_on: Sequence[ITerraformDependable] | None = None,
    construct_id: str | None = None,
) -> TerraformResource | None:
    """The namespace's resource; None for an existing namespace with no labels to set.

    `construct_id` (default: the logical id) only names the construct in `scope`."""
    resource: TerraformResource
    construct_id = construct_id or namespace_logical_id(name)
    if not existing:
        resource = NamespaceV1(
            scope,
            construct_id,
            metadata=NamespaceV1Metadata(name=name, labels=labels),
            depends_on=depends_on,
        )
    elif labels:
        resource = Labels(
            scope,
            construct_id,
            api_version="v1",
            kind="Namespace",
            metadata=LabelsMetadata(name=name),
            labels=dict(labels),
            field_manager=FIELD_MANAGER,
            force=True,
            depends_on=depends_on,
        )
    else:
        return None
    resource.override_logical_id(namespace_logical_id(name))
    return resource
