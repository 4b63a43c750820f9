"""The Sail Operator install matches the chart's render object by object, and follows its props.

The construct is synthesized alone (a bare stack with the kubernetes provider), so these tests
hold whatever the workspace stack around it does. The render in tests/data is checked against
the chart's own templates and values (shared/upstream) at the end.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import cdktf
import pytest
import yaml
from cdktf import ITerraformDependable, TerraformStack
from cdktf_cdktf_provider_kubernetes.provider import KubernetesProvider
from cdktf_cdktf_provider_null.provider import NullProvider
from cdktf_cdktf_provider_null.resource import Resource

from constructs.istio_releases import SAIL_OPERATOR_RELEASES, SailOperatorRelease
from constructs.sail_operator import SailOperatorInstall, SailOperatorInstallProps
from tests.conftest import ROOT

# The conversion's common parts, and the upstream checkout, as the Istio Operator's tests use them.
from tests.test_istio_operator import (
    _KINDS as _OPERATOR_KINDS,
)
from tests.test_istio_operator import (
    _MAPS,
    _TERRAFORM_ONLY,
    SHARED_UPSTREAM,
    _camel,
    load_yaml_docs,
    objects_by_key,
)
from tests.test_provider_modules import python

Objects = dict[tuple[str, str, str], dict[str, Any]]

DATA = ROOT / "tests" / "data"
RELEASE = SAIL_OPERATOR_RELEASES["1.30.3"]
RENDER = DATA / "sail-operator-chart-1.30.3.yaml"


def install(
    *,
    release: SailOperatorRelease = RELEASE,
    image: str | None = None,
    namespace: str | None = None,
    requests: Mapping[str, str] | None = None,
    limits: Mapping[str, str] | None = None,
    depends_on: list[ITerraformDependable] | None = None,
    stack: TerraformStack | None = None,
) -> tuple[TerraformStack, SailOperatorInstall]:
    """The construct in a stack of its own; None: the chart default (or the props default)."""
    if stack is None:
        stack = TerraformStack(cdktf.Testing.app(), "test")
        KubernetesProvider(stack, "kubernetes", config_path="~/.kube/config")
    props = SailOperatorInstallProps(
        release=release,
        image=image or release.image,
        resource_requests=release.default_resource_requests if requests is None else requests,
        resource_limits=release.default_resource_limits if limits is None else limits,
        depends_on=depends_on or (),
        **({} if namespace is None else {"namespace": namespace}),
    )
    return stack, SailOperatorInstall(stack, "sail_operator", props)


def synth(stack: TerraformStack) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(cdktf.Testing.synth(stack))
    return result


# --- Terraform JSON back to Kubernetes objects -------------------------------------------------
_KINDS = {
    **_OPERATOR_KINDS,
    "kubernetes_role_v1": ("rbac.authorization.k8s.io/v1", "Role"),
    "kubernetes_role_binding_v1": ("rbac.authorization.k8s.io/v1", "RoleBinding"),
}
# The provider names repeated blocks in the singular, and spells two acronyms as words.
_PLURALS = {
    "container": "containers",
    "port": "ports",
    "rule": "rules",
    "subject": "subjects",
    "volume": "volumes",
    "volume_mount": "volumeMounts",
    "node_selector_term": "nodeSelectorTerms",
}
_ACRONYMS = {"non_resource_urls": "nonResourceURLs", "downward_api": "downwardAPI"}
# The provider takes these integers as strings and parses them before sending them; a file mode
# as an octal string.
_INT_STRINGS = {"replicas", "target_port", "port"}
_OCTAL_STRINGS = {"default_mode"}


def _to_k8s(value: Any, maps: set[str]) -> Any:
    if isinstance(value, list):
        return [_to_k8s(item, maps) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in _PLURALS and isinstance(item, list):
            name = _PLURALS[key]
        else:
            name = _ACRONYMS.get(key) or _camel(key)
        if key in maps:
            out[name] = dict(item)
        elif key in _INT_STRINGS and isinstance(item, str):
            out[name] = int(item)
        elif key in _OCTAL_STRINGS:
            out[name] = int(item, 8)
        else:
            out[name] = _to_k8s(item, maps)
    return out


def k8s_objects(stack: dict[str, Any]) -> Objects:
    """Every kubernetes_* resource of a synthesized stack as an object, by (kind, ns, name)."""
    objects: Objects = {}
    for tf_type, resources in stack["resource"].items():
        for body in resources.values():
            api_version, kind = _KINDS[tf_type]
            # A Service's selector is a plain map; a Deployment's is a block.
            maps = _MAPS | {"selector"} if kind == "Service" else _MAPS
            fields = {k: v for k, v in body.items() if k not in _TERRAFORM_ONLY}
            obj = {"apiVersion": api_version, "kind": kind, **_to_k8s(fields, maps)}
            key = (kind, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            assert key not in objects, f"{key} is defined twice"
            objects[key] = obj
    return objects


def expected_objects() -> Objects:
    """The chart's objects (tests/data), changed only where the construct deliberately differs."""
    expected = objects_by_key(load_yaml_docs(RENDER))
    deployment = expected["Deployment", "sail-operator", "sail-operator"]["spec"]
    # `strategy: {}` is the API server's default (RollingUpdate, 25%/25%) spelled out as nothing;
    # the provider has no way to write an empty block, and omitting it is the same object.
    assert deployment.pop("strategy") == {}
    # The token is what the operator authenticates with and where it reads its own namespace
    # from; the provider defaults it to true as well, but it is never left implicit.
    deployment["template"]["spec"]["automountServiceAccountToken"] = True
    # helm would need --create-namespace; the stack creates it, labelled.
    expected["Namespace", "", "sail-operator"] = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "sail-operator", "labels": {"istio-injection": "disabled"}},
    }
    return expected


def _container(objects: Objects, namespace: str = "sail-operator") -> dict[str, Any]:
    deployment = objects["Deployment", namespace, "sail-operator"]
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


# --- The chart render --------------------------------------------------------------------------
def test_the_install_is_the_chart_render_object_by_object() -> None:
    # GIVEN the release's image and resources, as the chart defaults them
    stack, _ = install()
    # WHEN the construct is synthesized
    actual = k8s_objects(synth(stack))
    # THEN every object is the rendered one, field by field, lists in order
    expected = expected_objects()
    assert sorted(actual) == sorted(expected)
    for key, obj in expected.items():
        assert actual[key] == obj, key


def test_the_render_has_the_chart_s_10_objects_and_the_release_its_rules() -> None:
    kinds = [d["kind"] for d in load_yaml_docs(RENDER)]
    assert kinds == [
        "ServiceAccount",
        *["ClusterRole"] * 3,
        *["ClusterRoleBinding"] * 2,
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
    ]
    rule_counts = [len(role.rules) for role in RELEASE.cluster_roles.values()]
    assert rule_counts == [31, 2, 1]
    assert len(RELEASE.pod_annotations) == 1 + 88


def test_the_operator_reads_its_config_file_from_the_downward_api_volume() -> None:
    # The operator exits at start without /etc/sail-operator/config.properties.
    pod = k8s_objects(synth(install()[0]))["Deployment", "sail-operator", "sail-operator"]["spec"][
        "template"
    ]["spec"]
    [volume] = pod["volumes"]
    assert volume["downwardAPI"]["items"] == [
        {"fieldRef": {"fieldPath": "metadata.annotations"}, "path": "config.properties"}
    ]
    [mount] = pod["containers"][0]["volumeMounts"]
    assert mount == {"mountPath": "/etc/sail-operator", "name": volume["name"], "readOnly": True}


# --- Props reach their fields ------------------------------------------------------------------
def test_the_image_is_set_as_given() -> None:
    stack, _ = install(image="registry.example.com/mirror/sail-operator:1.30.3")
    image = _container(k8s_objects(synth(stack)))["image"]
    assert image == "registry.example.com/mirror/sail-operator:1.30.3"


def test_the_chart_image_is_the_release_default() -> None:
    assert _container(k8s_objects(synth(install()[0])))["image"] == (
        "quay.io/sail-dev/sail-operator:1.30.3"
    )


def test_resources_are_set_as_given() -> None:
    stack, _ = install(requests={"cpu": "100m", "memory": "128Mi"}, limits={"memory": "512Mi"})
    assert _container(k8s_objects(synth(stack)))["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"memory": "512Mi"},
    }


def test_empty_resources_are_left_out() -> None:
    stack, _ = install(requests={}, limits={})
    body = synth(stack)["resource"]["kubernetes_deployment_v1"]["sail_operator"]
    assert "resources" not in body["spec"]["template"]["spec"]["container"][0]


def test_the_namespace_reaches_every_namespaced_field() -> None:
    objects = k8s_objects(synth(install(namespace="mesh-operator")[0]))
    assert objects["Namespace", "", "mesh-operator"]["metadata"]["labels"] == {
        "istio-injection": "disabled"
    }
    namespaced = sorted((kind, name) for kind, ns, name in objects if ns)
    assert namespaced == [
        ("Deployment", "sail-operator"),
        ("Role", "leader-election-role"),
        ("RoleBinding", "leader-election-rolebinding"),
        ("Service", "sail-operator-metrics-service"),
        ("ServiceAccount", "sail-operator"),
    ]
    assert {ns for _, ns, _ in objects if ns} == {"mesh-operator"}
    for kind, name in [
        ("ClusterRoleBinding", "sailoperator-rolebinding"),
        ("ClusterRoleBinding", "sailoperator-proxy-rolebinding"),
    ]:
        assert objects[kind, "", name]["subjects"] == [
            {"kind": "ServiceAccount", "name": "sail-operator", "namespace": "mesh-operator"}
        ]
    binding = objects["RoleBinding", "mesh-operator", "leader-election-rolebinding"]
    assert binding["subjects"][0]["namespace"] == "mesh-operator"


# --- What the Istio resource and the stack depend on -------------------------------------------
def test_terraform_addresses_are_plain_nouns_apart_from_the_istio_operator_s() -> None:
    ids = sorted(
        f"{tf_type}.{logical_id}"
        for tf_type, resources in synth(install()[0])["resource"].items()
        for logical_id in resources
    )
    assert ids == [
        "kubernetes_cluster_role_binding_v1.sail_operator",
        "kubernetes_cluster_role_binding_v1.sail_operator_proxy",
        "kubernetes_cluster_role_v1.sail_operator",
        "kubernetes_cluster_role_v1.sail_operator_metrics_reader",
        "kubernetes_cluster_role_v1.sail_operator_proxy",
        "kubernetes_deployment_v1.sail_operator",
        "kubernetes_namespace_v1.sail_operator",
        "kubernetes_role_binding_v1.sail_operator",
        "kubernetes_role_v1.sail_operator",
        "kubernetes_service_account_v1.sail_operator",
        "kubernetes_service_v1.sail_operator",
    ]


def test_the_namespace_address_follows_its_name() -> None:
    resources = synth(install(namespace="mesh-operator")[0])["resource"]
    assert list(resources["kubernetes_namespace_v1"]) == ["mesh_operator"]


def test_the_deployment_waits_for_its_rbac_and_its_rollout() -> None:
    resources = synth(install()[0])["resource"]
    deployment = resources["kubernetes_deployment_v1"]["sail_operator"]
    assert deployment["wait_for_rollout"] is True
    assert deployment["depends_on"] == [
        "kubernetes_service_account_v1.sail_operator",
        "kubernetes_cluster_role_binding_v1.sail_operator",
        "kubernetes_cluster_role_binding_v1.sail_operator_proxy",
        "kubernetes_role_binding_v1.sail_operator",
    ]
    bindings = resources["kubernetes_cluster_role_binding_v1"]
    assert bindings["sail_operator_proxy"]["depends_on"] == [
        "kubernetes_cluster_role_v1.sail_operator_proxy",
        "kubernetes_service_account_v1.sail_operator",
    ]
    assert resources["kubernetes_role_binding_v1"]["sail_operator"]["depends_on"] == [
        "kubernetes_role_v1.sail_operator",
        "kubernetes_service_account_v1.sail_operator",
    ]
    for tf_type in ("kubernetes_service_account_v1", "kubernetes_role_v1", "kubernetes_service_v1"):
        assert resources[tf_type]["sail_operator"]["depends_on"] == [
            "kubernetes_namespace_v1.sail_operator"
        ], tf_type


def test_what_depends_on_nothing_here_waits_for_the_given_dependencies() -> None:
    stack = TerraformStack(cdktf.Testing.app(), "test")
    KubernetesProvider(stack, "kubernetes")
    NullProvider(stack, "null")
    crds = Resource(stack, "crds")
    install(stack=stack, depends_on=[crds])
    resources = synth(stack)["resource"]
    waiting = sorted(
        f"{tf_type}.{logical_id}"
        for tf_type, by_id in resources.items()
        if tf_type != "null_resource"
        for logical_id, body in by_id.items()
        if "null_resource.crds" in body.get("depends_on", [])
    )
    assert waiting == [
        "kubernetes_cluster_role_v1.sail_operator",
        "kubernetes_cluster_role_v1.sail_operator_metrics_reader",
        "kubernetes_cluster_role_v1.sail_operator_proxy",
        "kubernetes_namespace_v1.sail_operator",
    ]


def test_dependables_hold_what_an_istio_resource_must_wait_for() -> None:
    _, sail = install()
    assert sail.dependables == [
        sail.deployment,
        *sail.cluster_roles.values(),
        *sail.cluster_role_bindings.values(),
        sail.leader_election_role,
        sail.leader_election_role_binding,
        sail.service_account,
        sail.namespace,
    ]
    assert len(sail.dependables) == 10


# --- The render and the release data against the chart itself ----------------------------------
upstream = pytest.mark.skipif(
    not SHARED_UPSTREAM.is_dir(), reason="shared/upstream is not checked out beside the project"
)
CHART = SHARED_UPSTREAM / "sail-operator-1.30.3" / "chart"
NAMESPACE = "sail-operator"


def _chart_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    return values


def _lookup(values: dict[str, Any], expression: str) -> Any:
    """`.Values.a.b`, `(.Values.a).b` or `.Release.Namespace`; None where a key is missing."""
    if expression == ".Release.Namespace":
        return NAMESPACE
    path = expression.replace("(", "").replace(")", "")
    assert path.startswith(".Values."), expression
    node: Any = values
    for part in path.removeprefix(".Values.").split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
_BLOCKS = {"if", "with", "range"}


def render_template(text: str, values: dict[str, Any]) -> str:
    """Enough of Helm's template language for this chart with default values.

    Plain `{{ .Values.x }}` substitutions; `if`/`with` blocks, whose condition must be empty
    with default values (anything else fails loudly); and the one `range` over
    deployment.annotations. Every block action sits on a line of its own, as in this chart.
    """
    out: list[str] = []
    lines = iter(text.splitlines())
    for line in lines:
        words = line.strip().removeprefix("{{-").split()
        if line.strip().startswith("{{-") and words[0] in _BLOCKS:
            body = _block(lines)
            if words[0] == "range":
                assert words[1:4] == ["$key,", "$val", ":="], line
                mapping = _lookup(values, words[4].removesuffix("}}"))
                for key in sorted(mapping):  # Go templates range over maps in key order
                    for body_line in body:
                        out.append(
                            body_line.replace("{{ $key | quote }}", json.dumps(key)).replace(
                                "{{ $val | quote}}", json.dumps(mapping[key])
                            )
                        )
            else:
                condition = words[1].removesuffix("}}")
                assert not _lookup(values, condition), f"{line}: not empty with default values"
            continue
        out.append(_ACTION.sub(lambda m: str(_lookup(values, m.group(1))), line))
    return "\n".join(out) + "\n"


def _block(lines: Iterator[str]) -> list[str]:
    """The lines up to the `{{- end }}` that closes the block just opened."""
    body: list[str] = []
    depth = 1
    for line in lines:
        words = line.strip().removeprefix("{{-").split()
        if line.strip().startswith("{{-") and words[0] in _BLOCKS:
            depth += 1
        elif line.strip() == "{{- end }}":
            depth -= 1
            if depth == 0:
                return body
        body.append(line)
    raise AssertionError("unterminated block")


def _template_files() -> list[Path]:
    # templates/olm/ renders only with bundleGeneration: true (false by default).
    return sorted(p for p in (CHART / "templates").rglob("*.yaml") if "olm" not in p.parts)


@upstream
def test_every_template_renders_to_its_object_in_the_render() -> None:
    values = _chart_values()
    assert values["bundleGeneration"] is False
    ours = load_yaml_docs(RENDER)
    sources = re.findall(r"^# Source: sail-operator/(\S+)$", RENDER.read_text(), re.MULTILINE)
    templates = _template_files()
    assert sorted(sources) == sorted(p.relative_to(CHART).as_posix() for p in templates)
    by_source = dict(zip(sources, ours, strict=True))
    for path in templates:
        [rendered] = [d for d in yaml.safe_load_all(render_template(path.read_text(), values)) if d]
        assert rendered == by_source[path.relative_to(CHART).as_posix()], path


@upstream
def test_the_render_is_in_helm_install_order() -> None:
    # Helm's InstallOrder for these kinds; within a kind, by template path.
    order = ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]
    order += ["Service", "Deployment"]
    text = RENDER.read_text()
    sources = re.findall(r"^# Source: sail-operator/(\S+)$", text, re.MULTILINE)
    kinds = [d["kind"] for d in load_yaml_docs(RENDER)]
    keys = [(order.index(kind), source) for kind, source in zip(kinds, sources, strict=True)]
    assert keys == sorted(keys)


@upstream
def test_the_release_data_is_the_chart_s_values() -> None:
    values = _chart_values()
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert RELEASE.chart_version == chart["version"] == chart["appVersion"]
    assert RELEASE.image == values["image"]
    assert RELEASE.default_resource_requests == values["operator"]["resources"]["requests"]
    assert RELEASE.default_resource_limits == values["operator"]["resources"]["limits"]
    images = {k: v for k, v in RELEASE.pod_annotations.items() if k.startswith("images.")}
    assert images == values["deployment"]["annotations"]
    assert RELEASE.deployment_name == values["deployment"]["name"]
    assert RELEASE.service_account_name == values["serviceAccountName"]
    assert RELEASE.revision_history_limit == values["revisionHistoryLimit"]
    assert f"--zap-log-level={values['operatorLogLevel']}" in RELEASE.args
    assert RELEASE.metrics_service_ports[0].port == values["service"]["port"]


@upstream
def test_the_release_lists_the_istio_versions_its_operator_installs() -> None:
    versions_file = SHARED_UPSTREAM / "sail-operator-1.30.3" / "pkg" / "istioversion"
    entries = yaml.safe_load((versions_file / "versions.yaml").read_text())["versions"]
    installable = [e["version"] for e in entries if "version" in e and not e.get("eol")]
    assert list(RELEASE.istio_versions) == installable
    assert len(installable) == 22


# --- The provider fast path --------------------------------------------------------------------
_SYNTH_ALONE = """
from constructs.provider_modules import install
install()
import json, sys
import cdktf
from cdktf_cdktf_provider_kubernetes.provider import KubernetesProvider
from constructs.istio_releases import SAIL_OPERATOR_RELEASES
from constructs.sail_operator import SailOperatorInstall, SailOperatorInstallProps
release = SAIL_OPERATOR_RELEASES["1.30.3"]
stack = cdktf.TerraformStack(cdktf.Testing.app(), "test")
KubernetesProvider(stack, "kubernetes")
SailOperatorInstall(stack, "sail_operator", SailOperatorInstallProps(
    release=release, image=release.image, resource_requests=release.default_resource_requests,
    resource_limits=release.default_resource_limits))
loaded = sorted(m.split(".")[1] for m in sys.modules if m.count(".") == 1 and
                m.startswith("cdktf_cdktf_provider_kubernetes."))
print(json.dumps({"loaded": loaded, "synth": json.loads(cdktf.Testing.synth(stack))}))
"""


def test_the_fast_path_loads_the_rbac_modules_and_synthesizes_what_plain_imports_do() -> None:
    # Role and RoleBinding are the first namespaced RBAC kinds in the app; their provider
    # modules must load one by one like the others (constructs/provider_modules.py).
    fast, plain = (python(["-c", _SYNTH_ALONE], plain=p) for p in (False, True))
    assert fast.returncode == 0, fast.stderr
    assert plain.returncode == 0, plain.stderr
    fast_out, plain_out = (json.loads(r.stdout.splitlines()[-1]) for r in (fast, plain))
    assert fast_out["synth"] == plain_out["synth"]
    assert {"role_v1", "role_binding_v1"} <= set(fast_out["loaded"])
    assert "secret_v1" not in fast_out["loaded"]
    assert "secret_v1" in plain_out["loaded"]
