"""Application namespaces whose pods get the Istio sidecar (the blog's ads-api)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cdktf_cdktf_provider_kubernetes.namespace_v1 import NamespaceV1, NamespaceV1Metadata

from constructs import Construct
from constructs.istio_operator import namespace_logical_id

INJECTION_LABEL = {"istio-injection": "enabled"}


@dataclass(frozen=True, kw_only=True)
class InjectionNamespacesProps:
    names: Sequence[str]
    # Extra labels by namespace name; the injection label is always added on top.
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


class InjectionNamespaces(Construct):
    """One namespace per name, labelled `istio-injection=enabled` plus its configured labels."""

    def __init__(self, scope: Construct, id: str, props: InjectionNamespacesProps) -> None:
        super().__init__(scope, id)
        self.namespaces: dict[str, NamespaceV1] = {}
        for name in props.names:
            labels = dict(sorted({**props.labels.get(name, {}), **INJECTION_LABEL}.items()))
            namespace = NamespaceV1(
                self, name, metadata=NamespaceV1Metadata(name=name, labels=labels)
            )
            # The Terraform address follows the namespace name, never its position in the list.
            namespace.override_logical_id(namespace_logical_id(name))
            self.namespaces[name] = namespace
