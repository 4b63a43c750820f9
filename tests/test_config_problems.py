"""One run lists every problem of a file: field errors and the checks across sections together."""

from __future__ import annotations

from pathlib import Path

import pytest

from constructs.workspace_config import ConfigError, load_file
from tests.conftest import MINIMAL_CONFIG
from tests.test_workspace_config import problems_of

CROSS_SECTION = """\
control_plane: {namespace: mesh}
injection_namespaces: [istio-system]
namespace_labels: {web: {team: a}}
"""


def test_field_errors_and_cross_section_problems_are_listed_together(tmp_path: Path) -> None:
    text = MINIMAL_CONFIG + "pilot: {resources: {limits: {cpu: 100x}}}\nsurprise: 1\n"
    assert problems_of(tmp_path, text + CROSS_SECTION) == [
        "config/production.yaml: pilot.resources.limits.cpu: '100x' is not a Kubernetes quantity",
        "config/production.yaml: surprise: unknown key (allowed: backend, cluster, "
        "control_plane, existing_namespaces, injection_namespaces, istio_version, kubectl, "
        "namespace_labels, operator, pilot, proxy, sail_operator, tracing)",
        "config/production.yaml: control_plane.namespace: 'mesh' is not in "
        "operator.watched_namespaces ['istio-system']: the operator would never see the "
        "IstioOperator",
        "config/production.yaml: injection_namespaces: ['istio-system'] already created by the "
        "operator install (operator.namespace or operator.watched_namespaces); Istio's own "
        "namespaces are not injected",
        "config/production.yaml: namespace_labels.web: 'web' is not in injection_namespaces "
        "['istio-system']; only namespaces this stack creates can be labelled here",
    ]


def test_every_cross_section_problem_is_listed_when_the_fields_are_valid(tmp_path: Path) -> None:
    assert len(problems_of(tmp_path, MINIMAL_CONFIG + CROSS_SECTION)) == 3


def test_a_check_on_an_invalid_section_is_skipped_not_guessed(tmp_path: Path) -> None:
    # operator.watched_namespaces is invalid, so whether the control plane's namespace is
    # watched cannot be known: only the field error is reported.
    text = (
        MINIMAL_CONFIG
        + "operator: {watched_namespaces: [Mesh]}\ncontrol_plane: {namespace: mesh}\n"
    )
    assert problems_of(tmp_path, text) == [
        "config/production.yaml: operator.watched_namespaces.0: 'Mesh' is not a DNS-1123 label "
        "(lower case, digits, '-')",
    ]


def test_a_false_kube_insecure_does_not_stop_a_kubeconfig_synth(tmp_path: Path) -> None:
    # The provider acts on KUBE_INSECURE only when it parses as true; kubectl_run.sh agrees.
    path = tmp_path / "config" / "qa.yaml"
    path.parent.mkdir()
    path.write_text(MINIMAL_CONFIG)
    assert load_file(path, tmp_path, environ={"KUBE_INSECURE": "false"}).name == "qa"
    with pytest.raises(ConfigError) as refused:
        load_file(path, tmp_path, environ={"KUBE_INSECURE": "true"})
    assert "KUBE_INSECURE set in the environment" in refused.value.problems[0]
