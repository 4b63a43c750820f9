"""The operator install matches the chart's render object by object, and follows the config."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import cdktf
import pytest
import yaml

from constructs.istio_operator import IstioOperatorInstall
from constructs.istio_releases import OPERATOR_APIS, RELEASES, VERSIONS, Engine
from constructs.workspace_config import IstioVersion, WorkspaceConfig, load_file
from constructs.workspace_stack import WorkspaceStack
from tests.conftest import MINIMAL_CONFIG, ROOT, synth_stack

Workspace = Callable[..., WorkspaceConfig]
Objects = dict[tuple[str, str, str], dict[str, Any]]

DATA = ROOT / "tests" / "data"
# The upstream reference renders, beside the project in a full checkout and in CI.
SHARED_UPSTREAM = ROOT.parent / "shared" / "upstream"

# --- Terraform JSON back to Kubernetes objects -------------------------------------------------
_KINDS = {
    "kubernetes_namespace_v1": ("v1", "Namespace"),
    "kubernetes_service_account_v1": ("v1", "ServiceAccount"),
    "kubernetes_cluster_role_v1": ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    "kubernetes_cluster_role_binding_v1": ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    "kubernetes_service_v1": ("v1", "Service"),
    "kubernetes_deployment_v1": ("apps/v1", "Deployment"),
}
# Arguments of the Terraform resource, not fields of the Kubernetes object.
_TERRAFORM_ONLY = {"depends_on", "wait_for_rollout", "timeouts", "lifecycle", "provider"}
# The provider names repeated blocks in the singular.
_PLURALS = {"container": "containers", "port": "ports", "rule": "rules", "subject": "subjects"}
# String maps: their keys are data (label names, resource names), kept as they are.
_MAPS = {"labels", "annotations", "match_labels", "limits", "requests"}
# The provider takes these integers as strings and parses them before sending them.
_INT_STRINGS = {"replicas", "target_port", "run_as_user", "run_as_group"}


def _camel(key: str) -> str:
    first, *rest = key.split("_")
    return first + "".join(part.title() for part in rest)


def _to_k8s(value: Any, maps: set[str]) -> Any:
    if isinstance(value, list):
        return [_to_k8s(item, maps) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = _PLURALS[key] if key in _PLURALS and isinstance(item, list) else _camel(key)
        if key in maps:
            out[name] = dict(item)
        elif key in _INT_STRINGS:
            out[name] = int(item)
        else:
            out[name] = _to_k8s(item, maps)
    return out


def operator_objects(stack: dict[str, Any]) -> Objects:
    """The Kubernetes objects of the stack's `istio_operator` construct, by (kind, ns, name)."""
    objects: Objects = {}
    for tf_type, resources in stack["resource"].items():
        if not tf_type.startswith("kubernetes_"):
            continue
        for body in resources.values():
            # Application namespaces (constructs/injection_namespaces.py) are not the chart's.
            if body["metadata"].get("labels", {}).get("istio-injection") == "enabled":
                continue
            api_version, kind = _KINDS[tf_type]
            # A Service's selector is a plain map; a Deployment's is a block.
            maps = _MAPS | {"selector"} if kind == "Service" else _MAPS
            fields = {k: v for k, v in body.items() if k not in _TERRAFORM_ONLY}
            obj = {"apiVersion": api_version, "kind": kind, **_to_k8s(fields, maps)}
            key = (kind, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            assert key not in objects, f"{key} is defined twice"
            objects[key] = obj
    return objects


def objects_by_key(docs: list[dict[str, Any]]) -> Objects:
    return {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in docs}


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def data_config(name: str) -> WorkspaceConfig:
    return load_file(DATA / name, ROOT, environ={})


# --- The reference renders ---------------------------------------------------------------------
# What the stack adds to the chart, on purpose, per release.
_ADDED_NAMESPACES: dict[str, list[dict[str, Any]]] = {
    # The chart renders istio-operator itself; istio-system has to exist for the IstioOperator.
    "1.7.3": [
        {"name": "istio-system", "labels": {"istio-injection": "disabled"}},
    ],
    # The chart renders no namespace any more (helm --create-namespace would make it).
    "1.23.6": [
        {
            "name": "istio-operator",
            "labels": {"istio-operator-managed": "Reconcile", "istio-injection": "disabled"},
        },
        {"name": "istio-system"},
    ],
}
_REFERENCE_CONFIGS = {"1.7.3": "blog-1.7.3.yaml", "1.23.6": "reference-1.23.6.yaml"}


def expected_objects(version: str) -> Objects:
    """The chart's objects (tests/data), changed only where the stack deliberately differs."""
    expected = objects_by_key(load_yaml_docs(DATA / f"operator-chart-{version}.yaml"))
    # `creationTimestamp: null` is a rendering artefact: Terraform has no such argument and the
    # API server ignores it on create.
    del expected["ClusterRole", "", "istio-operator"]["metadata"]["creationTimestamp"]
    pod_spec = expected["Deployment", "istio-operator", "istio-operator"]["spec"]["template"][
        "spec"
    ]
    pod_spec["automountServiceAccountToken"] = True
    for metadata in _ADDED_NAMESPACES[version]:
        expected["Namespace", "", metadata["name"]] = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": metadata,
        }
    return expected


@pytest.mark.parametrize("version", sorted(_REFERENCE_CONFIGS))
def test_the_install_is_the_chart_render_object_by_object(version: str) -> None:
    # GIVEN the chart's values as a workspace config
    config = data_config(_REFERENCE_CONFIGS[version])
    assert config.spec.istio_version == version
    # WHEN the stack is synthesized
    actual = operator_objects(synth_stack(config))
    # THEN every object is the rendered one, field by field, lists in order
    expected = expected_objects(version)
    assert sorted(actual) == sorted(expected)
    for key, obj in expected.items():
        assert actual[key] == obj, key


def test_the_1_7_3_install_has_the_blog_image_and_all_13_rules() -> None:
    objects = operator_objects(synth_stack(data_config("blog-1.7.3.yaml")))
    container = objects["Deployment", "istio-operator", "istio-operator"]["spec"]["template"][
        "spec"
    ]["containers"][0]
    assert container["image"] == "docker.io/istio/operator:1.7.3"
    assert len(objects["ClusterRole", "", "istio-operator"]["rules"]) == 13
    assert objects["Service", "istio-operator", "istio-operator"]["spec"]["ports"] == [
        {"name": "http-metrics", "port": 8383, "targetPort": 8383}
    ]


@pytest.mark.skipif(
    not SHARED_UPSTREAM.is_dir(), reason="shared/upstream is not checked out beside the project"
)
@pytest.mark.parametrize("version", sorted(_REFERENCE_CONFIGS))
def test_the_expected_objects_are_the_upstream_reference_render(version: str) -> None:
    ours = load_yaml_docs(DATA / f"operator-chart-{version}.yaml")
    reference = load_yaml_docs(SHARED_UPSTREAM / f"istio-{version}" / "RENDERED.hand.yaml")
    assert ours == reference


# --- Release data ------------------------------------------------------------------------------
def test_every_supported_version_has_its_release_data() -> None:
    operator_versions = [v for v, s in VERSIONS.items() if s.engine is Engine.ISTIO_OPERATOR]
    assert sorted(RELEASES) == sorted(OPERATOR_APIS) == sorted(operator_versions)
    assert sorted(get_args(IstioVersion)) == sorted(VERSIONS)
    assert [len(RELEASES[v].cluster_role_rules) for v in ("1.7.3", "1.23.6")] == [13, 16]


def test_shipped_workspaces_install_the_1_23_6_operator() -> None:
    for name in ("staging", "production"):
        config = load_file(ROOT / "config" / f"{name}.yaml", ROOT, environ={})
        objects = operator_objects(synth_stack(config))
        deployment = objects["Deployment", "istio-operator", "istio-operator"]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "docker.io/istio/operator:1.23.6"
        assert len(objects["ClusterRole", "", "istio-operator"]["rules"]) == 16


# --- Config values reach their fields ----------------------------------------------------------
def _deployment(objects: Objects, namespace: str = "istio-operator") -> dict[str, Any]:
    return objects["Deployment", namespace, "istio-operator"]


def _container(objects: Objects, namespace: str = "istio-operator") -> dict[str, Any]:
    container: dict[str, Any] = _deployment(objects, namespace)["spec"]["template"]["spec"][
        "containers"
    ][0]
    return container


def _env(objects: Objects, namespace: str = "istio-operator") -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in _container(objects, namespace)["env"]}


def test_hub_and_tag_make_the_image(workspace: Workspace) -> None:
    config = workspace(
        MINIMAL_CONFIG
        + "operator: {hub: registry.example.com/mirror/istio, tag: 1.23.6-distroless}"
    )
    image = _container(operator_objects(synth_stack(config)))["image"]
    assert image == "registry.example.com/mirror/istio/operator:1.23.6-distroless"


def test_the_tag_defaults_to_the_istio_version(workspace: Workspace) -> None:
    config = workspace(MINIMAL_CONFIG.replace('"1.23.6"', '"1.7.3"'))
    assert _container(operator_objects(synth_stack(config)))["image"] == (
        "docker.io/istio/operator:1.7.3"
    )


def test_the_operator_namespace_reaches_every_namespaced_field(workspace: Workspace) -> None:
    objects = operator_objects(
        synth_stack(workspace(MINIMAL_CONFIG + "operator: {namespace: mesh-op}"))
    )
    assert ("Namespace", "", "mesh-op") in objects
    for kind in ("ServiceAccount", "Service", "Deployment"):
        assert (kind, "mesh-op", "istio-operator") in objects, kind
    subject = objects["ClusterRoleBinding", "", "istio-operator"]["subjects"][0]
    assert subject == {"kind": "ServiceAccount", "name": "istio-operator", "namespace": "mesh-op"}
    env = _env(objects, "mesh-op")
    assert (env["LEADER_ELECTION_NAMESPACE"], env["OPERATOR_NAME"]) == ("mesh-op", "mesh-op")


def test_every_watched_namespace_is_created_and_watched(workspace: Workspace) -> None:
    config = workspace(MINIMAL_CONFIG + "operator: {watched_namespaces: [istio-system, mesh-b]}")
    objects = operator_objects(synth_stack(config))
    namespaces = sorted(name for kind, _, name in objects if kind == "Namespace")
    assert namespaces == ["istio-operator", "istio-system", "mesh-b"]
    assert _env(objects)["WATCH_NAMESPACE"] == "istio-system,mesh-b"


def test_a_namespace_listed_twice_is_created_and_watched_once(workspace: Workspace) -> None:
    config = workspace(
        MINIMAL_CONFIG + "operator: {watched_namespaces: [istio-system, mesh-b, istio-system]}"
    )
    objects = operator_objects(synth_stack(config))
    assert _env(objects)["WATCH_NAMESPACE"] == "istio-system,mesh-b"


def test_a_watched_operator_namespace_is_created_once(workspace: Workspace) -> None:
    config = workspace(
        MINIMAL_CONFIG + "operator: {namespace: istio-system, watched_namespaces: [istio-system]}"
    )
    stack = synth_stack(config)
    assert list(stack["resource"]["kubernetes_namespace_v1"]) == ["istio_system"]
    assert _env(operator_objects(stack), "istio-system")["WATCH_NAMESPACE"] == "istio-system"


def test_resources_are_set_as_given(workspace: Workspace) -> None:
    config = workspace(MINIMAL_CONFIG + "operator: {resources: {requests: {cpu: 10m}}}")
    resources = _container(operator_objects(synth_stack(config)))["resources"]
    assert resources == {"requests": {"cpu": "10m"}}


def test_the_chart_default_resources_apply_when_none_are_given(workspace: Workspace) -> None:
    resources = _container(operator_objects(synth_stack(workspace())))["resources"]
    assert resources == {
        "requests": {"cpu": "50m", "memory": "128Mi"},
        "limits": {"cpu": "200m", "memory": "256Mi"},
    }


# --- What the next piece depends on ------------------------------------------------------------
def test_terraform_addresses_are_plain_nouns(workspace: Workspace) -> None:
    stack = synth_stack(workspace())
    ids = sorted(
        f"{tf_type}.{logical_id}"
        for tf_type, resources in stack["resource"].items()
        for logical_id in resources
        if tf_type.startswith("kubernetes_")
    )
    assert ids == [
        "kubernetes_cluster_role_binding_v1.istio_operator",
        "kubernetes_cluster_role_v1.istio_operator",
        "kubernetes_deployment_v1.istio_operator",
        "kubernetes_namespace_v1.istio_operator",
        "kubernetes_namespace_v1.istio_system",
        "kubernetes_service_account_v1.istio_operator",
        "kubernetes_service_v1.istio_operator",
    ]


def test_the_deployment_waits_for_its_rbac_and_its_rollout(workspace: Workspace) -> None:
    stack = synth_stack(workspace())
    [deployment] = stack["resource"]["kubernetes_deployment_v1"].values()
    assert deployment["wait_for_rollout"] is True
    assert [d.split(".")[0] for d in deployment["depends_on"]] == [
        "kubernetes_service_account_v1",
        "kubernetes_cluster_role_binding_v1",
    ]
    [account] = stack["resource"]["kubernetes_service_account_v1"].values()
    assert account["depends_on"] == ["kubernetes_namespace_v1.istio_operator"]


def test_dependables_hold_what_an_istio_operator_must_wait_for(workspace: Workspace) -> None:
    config = workspace(MINIMAL_CONFIG + "operator: {watched_namespaces: [istio-system, mesh-b]}")
    install = WorkspaceStack(cdktf.Testing.app(), config).operator
    assert isinstance(install, IstioOperatorInstall)
    assert install.dependables == [
        install.deployment,
        install.cluster_role,
        install.cluster_role_binding,
        install.service_account,
        install.watched_namespaces["istio-system"],
        install.watched_namespaces["mesh-b"],
    ]
