"""Our CRD files say what upstream's say (shared FACTS (a)); only the descriptions are ours."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from constructs.istio_operator_manifest import MANIFESTS
from constructs.istio_releases import OPERATOR_APIS

PRINTER_COLUMNS = [
    {"name": "Revision", "type": "string", "jsonPath": ".spec.revision"},
    {"name": "Status", "type": "string", "jsonPath": ".status.status"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]
PRESERVED = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
EXPECTED: dict[str, dict[str, Any]] = {
    "1.7.3": {
        "names": {
            "kind": "IstioOperator",
            "plural": "istiooperators",
            "singular": "istiooperator",
            "shortNames": ["iop"],
        },
        "conversion": None,
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "spec": PRESERVED,
                    "status": PRESERVED,
                },
            }
        },
    },
    "1.23.6": {
        "names": {
            "kind": "IstioOperator",
            "listKind": "IstioOperatorList",
            "plural": "istiooperators",
            "singular": "istiooperator",
            "shortNames": ["iop", "io"],
        },
        "conversion": {"strategy": "None"},
        "schema": {"openAPIV3Schema": PRESERVED},
    },
}


def without_descriptions(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_descriptions(v) for k, v in value.items() if k != "description"}
    if isinstance(value, list):
        return [without_descriptions(v) for v in value]
    return value


@pytest.mark.parametrize("version", sorted(OPERATOR_APIS))
def test_crd_matches_upstream_semantics(version: str) -> None:
    [crd] = [
        d for d in yaml.safe_load_all((MANIFESTS / OPERATOR_APIS[version].crd).read_text()) if d
    ]
    crd = without_descriptions(crd)
    expected = EXPECTED[version]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"] == {
        "name": "istiooperators.install.istio.io",
        "labels": {"release": "istio"},
    }
    spec = crd["spec"]
    assert spec["group"] == "install.istio.io"
    assert spec["scope"] == "Namespaced"
    assert spec["names"] == expected["names"]
    assert spec.get("conversion") == expected["conversion"]
    [served] = spec["versions"]
    assert served == {
        "name": "v1alpha1",
        "served": True,
        "storage": True,
        "additionalPrinterColumns": PRINTER_COLUMNS,
        "schema": expected["schema"],
        "subresources": {"status": {}},
    }
