"""Workspace files are typed and validated; every problem is reported with file and field path."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from constructs.workspace_config import (
    PROVIDER_OVERRIDE_ENV,
    ConfigError,
    WorkspaceConfig,
    load_all,
    load_file,
)
from tests.conftest import MINIMAL_CONFIG, ROOT

Workspace = Callable[..., WorkspaceConfig]


def problems_of(tmp_path: Path, text: str, name: str = "production") -> list[str]:
    (tmp_path / "config").mkdir(exist_ok=True)
    path = tmp_path / "config" / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_file(path, tmp_path, environ={})
    return caught.value.problems


def test_shipped_workspaces_load() -> None:
    names = [c.name for c in load_all(ROOT / "config", ROOT, environ={})]
    assert names == ["production", "staging"]


def test_defaults_fill_a_minimal_file(workspace: Workspace) -> None:
    config = workspace()
    assert config.name == "test"
    assert config.operator_tag == "1.23.6"
    assert config.spec.operator.watched_namespaces == ["istio-system"]
    assert config.spec.control_plane.namespace == "istio-system"


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (
            "pilot: {resources: {limits: {cpu: 100x}}}",
            "config/production.yaml: pilot.resources.limits.cpu: '100x' is not a Kubernetes "
            "quantity",
        ),
        (
            "operator: {resources: {requests: {memory: '-1Gi'}}}",
            "config/production.yaml: operator.resources.requests.memory: '-1Gi' is not a "
            "Kubernetes quantity",
        ),
        (
            "operator: {namespace: Istio_Operator}",
            "config/production.yaml: operator.namespace: 'Istio_Operator' is not a DNS-1123 label",
        ),
        (
            "injection_namespaces: [ads-api, -bad]",
            "config/production.yaml: injection_namespaces.1: '-bad' is not a DNS-1123 label",
        ),
        (
            "control_plane: {name: Default}",
            "config/production.yaml: control_plane.name: 'Default' is not a DNS-1123 subdomain",
        ),
        (
            "pilot: {resource: {}}",
            "config/production.yaml: pilot.resource: unknown key (allowed: resources)",
        ),
        (
            "tracing: {tracer: none}",
            "config/production.yaml: tracing.tracer: 'none': Input should be 'datadog', 'zipkin', "
            "'lightstep' or 'stackdriver'",
        ),
        (
            "tracing: {sampling_percent: 150}",
            "config/production.yaml: tracing.sampling_percent: 150: Input should be less than "
            "or equal to 100",
        ),
        (
            "backend: {cloud: {organization: '${file(\"/etc/passwd\")}', workspace: w}}",
            "config/production.yaml: backend.cloud.organization: '${file(\"/etc/passwd\")}' "
            "contains a Terraform template sequence",
        ),
        (
            "control_plane: {profile: tiny}",
            "config/production.yaml: control_plane.profile: 'tiny': Input should be 'minimal'",
        ),
        (
            "injection_namespaces: [ads-api]\nnamespace_labels: {ads-api: {team: 'ads team'}}",
            "config/production.yaml: namespace_labels.ads-api.team: 'ads team' is not a "
            "Kubernetes label value",
        ),
        (
            "injection_namespaces: [ads-api]\nnamespace_labels: {ads-api: {'Team!': ads}}",
            "config/production.yaml: namespace_labels.ads-api: 'Team!' is not a Kubernetes "
            "label key",
        ),
        (
            "injection_namespaces: [ads-api]\nnamespace_labels: {web: {team: web}}",
            "config/production.yaml: namespace_labels.web: 'web' is not in injection_namespaces "
            "['ads-api']",
        ),
        (
            "injection_namespaces: [ads-api]\nnamespace_labels: {ads-api: {istio.io/rev: canary}}",
            "config/production.yaml: namespace_labels.ads-api: ['istio.io/rev'] is set by the "
            "stack itself",
        ),
        (
            "proxy: {hold_application_until_proxy_starts: 'yes'}",
            "config/production.yaml: proxy.hold_application_until_proxy_starts: 'yes': "
            "Input should be a valid boolean",
        ),
    ],
)
def test_bad_values_are_named_with_file_path_and_value(
    tmp_path: Path, snippet: str, expected: str
) -> None:
    problems = problems_of(tmp_path, MINIMAL_CONFIG + snippet + "\n")
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems[0]


def test_unsupported_istio_version(tmp_path: Path) -> None:
    text = MINIMAL_CONFIG.replace('"1.23.6"', '"1.24.0"')
    [problem] = problems_of(tmp_path, text)
    assert problem.startswith("config/production.yaml: istio_version: '1.24.0': Input should be")
    assert "'1.7.3', '1.23.6', '1.29.6' or '1.30.3'" in problem


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    text = (
        "cluster: {kubeconfig: k, context: c}\n"
        "pilot: {resources: {limits: {cpu: 100x, memory: lots}}}\n"
        "surprise: true\n"
    )
    problems = problems_of(tmp_path, text)
    assert problems == [
        "config/production.yaml: istio_version: is required",
        "config/production.yaml: pilot.resources.limits.cpu: '100x' is not a Kubernetes quantity",
        "config/production.yaml: pilot.resources.limits.memory: 'lots' is not a Kubernetes "
        "quantity",
        "config/production.yaml: surprise: unknown key (allowed: backend, cluster, "
        "control_plane, existing_namespaces, injection_namespaces, istio_version, kubectl, "
        "namespace_labels, operator, pilot, proxy, sail_operator, tracing)",
    ]


def test_control_plane_must_be_in_a_watched_namespace(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path, MINIMAL_CONFIG + "control_plane: {namespace: mesh}\n")
    assert problem == (
        "config/production.yaml: control_plane.namespace: 'mesh' is not in "
        "operator.watched_namespaces ['istio-system']: the operator would never see the "
        "IstioOperator"
    )


@pytest.mark.parametrize(
    ("cluster", "expected"),
    [
        ("{kubeconfig: ~/.kube/config}", "credentials 'kubeconfig' needs both"),
        ("{credentials: environment, context: x}", "credentials 'environment' takes its target"),
    ],
)
def test_cluster_target_is_unambiguous(tmp_path: Path, cluster: str, expected: str) -> None:
    [problem] = problems_of(tmp_path, f'cluster: {cluster}\nistio_version: "1.23.6"\n')
    assert problem.startswith(f"config/production.yaml: cluster: {expected}"), problem


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path, MINIMAL_CONFIG + "pilot: [unclosed\n")
    assert problem.startswith("config/production.yaml: line 4: not valid YAML"), problem


def test_all_files_are_checked_before_failing(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "a.yaml").write_text(MINIMAL_CONFIG + "pilot: {x: 1}\n")
    (config / "b.yaml").write_text("[]\n")
    (config / "Bad_Name.yaml").write_text(MINIMAL_CONFIG)
    with pytest.raises(ConfigError) as caught:
        load_all(config, tmp_path, environ={})
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "config/Bad_Name.yaml",
        "config/a.yaml",
        "config/b.yaml",
    ]


def test_kubeconfig_and_context_overrides_name_their_workspace(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    for name in ("staging", "us-east"):
        (tmp_path / "config" / f"{name}.yaml").write_text(MINIMAL_CONFIG)
    env = {
        "ISTIO_STAGING_KUBECONFIG": "~/clusters/staging.yaml",
        "ISTIO_STAGING_KUBE_CONTEXT": "stg-admin",
        "ISTIO_US_EAST_KUBE_CONTEXT": "use1",
    }
    staging, us_east = (c.spec.cluster for c in load_all(tmp_path / "config", tmp_path, env))
    assert (staging.kubeconfig, staging.context) == ("~/clusters/staging.yaml", "stg-admin")
    assert (us_east.kubeconfig, us_east.context) == ("~/.kube/config", "use1")


def test_unscoped_overrides_are_refused_not_ignored(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "staging.yaml").write_text(MINIMAL_CONFIG)
    with pytest.raises(ConfigError) as caught:
        load_all(tmp_path / "config", tmp_path, {"ISTIO_KUBE_CONTEXT": "prod"})
    assert caught.value.problems == [
        "ISTIO_KUBE_CONTEXT is set, but overrides now name their workspace: use "
        "ISTIO_<WORKSPACE>_KUBE_CONTEXT"
    ]


def test_kube_variables_that_would_retarget_the_provider_are_refused(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    path = tmp_path / "config" / "staging.yaml"
    path.write_text(MINIMAL_CONFIG)
    for name in PROVIDER_OVERRIDE_ENV:
        with pytest.raises(ConfigError, match=f"{name} set in the environment"):
            load_file(path, tmp_path, environ={name: "x"})
    with pytest.raises(ConfigError) as caught:
        load_file(path, tmp_path, environ={"KUBE_HOST": "https://elsewhere", "KUBE_TOKEN": "x"})
    assert caught.value.problems == [
        "config/staging.yaml: cluster: KUBE_HOST, KUBE_TOKEN set in the environment would make "
        "the kubernetes provider override ~/.kube/config (context test) while kubectl follows "
        "the kubeconfig; unset them, or use credentials: environment"
    ]
    # The Terraform Cloud mode is made of exactly these variables.
    path.write_text('cluster: {credentials: environment}\nistio_version: "1.23.6"\n')
    assert load_file(path, tmp_path, environ={"KUBE_HOST": "https://x"}).name == "staging"


def test_holding_the_application_keeps_pilot_agent_wait(tmp_path: Path) -> None:
    [problem] = problems_of(
        tmp_path, MINIMAL_CONFIG + "proxy: {post_start_command: [sleep, '5']}\n"
    )
    assert problem.startswith(
        "config/production.yaml: proxy.post_start_command: ['sleep', '5'] must start with "
        "pilot-agent wait while hold_application_until_proxy_starts is true"
    ), problem
    [problem] = problems_of(tmp_path, MINIMAL_CONFIG + "proxy: {post_start_command: null}\n")
    assert "proxy.post_start_command: None must start with pilot-agent wait" in problem
    # Without a lifecycle at all, Istio adds its own hook; without hold, nothing is needed.
    for proxy in (
        "{post_start_command: null, pre_stop_command: null}",
        "{hold_application_until_proxy_starts: false, post_start_command: null}",
    ):
        (tmp_path / "config" / "ok.yaml").write_text(MINIMAL_CONFIG + f"proxy: {proxy}\n")
        load_file(tmp_path / "config" / "ok.yaml", tmp_path, environ={})


@pytest.mark.parametrize("name", PROVIDER_OVERRIDE_ENV)
def test_the_kubectl_script_refuses_the_same_provider_overrides(tmp_path: Path, name: str) -> None:
    # The script itself, run as Terraform runs it; the recording kubectl stand-in on PATH would
    # log any call it got.
    record = tmp_path / "calls"
    record.mkdir()
    env = {
        "PATH": f"{ROOT / 'tests' / 'fake_kubectl'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "KUBECTL_RECORD": str(record),
        name: "1",
    }
    script = ROOT / "constructs" / "kubectl_run.sh"
    argv = ["/bin/sh", str(script), "kubeconfig", "/k", "ctx", "apply", "/dev/null"]
    result = subprocess.run(argv, env=env, capture_output=True, text=True)
    assert result.returncode == 2
    assert "KUBE_* cluster variables are set" in result.stderr
    assert list(record.iterdir()) == []


@pytest.mark.parametrize("field", ["kubeconfig", "context"])
def test_cluster_strings_cannot_carry_terraform_expressions(tmp_path: Path, field: str) -> None:
    cluster = {"kubeconfig": "~/.kube/config", "context": "test", field: "x%{if true}y"}
    [problem] = problems_of(tmp_path, f"cluster: {json.dumps(cluster)}\nistio_version: '1.23.6'\n")
    assert f"cluster.{field}: 'x%{{if true}}y' contains a Terraform template sequence" in problem
