"""The Sail Operator engine: its data, config rules, rendered Istio, schema checks and stack."""

from __future__ import annotations

import json
import typing
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from constructs.istio_app import validate
from constructs.istio_operator_manifest import ManifestError, check_sail, render
from constructs.istio_releases import (
    SAIL_APIS,
    SAIL_OPERATOR_RELEASES,
    VERSIONS,
    Engine,
)
from constructs.sail_crds import crd_bundle
from constructs.workspace_config import ConfigError, IstioVersion, WorkspaceConfig, load_file
from tests.conftest import ROOT, synth_stack

Workspace = Callable[..., WorkspaceConfig]
SAIL = """\
cluster: {kubeconfig: ~/.kube/config, context: test}
istio_version: "1.30.3"
"""
API = SAIL_APIS["1.30.3"]
UPSTREAM = Path("/work/shared/upstream/sail-operator-1.30.3")


def problems_of(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "config").mkdir(exist_ok=True)
    path = tmp_path / "config" / "mesh.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_file(path, tmp_path, environ={})
    return caught.value.problems


# --- data ------------------------------------------------------------------------------------
def test_every_version_has_an_engine_and_the_config_accepts_exactly_those() -> None:
    assert set(typing.get_args(IstioVersion)) == set(VERSIONS)
    sail = {v for v, s in VERSIONS.items() if s.engine is Engine.SAIL_OPERATOR}
    assert sail == set(SAIL_APIS) == {"1.29.6", "1.30.3"}


def test_each_sail_version_is_installable_by_its_operator_release() -> None:
    for version, api in SAIL_APIS.items():
        assert api.spec_version == f"v{version}"
        assert version in SAIL_OPERATOR_RELEASES[api.sail_release].istio_versions


def test_the_shipped_crds_are_the_release_s_twenty_files_named_as_they_define() -> None:
    crd_dir = ROOT / "manifests" / API.crd_dir
    assert sorted(API.crd_files) == sorted(p.name for p in crd_dir.iterdir())
    assert len(API.crd_files) == 20
    for file, name in zip(API.crd_files, API.crd_names(), strict=True):
        crd = yaml.load((crd_dir / file).read_bytes(), Loader=yaml.CSafeLoader)
        assert crd["metadata"]["name"] == name
        if UPSTREAM.is_dir():  # byte-identical to the tag
            assert (crd_dir / file).read_bytes() == (UPSTREAM / "chart/crds" / file).read_bytes()


def test_the_crd_bundle_is_every_file_as_its_own_document_hashed_per_crd() -> None:
    bundle = crd_bundle(API)
    assert crd_bundle(SAIL_APIS["1.29.6"]) is bundle  # read and hashed once per synth
    documents = [d for d in yaml.load_all(bundle.data, Loader=yaml.CSafeLoader) if d]
    assert [d["metadata"]["name"] for d in documents] == list(API.crd_names())
    assert list(bundle.sha1_by_crd) == list(API.crd_names())


# --- config ----------------------------------------------------------------------------------
def test_sail_defaults(workspace: Workspace) -> None:
    config = workspace(SAIL)
    assert config.engine is Engine.SAIL_OPERATOR
    assert config.control_plane_name == "default"
    assert config.profile == "default"
    assert config.native_sidecars is True
    assert config.sail_operator_image == "quay.io/sail-dev/sail-operator:1.30.3"
    assert config.sail_operator_resources() == (
        {"cpu": "10m", "memory": "64Mi"},
        {"cpu": "500m", "memory": "1024Mi"},
    )
    assert config.spec.sail_operator.namespace == "sail-operator"


def test_old_versions_keep_their_defaults(workspace: Workspace) -> None:
    config = workspace()
    assert (config.control_plane_name, config.profile) == ("default-istiocontrolplane", "minimal")
    assert config.native_sidecars is False


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (
            "control_plane: {profile: minimal}",
            "config/mesh.yaml: control_plane.profile: 'minimal' is not a profile on istio_version "
            "1.30.3: the Sail Operator installs only istiod, so profile 'default' gives what "
            "'minimal' gave; write profile: default, or leave profile out",
        ),
        (
            "operator: {watched_namespaces: [istio-system]}",
            "config/mesh.yaml: operator.watched_namespaces: has no meaning for istio_version "
            "1.30.3: the Sail Operator watches every namespace; remove it",
        ),
        (
            "operator: {hub: docker.io/istio}",
            "config/mesh.yaml: operator: configures the in-cluster Istio Operator of 1.23.6 and "
            "older; istio_version 1.30.3 is installed by the Sail Operator: use sail_operator "
            "(image, namespace, resources) instead",
        ),
        (
            "proxy: {pre_stop_command: [sleep, '5']}",
            "config/mesh.yaml: proxy.pre_stop_command: sets a sidecar lifecycle while native "
            "sidecars are on (the default on 1.30.3): the proxy then starts before and stops "
            "after the application by itself, and a lifecycle would replace Istio's own drain "
            "hook; remove it, or set proxy.native_sidecars: false for the blog's hooks",
        ),
        (
            "proxy: {hold_application_until_proxy_starts: false}",
            "config/mesh.yaml: proxy.hold_application_until_proxy_starts: false has no effect "
            "while native sidecars are on (the default on 1.30.3): the proxy always starts "
            "before the application; remove it, or set proxy.native_sidecars: false",
        ),
        (
            "proxy: {native_sidecars: false, post_start_command: [sleep, '1']}",
            "config/mesh.yaml: proxy.post_start_command: ['sleep', '1'] must start with "
            "pilot-agent wait while hold_application_until_proxy_starts is true: a sidecar "
            "lifecycle replaces Istio's own postStart hook, so the application would no longer "
            "wait for the proxy",
        ),
        (
            "sail_operator: {image: 'quay.io/sail dev'}",
            "config/mesh.yaml: sail_operator.image: 'quay.io/sail dev' is not an image reference "
            "(repository[:tag][@digest])",
        ),
        (
            "sail_operator: {namespace: istio-system}",
            "config/mesh.yaml: sail_operator.namespace: 'istio-system' is also "
            "control_plane.namespace; the stack creates both namespaces, so they must differ",
        ),
        (
            "injection_namespaces: [sail-operator]",
            "config/mesh.yaml: injection_namespaces: ['sail-operator'] already created by the "
            "Sail Operator install (sail_operator.namespace or control_plane.namespace); Istio's "
            "own namespaces are not injected",
        ),
    ],
)
def test_sail_config_errors(tmp_path: Path, snippet: str, expected: str) -> None:
    assert problems_of(tmp_path, SAIL + snippet + "\n") == [expected]


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (
            "sail_operator: {namespace: sail}",
            "config/mesh.yaml: sail_operator: applies only to Sail versions (1.29.6, 1.30.3); "
            "istio_version 1.23.6 is installed by the in-cluster Istio Operator: use operator",
        ),
        (
            "proxy: {native_sidecars: true}",
            "config/mesh.yaml: proxy.native_sidecars: applies only to Sail versions (1.29.6, "
            "1.30.3); istio_version 1.23.6 injects classic sidecars, sequenced by the hold and "
            "lifecycle settings",
        ),
    ],
)
def test_sail_settings_on_an_old_version(tmp_path: Path, snippet: str, expected: str) -> None:
    text = SAIL.replace("1.30.3", "1.23.6") + snippet + "\n"
    assert problems_of(tmp_path, text) == [expected]


def test_sail_image_and_resources_from_config(workspace: Workspace) -> None:
    config = workspace(
        SAIL + "sail_operator: {image: 'registry.example.com:5000/mirror/sail-operator:1.30.3', "
        "resources: {requests: {cpu: 20m}}}\n"
    )
    assert config.sail_operator_image == "registry.example.com:5000/mirror/sail-operator:1.30.3"
    assert config.sail_operator_resources() == ({"cpu": "20m"}, {})


# --- the rendered Istio ----------------------------------------------------------------------
def manifest_of(workspace: Workspace, extra: str = "") -> list[dict[str, typing.Any]]:
    return [d for d in yaml.safe_load_all(render(workspace(SAIL + extra)).text) if d]


def test_native_sidecars_write_neither_hold_nor_lifecycle(workspace: Workspace) -> None:
    [istio] = manifest_of(
        workspace,
        "tracing: {sampling_percent: 100.0, datadog_address: '$(HOST_IP):8126'}\n"
        "pilot: {resources: {limits: {cpu: 300m}}}\n",
    )
    assert istio == {
        "apiVersion": "sailoperator.io/v1",
        "kind": "Istio",
        "metadata": {"name": "default"},
        "spec": {
            "version": "v1.30.3",
            "namespace": "istio-system",
            "profile": "default",
            "values": {
                "global": {"proxy": {"tracer": "datadog"}},
                "meshConfig": {
                    "enableTracing": True,
                    "defaultConfig": {
                        "tracing": {"sampling": 100.0, "datadog": {"address": "$(HOST_IP):8126"}}
                    },
                },
                "pilot": {"resources": {"limits": {"cpu": "300m"}}},
            },
        },
    }


def test_without_native_sidecars_the_blog_s_hold_and_hooks_apply(workspace: Workspace) -> None:
    [istio] = manifest_of(workspace, "proxy: {native_sidecars: false}\n")
    values = istio["spec"]["values"]
    assert values["pilot"]["env"] == {"ENABLE_NATIVE_SIDECARS": "false"}
    assert values["meshConfig"]["defaultConfig"]["holdApplicationUntilProxyStarts"] is True
    lifecycle = values["global"]["proxy"]["lifecycle"]
    assert lifecycle["postStart"]["exec"]["command"] == ["pilot-agent", "wait"]
    assert lifecycle["preStop"]["exec"]["command"][:2] == ["/bin/sh", "-c"]


def test_tracing_off_and_1_29_6(workspace: Workspace) -> None:
    text = SAIL.replace("1.30.3", "1.29.6") + "tracing: {enabled: false}\n"
    [istio] = [d for d in yaml.safe_load_all(render(workspace(text)).text) if d]
    assert istio["spec"]["version"] == "v1.29.6"
    assert istio["spec"]["values"] == {
        "global": {"proxy": {"tracer": "none"}},
        "meshConfig": {"enableTracing": False},
    }


def test_another_name_adds_a_default_revision_tag(workspace: Workspace) -> None:
    istio, tag = manifest_of(workspace, "control_plane: {name: mesh, profile: demo}\n")
    assert istio["metadata"] == {"name": "mesh"}
    assert istio["spec"]["profile"] == "demo"
    assert tag == {
        "apiVersion": "sailoperator.io/v1",
        "kind": "IstioRevisionTag",
        "metadata": {"name": "default"},
        "spec": {"targetRef": {"kind": "Istio", "name": "mesh"}},
    }


# --- schema validation -----------------------------------------------------------------------
GOOD = (ROOT / "tests/golden/sail/istio.yaml").read_text()
SOURCE = "manifests/sail-1.30.3/istio.yaml.j2"


def problems_in(text: str) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        check_sail(text, API, SOURCE)
    return caught.value.problems


def test_the_golden_render_passes_the_schema() -> None:
    check_sail(GOOD, API, SOURCE)


def test_schema_failures_are_reported_at_their_config_keys() -> None:
    bad = (
        GOOD.replace('profile: "default"', 'profile: "minimal"')
        .replace('"cpu": "100m", "memory": "256Mi"}\n', '"cpu": "500mm", "memory": "256Mi"}\n')
        .replace("sampling: 100.0", 'sampling: "all"')
    )
    profile, sampling, limits, requests = problems_in(bad)
    assert profile == (
        "control_plane.profile: 'minimal' is not one of ['ambient', 'default', 'demo', "
        "'empty', 'external', 'openshift', 'openshift-ambient', 'preview', 'remote', 'stable'] "
        "(rendered as spec.profile)"
    )
    assert sampling == (
        "tracing.sampling_percent: 'all' is not of type 'number' "
        "(rendered as spec.values.meshConfig.defaultConfig.tracing.sampling)"
    )
    for problem, kind in ((limits, "limits"), (requests, "requests")):
        assert problem.startswith(
            f"pilot.resources.{kind}.cpu: '500mm' does not match the CRD's pattern ^(\\+|-)?"
        )
        assert problem.endswith(f" (rendered as spec.values.pilot.resources.{kind}.cpu)")


def test_unknown_keys_from_the_template_name_the_template() -> None:
    bad = GOOD.replace('tracer: "datadog"', 'tracer: "datadog"\n        holdApplication: true')
    assert problems_in(bad) == [
        f"{SOURCE}: spec.values.global.proxy: Additional properties are not allowed "
        "('holdApplication' was unexpected)"
    ]
    bad = GOOD.replace("  values:\n", "  meshConfig: {}\n  values:\n")
    assert problems_in(bad) == [
        f"{SOURCE}: spec: Additional properties are not allowed ('meshConfig' was unexpected)"
    ]


def test_wrong_kinds_and_namespaced_istio_are_refused() -> None:
    assert problems_in(GOOD.replace("kind: Istio", "kind: IstioCNI")) == [
        f"{SOURCE}: rendered kinds ['IstioCNI'], expected one Istio first"
    ]
    namespaced = GOOD.replace('  name: "default"\n', '  name: "default"\n  namespace: x\n')
    assert problems_in(namespaced) == [f"{SOURCE}: metadata.namespace: Istio is cluster-scoped"]


def test_validate_reports_each_problem_on_its_own_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config/mesh.yaml").write_text(SAIL)
    import constructs.istio_operator_manifest as manifest_module

    original = manifest_module._render_template

    def broken(template: str, context_json: str) -> str:
        text = original(template, context_json)
        return text.replace('profile: "default"', 'profile: "minimal"').replace(
            'version: "v1.30.3"', 'version: "v9.9.9"'
        )

    monkeypatch.setattr(manifest_module, "_render_template", broken)
    with pytest.raises(ConfigError) as caught:
        validate(tmp_path)
    assert [p.split(":")[:2] for p in caught.value.problems] == [
        ["config/mesh.yaml", " control_plane.profile"],
        ["config/mesh.yaml", " istio_version"],
    ]


# --- the stack -------------------------------------------------------------------------------
def test_sail_stack_resources_and_triggers(workspace: Workspace) -> None:
    stack = synth_stack(workspace(SAIL))
    resources = stack["resource"]
    assert "null_resource" in resources
    assert set(resources["null_resource"]) == {"sail_crds", "istio"}
    assert set(resources["terraform_data"]) == {"sail_crds_removal", "istio_removal"}
    crds = resources["null_resource"]["sail_crds"]
    assert {k: v for k, v in crds["triggers"].items() if "." in k} == crd_bundle(API).sha1_by_crd
    assert [p["local-exec"]["interpreter"][-1] for p in crds["provisioner"]] == [
        "refuse-istiooperator",
        "apply-server-side",
        "wait-crds-established",
    ]
    removal = resources["terraform_data"]["sail_crds_removal"]
    assert removal["triggers_replace"] == {"crds": " ".join(API.crd_names())}
    istio = resources["null_resource"]["istio"]
    assert istio["triggers"]["manifest_sha1"] == render(workspace(SAIL)).sha1
    assert istio["triggers"]["manifest"] == render(workspace(SAIL)).text  # shown by a plan
    assert "kubernetes_namespace_v1" in resources
    assert set(resources["kubernetes_namespace_v1"]) == {"istio_system", "sail_operator"}
    assert "istio_operator" not in json.dumps(resources)


def test_readme_states_each_version_s_engine_and_kubernetes_range() -> None:
    readme = (ROOT / "README.md").read_text()
    engine_names = {Engine.SAIL_OPERATOR: "Sail Operator", Engine.ISTIO_OPERATOR: "Istio Operator"}
    for version, supported in VERSIONS.items():
        [row] = [line for line in readme.splitlines() if line.startswith(f"| **{version}** |")]
        low, high = supported.kubernetes
        assert f"| {low} to {high} |" in row, row
        assert engine_names[supported.engine] in row, row
