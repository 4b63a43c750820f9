"""Application namespaces whose pods get the Istio sidecar (the blog's ads-api)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from cdktf import TerraformResource

from constructs import Construct
from constructs.namespaces import stack_namespace

INJECTION_LABEL = {"istio-injection": "enabled"}


@dataclass(frozen=True, kw_only=True)
class InjectionNamespacesProps:
    names: Sequence[str]
    # Extra labels by namespace name; the injection label is always added on top.
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # Namespaces that exist already: labelled only, never created or deleted.
    existing: Collection[str] = ()


class InjectionNamespaces(Construct):
    """One namespace per name, labelled `istio-injection=enabled` plus its configured labels."""

    def __init__(self, scope: Construct, id: str, props: InjectionNamespacesProps) -> None:
        super().__init__(scope, id)
        self.namespaces: dict[str, TerraformResource] = {}
        for name in props.names:
            labels = dict(sorted({**props.labels.get(name, {}), **INJECTION_LABEL}.items()))
            # The Terraform address follows the namespace name, never its position in the list.
            namespace = stack_namespace(
                self, name, labels, existing=name in props.existing, construct_id=name
            )
            assert namespace is not None  # the injection label is always there to set
            self.namespaces[name] = namespace
