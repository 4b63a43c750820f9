"""A plan shows the manifest change itself: unit checks, and real `terraform plan` runs.

The plans run through the provider-free harness (tests/terraform_harness.py), which projects a
null_resource's `triggers` onto terraform_data `triggers_replace`. Terraform renders a changed
multi-line string the same way in both: as a heredoc with `-`/`+` lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from constructs.istio_operator_manifest import render
from constructs.plan_view import manifest_file_triggers, manifest_triggers, terraform_literal
from constructs.workspace_config import WorkspaceConfig
from tests import test_terraform_e2e as e2e
from tests.conftest import MINIMAL_CONFIG, synth_stack
from tests.test_terraform_e2e import Deployment

deployment = e2e.deployment  # the fixture: a project copy, synthesized, `terraform init` done

# Terraform template syntax, its escapes, and stray dollar and percent signs.
TRICKY = "a ${b} %{ if c } $${d} %%{e} $$${f} $ % $$ {g} ${ %{\n"


def test_terraform_literal_escapes_both_template_sequences() -> None:
    assert terraform_literal("x ${y} %{z}") == "x $${y} %%{z}"
    assert terraform_literal("$${y}") == "$$${y}"
    assert terraform_literal("no template here: $ % {}") == "no template here: $ % {}"


def test_manifest_triggers_carry_sha1_and_text() -> None:
    assert manifest_triggers(b"kind: X\ncmd: ${HOME}\n", "abc") == {
        "manifest_sha1": "abc",
        "manifest": "kind: X\ncmd: $${HOME}\n",
    }
    assert manifest_file_triggers("1.23.6/crd-operator.yaml", "abc") == {
        "manifest_sha1": "abc",
        "manifest_file": "1.23.6/crd-operator.yaml",
    }


@pytest.mark.parametrize("data", [b"\xff\xfe not utf-8", "cafe\u0301\n".encode()])
def test_text_terraform_could_not_keep_exactly_shows_only_the_sha1(data: bytes) -> None:
    # Invalid UTF-8, and text that is not NFC (Terraform would normalize it), would not come
    # back from the state byte for byte.
    assert manifest_triggers(data, "abc") == {"manifest_sha1": "abc"}


def test_template_syntax_in_a_config_value_reaches_the_json_escaped(
    workspace: Callable[..., WorkspaceConfig],
) -> None:
    config = workspace(
        MINIMAL_CONFIG + f"proxy: {{pre_stop_command: [sh, -c, {json.dumps(TRICKY)}]}}\n"
    )
    triggers = synth_stack(config)["resource"]["null_resource"]["control_plane"]["triggers"]
    text = render(config).text
    assert "${b}" in text
    assert triggers["manifest"] == terraform_literal(text)
    # Every ${ and %{ left in the JSON is an escape: Terraform evaluates none of them.
    assert not re.search(r"(?<!\$)\$\{", triggers["manifest"].replace("$${", ""))


def _plan(deployment: Deployment) -> str:
    return deployment.workdir.terraform("plan", "-input=false").stdout


def test_a_pilot_change_plans_as_changed_manifest_lines(
    deployment: Callable[[str], Deployment],
) -> None:
    staging = deployment("staging")
    staging.apply()
    staging.synth()
    unchanged = _plan(staging)
    assert "No changes." in unchanged, unchanged

    staging.edit(
        "config/staging.yaml",
        "limits: {cpu: 100m, memory: 256Mi}",
        "limits: {cpu: 777m, memory: 256Mi}",
    )
    staging.synth()
    plan = _plan(staging)
    assert "terraform_data.null_resource__control_plane must be replaced" in plan
    replaced = re.findall(r"^  # (\S+)", plan, re.M)
    assert replaced == ["terraform_data.null_resource__control_plane"], plan
    # Terraform's line diff of the manifest, beside the sha1 that forces the replacement.
    removed = re.findall(r"^\s+- (.*)$", plan, re.M)
    added = re.findall(r"^\s+\+ (.*)$", plan, re.M)
    assert removed == ['          limits: {"cpu": "100m", "memory": "256Mi"}'], plan
    assert added == ['          limits: {"cpu": "777m", "memory": "256Mi"}'], plan
    assert re.search(r'~ manifest_sha1 += "[0-9a-f]{40}" -> "[0-9a-f]{40}"', plan), plan


def test_a_crd_change_plans_as_its_digest_and_file_name_only(
    deployment: Callable[[str], Deployment],
) -> None:
    staging = deployment("staging")
    first = _plan(staging)
    assert 'manifest_file = "1.23.6/crd-operator.yaml"' in first
    assert "openAPIV3Schema" not in first  # the CRD's text is never in a plan
    staging.apply()
    staging.edit(
        "manifests/1.23.6/crd-operator.yaml", "      - io\n", "      - io\n      - istioop\n"
    )
    staging.synth()
    plan = _plan(staging)
    replaced = re.findall(r"^  # (\S+)", plan, re.M)
    assert replaced == ["terraform_data.null_resource__operator_crd"], plan
    # The file name is unchanged, so Terraform counts it among the hidden attributes.
    assert re.search(r'~ manifest_sha1 += "[0-9a-f]{40}" -> "[0-9a-f]{40}"', plan), plan
    assert "istioop" not in plan


def test_the_state_holds_the_manifest_bytes_exactly(
    deployment: Callable[[str], Deployment],
) -> None:
    staging = deployment("staging")
    staging.edit(
        "config/staging.yaml",
        "  hold_application_until_proxy_starts: true\n",
        "  hold_application_until_proxy_starts: true\n"
        f"  pre_stop_command: [sh, -c, {json.dumps(TRICKY)}]\n",
    )
    staging.synth()
    staging.apply()
    shown = json.loads(staging.workdir.terraform("show", "-json").stdout)
    [resource] = [
        r
        for r in shown["values"]["root_module"]["resources"]
        if r["name"] == "null_resource__control_plane"
    ]
    applied = staging.asset("istio-operator.yaml")
    assert TRICKY.encode() in applied.replace(b"\\n", b"\n")
    assert resource["values"]["triggers_replace"]["manifest"].encode() == applied
    # And what kubectl read is those same bytes.
    [*_, iop_apply] = staging.calls()
    assert iop_apply.stdin == applied
    assert "No changes." in _plan(staging)
