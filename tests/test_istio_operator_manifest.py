"""The IstioOperator template: rendered per version and workspace, checked before any stack."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from constructs import istio_operator_manifest as iop
from constructs.istio_operator_manifest import ManifestError, check, render
from constructs.istio_releases import OPERATOR_APIS
from constructs.workspace_config import Proxy, WorkspaceConfig
from tests.conftest import shipped

Workspace = Callable[..., WorkspaceConfig]

BLOG_PRE_STOP = Proxy().pre_stop_command  # the default: tests/test_pre_stop.py runs it
BLOG_VALUES = """\
cluster: {kubeconfig: ~/.kube/config, context: test}
istio_version: "VERSION"
tracing: {sampling_percent: 100.0}
pilot:
  resources:
    requests: {cpu: 100m, memory: 256Mi}
    limits: {cpu: 100m, memory: 256Mi}
"""


def rendered(workspace: Workspace, version: str, extra: str = "") -> dict[str, Any]:
    # A section in extra replaces the blog's one-line section of that name: written twice, a
    # key is an error.
    replaced = {line.partition(":")[0] for line in extra.splitlines()}
    base = "".join(
        line
        for line in BLOG_VALUES.splitlines(keepends=True)
        if line.partition(":")[0] not in replaced
    )
    manifest = render(workspace(base.replace("VERSION", version) + extra))
    data: dict[str, Any] = yaml.safe_load(manifest.text)
    return data


def test_blog_settings_at_the_paths_istio_1_7_3_accepts(workspace: Workspace) -> None:
    assert rendered(workspace, "1.7.3") == {
        "apiVersion": "install.istio.io/v1alpha1",
        "kind": "IstioOperator",
        "metadata": {"namespace": "istio-system", "name": "default-istiocontrolplane"},
        "spec": {
            "profile": "minimal",
            "meshConfig": {"enableTracing": True},
            "components": {
                "pilot": {
                    "k8s": {
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "256Mi"},
                            "limits": {"cpu": "100m", "memory": "256Mi"},
                        }
                    }
                }
            },
            "values": {
                "pilot": {"traceSampling": 100.0},
                "global": {
                    "proxy": {
                        "tracer": "datadog",
                        "holdApplicationUntilProxyStarts": True,
                        "lifecycle": {
                            "postStart": {"exec": {"command": ["pilot-agent", "wait"]}},
                            "preStop": {"exec": {"command": BLOG_PRE_STOP}},
                        },
                    }
                },
            },
        },
    }


def test_blog_settings_at_the_paths_istio_1_23_6_prefers(workspace: Workspace) -> None:
    spec = rendered(workspace, "1.23.6")["spec"]
    assert spec["meshConfig"] == {
        "enableTracing": True,
        "defaultConfig": {
            "holdApplicationUntilProxyStarts": True,
            "tracing": {"sampling": 100.0},
        },
    }
    assert spec["values"] == {
        "global": {
            "proxy": {
                "tracer": "datadog",
                "lifecycle": {
                    "postStart": {"exec": {"command": ["pilot-agent", "wait"]}},
                    "preStop": {"exec": {"command": BLOG_PRE_STOP}},
                },
            }
        }
    }
    assert spec["components"]["pilot"]["k8s"]["resources"]["limits"] == {
        "cpu": "100m",
        "memory": "256Mi",
    }


def test_shipped_workspaces_differ_in_pilot_sizing_only() -> None:
    staging = yaml.safe_load(render(shipped("staging")).text)
    production = yaml.safe_load(render(shipped("production")).text)
    assert staging["spec"]["components"]["pilot"]["k8s"]["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"cpu": "100m", "memory": "256Mi"},
    }
    assert production["spec"]["components"]["pilot"]["k8s"]["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "500m", "memory": "1Gi"},
    }
    del staging["spec"]["components"], production["spec"]["components"]
    assert staging == production


def test_datadog_address_and_disabled_tracing(workspace: Workspace) -> None:
    spec = rendered(workspace, "1.7.3", "tracing: {datadog_address: 'dd-agent.monitoring:8126'}\n")
    assert spec["spec"]["values"]["global"]["tracer"] == {
        "datadog": {"address": "dd-agent.monitoring:8126"}
    }
    spec = rendered(workspace, "1.23.6", "tracing: {datadog_address: 'dd:8126'}\n")["spec"]
    assert spec["meshConfig"]["defaultConfig"]["tracing"]["datadog"] == {"address": "dd:8126"}
    off = rendered(workspace, "1.23.6", "tracing: {enabled: false}\n")["spec"]
    assert off["meshConfig"] == {
        "enableTracing": False,
        "defaultConfig": {"holdApplicationUntilProxyStarts": True},
    }
    assert off["values"]["global"]["proxy"]["tracer"] == "none"


def test_lifecycle_hooks_can_be_removed(workspace: Workspace) -> None:
    extra = "proxy: {post_start_command: null, pre_stop_command: null}\n"
    for version in OPERATOR_APIS:
        proxy = rendered(workspace, version, extra)["spec"]["values"]["global"]["proxy"]
        assert "lifecycle" not in proxy


@pytest.mark.parametrize(
    "hostile",
    [
        "x\nspec: {profile: demo}",
        "---\nkind: Secret",
        '"}, "evil": {"',
        "{{ name }}",
        "a: b # c",
        "$(rm -rf /)",
    ],
)
def test_no_config_value_changes_the_yaml_structure(workspace: Workspace, hostile: str) -> None:
    for version in OPERATOR_APIS:
        values = yaml.safe_load(BLOG_VALUES.replace("VERSION", version))
        values["tracing"]["datadog_address"] = hostile
        values["proxy"] = {"pre_stop_command": ["/bin/sh", "-c", hostile]}
        manifest = render(workspace(yaml.safe_dump(values)))
        [document] = yaml.safe_load_all(manifest.text)
        proxy = document["spec"]["values"]["global"]["proxy"]
        assert proxy["lifecycle"]["preStop"]["exec"]["command"] == ["/bin/sh", "-c", hostile]
        spec = document["spec"]
        datadog = (
            spec["values"]["global"]["tracer"]["datadog"]
            if version == "1.7.3"
            else spec["meshConfig"]["defaultConfig"]["tracing"]["datadog"]
        )
        assert datadog == {"address": hostile}
        assert document["spec"]["profile"] == "minimal"
        assert set(document) == {"apiVersion", "kind", "metadata", "spec"}


def test_rendered_bytes_and_sha1_are_stable(workspace: Workspace) -> None:
    first = render(workspace(BLOG_VALUES.replace("VERSION", "1.23.6")))
    iop._render_template.cache_clear()  # the second render really renders
    second = render(workspace(BLOG_VALUES.replace("VERSION", "1.23.6")))
    assert first.data == second.data
    assert first.sha1 == hashlib.sha1(first.data).hexdigest()
    assert "$(netstat -lnt" in first.text


def test_a_tracer_the_version_lacks_is_rejected_at_render(
    template_dir: Path, workspace: Workspace
) -> None:
    # The config offers no "none"; this guards the template, which could still write one.
    break_template(
        template_dir, "1.7.3", "tracer: {{ tracing.tracer | yaml }}", 'tracer: {{ "none" | yaml }}'
    )
    with pytest.raises(ManifestError, match=r"tracer 'none' is not one of \['datadog'"):
        rendered(workspace, "1.7.3")


# --- template mistakes are caught at synth ------------------------------------------------------
@pytest.fixture
def template_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A manifests/ copy whose templates a test may break."""
    for version in OPERATOR_APIS:
        (tmp_path / version).mkdir()
        for name in ("istio-operator.yaml.j2", "crd-operator.yaml"):
            (tmp_path / version / name).write_bytes((iop.MANIFESTS / version / name).read_bytes())
    monkeypatch.setattr(iop, "MANIFESTS", tmp_path)
    iop._environment.cache_clear()
    iop._render_template.cache_clear()
    yield tmp_path
    iop._environment.cache_clear()
    iop._render_template.cache_clear()


def break_template(template_dir: Path, version: str, old: str, new: str) -> None:
    path = template_dir / version / "istio-operator.yaml.j2"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("version", "old", "new", "message"),
    [
        (
            "1.7.3",
            "  profile: {{ profile | yaml }}",
            "  profile: {{ profil | yaml }}",
            r"manifests/1.7.3/istio-operator.yaml.j2: 'profil' is undefined",
        ),
        (
            "1.23.6",
            "  profile: {{ profile | yaml }}",
            "  profile: {{ profile }}",
            r"was not passed through `\| yaml`",
        ),
        (
            "1.7.3",
            "        holdApplicationUntilProxyStarts:",
            "        holdApplicationUntilProxyStart:",
            r"not known to accept: spec.values.global.proxy.holdApplicationUntilProxyStart ",
        ),
        (
            # The 1.8+ path: the 1.7.3 operator's strict meshConfig check would reject it.
            "1.7.3",
            "    enableTracing: {{ tracing.enabled | yaml }}",
            "    enableTracing: {{ tracing.enabled | yaml }}\n    defaultConfig:\n"
            "      holdApplicationUntilProxyStarts: true",
            r"spec.meshConfig.defaultConfig.holdApplicationUntilProxyStarts",
        ),
        (
            "1.23.6",
            "kind: IstioOperator",
            "kind: IstioOperator\n---\nkind: ConfigMap",
            r"rendered 2 documents, expected exactly one",
        ),
        (
            "1.23.6",
            "kind: IstioOperator",
            "kind: Deployment",
            r"expected \('install.istio.io/v1alpha1', 'IstioOperator'\)",
        ),
        (
            "1.23.6",
            "  namespace: {{ namespace | yaml }}",
            '  namespace: "default"',
            r"metadata.namespace 'default' is not watched by the operator",
        ),
        (
            "1.23.6",
            "spec:\n",
            "spec:\n  bad: [unclosed\n",
            r"rendered output is not valid YAML",
        ),
        (
            "1.23.6",
            "{%- if pilot.requests or pilot.limits %}",
            "{%- if pilot.requests or %}",
            r"manifests/1.23.6/istio-operator.yaml.j2: line \d+:",
        ),
    ],
)
def test_bad_templates_fail_with_the_template_named(
    workspace: Workspace, template_dir: Path, version: str, old: str, new: str, message: str
) -> None:
    break_template(template_dir, version, old, new)
    with pytest.raises(ManifestError, match=message):
        rendered(workspace, version)


def test_check_accepts_the_shipped_render() -> None:
    text = render(shipped("staging")).text
    check(text, OPERATOR_APIS["1.23.6"], source="x", watched=["istio-system"])
    with pytest.raises(ManifestError, match=r"meshConfig\.defaultConfig\.tracing\.sampling"):
        check(text, OPERATOR_APIS["1.7.3"], source="x", watched=["istio-system"])
