"""Reading workspace files: every careless or hostile input is one clear line, never a crash.

The loader's bounds (size, depth, values) and its refusals (duplicate keys, files that are not
regular UTF-8 text) are checked input by input, and then with Hypothesis on arbitrary bytes and
YAML documents: the only outcomes are a WorkspaceConfig or a ConfigError naming its file.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from constructs.workspace_config import (
    MAX_DEPTH,
    MAX_FILE_BYTES,
    MAX_VALUES,
    ConfigError,
    WorkspaceConfig,
    WorkspaceFile,
    load_all,
    load_file,
    load_named,
    workspace_paths,
)
from tests.conftest import MINIMAL_CONFIG, ROOT
from tests.test_app import run_main, tree_bytes

STAGING = (ROOT / "config" / "staging.yaml").read_text(encoding="utf-8")


def write(root: Path, name: str, data: str | bytes) -> Path:
    (root / "config").mkdir(exist_ok=True)
    path = root / "config" / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def problems_of(root: Path, data: str | bytes, name: str = "qa.yaml") -> list[str]:
    path = write(root, name, data)
    with pytest.raises(ConfigError) as caught:
        load_file(path, root, environ={})
    return caught.value.problems


# --- Duplicate keys ----------------------------------------------------------------------------
def test_a_top_level_key_written_twice_names_both_lines(tmp_path: Path) -> None:
    text = MINIMAL_CONFIG + "pilot: {}\ntracing: {}\npilot: {resources: {}}\n"
    assert problems_of(tmp_path, text, "staging.yaml") == [
        "config/staging.yaml: pilot: key written twice (lines 3 and 5)"
    ]


def test_duplicates_at_any_depth_are_all_listed(tmp_path: Path) -> None:
    text = (
        'istio_version: "1.23.6"\n'  # 1
        "cluster: {kubeconfig: k, context: c}\n"  # 2
        "pilot:\n"  # 3
        "  resources:\n"  # 4
        "    limits:\n"  # 5
        "      cpu: 100m\n"  # 6
        "      memory: 1Gi\n"  # 7
        "      cpu: 200m\n"  # 8
        "injection_namespaces: [a]\n"  # 9
        "namespace_labels: {a: {team: x, team: y}}\n"  # 10
        'istio_version: "1.7.3"\n'  # 11
        'istio_version: "1.7.3"\n'  # 12
    )
    assert problems_of(tmp_path, text) == [
        "config/qa.yaml: istio_version: key written 3 times (lines 1, 11 and 12)",
        "config/qa.yaml: pilot.resources.limits.cpu: key written twice (lines 6 and 8)",
        "config/qa.yaml: namespace_labels.a.team: key written twice (line:column 10:24 and 10:33)",
    ]


def test_keys_that_are_equal_once_read_are_duplicates(tmp_path: Path) -> None:
    # "pilot" quoted or not is the same key; so are 1 and 0x1: the later would replace the first.
    text = MINIMAL_CONFIG + "pilot: {}\n'pilot': {}\nnamespace_labels: {1: {}, 0x1: {}}\n"
    assert problems_of(tmp_path, text) == [
        "config/qa.yaml: pilot: key written twice (lines 3 and 4)",
        "config/qa.yaml: namespace_labels.1: key written twice (line:column 5:20 and 5:27)",
    ]


def test_anchors_aliases_and_merge_keys_still_work(tmp_path: Path) -> None:
    # A merge key's values are overridden by explicit keys beside it: YAML's rule, no duplicate.
    text = MINIMAL_CONFIG + (
        "operator:\n"
        "  resources:\n"
        "    requests: &sizing {cpu: 64m, memory: 256Mi}\n"
        "    limits: {<<: *sizing, cpu: 128m}\n"
        "pilot: {resources: {requests: *sizing}}\n"
    )
    spec = load_file(write(tmp_path, "qa.yaml", text), tmp_path, environ={}).spec
    assert spec.operator.resources.limits.as_dict() == {"cpu": "128m", "memory": "256Mi"}
    assert spec.pilot.resources.requests.as_dict() == {"cpu": "64m", "memory": "256Mi"}


def test_a_file_saved_on_windows_loads(tmp_path: Path) -> None:
    # UTF-8 with a byte order mark and CRLF line ends, as Notepad writes it.
    data = "\ufeff" + MINIMAL_CONFIG.replace("\n", "\r\n")
    assert load_file(write(tmp_path, "qa.yaml", data), tmp_path, environ={}).name == "qa"


# --- Which files are workspaces ----------------------------------------------------------------
def test_yml_files_are_workspaces_too(tmp_path: Path) -> None:
    write(tmp_path, "qa.yml", MINIMAL_CONFIG)
    write(tmp_path, "staging.yaml", MINIMAL_CONFIG)
    write(tmp_path, "eu.YAML", MINIMAL_CONFIG)
    # Not workspaces: other suffixes, and editors' lock and backup files.
    for other in ("notes.txt", "staging.yaml~", "staging.yaml.bak", ".#staging.yaml", ".x.yml"):
        write(tmp_path, other, b"\0 not yaml")
    configs = load_all(tmp_path / "config", tmp_path, environ={})
    assert [(c.name, c.source) for c in configs] == [
        ("eu", "config/eu.YAML"),
        ("qa", "config/qa.yml"),
        ("staging", "config/staging.yaml"),
    ]


def test_two_files_for_one_workspace_are_an_error_naming_both(tmp_path: Path) -> None:
    write(tmp_path, "staging.yaml", MINIMAL_CONFIG)
    write(tmp_path, "staging.yml", MINIMAL_CONFIG)
    write(tmp_path, "production.yaml", MINIMAL_CONFIG + "pilot: {x: 1}\n")
    with pytest.raises(ConfigError) as caught:
        load_all(tmp_path / "config", tmp_path, environ={})
    assert caught.value.problems == [
        "config/production.yaml: pilot.x: unknown key (allowed: resources)",
        "config/staging.yaml: the same workspace 'staging' as config/staging.yml; keep one of them",
    ]


def test_named_workspaces_are_found_as_every_workspace_is(tmp_path: Path) -> None:
    write(tmp_path, "qa.yml", MINIMAL_CONFIG)
    write(tmp_path, "staging.yaml", MINIMAL_CONFIG)
    write(tmp_path, "production.yaml", MINIMAL_CONFIG + "pilot: {x: 1}\n")  # not named: unread
    configs = load_named(tmp_path / "config", tmp_path, ["staging", "qa", "staging"], environ={})
    assert [(c.name, c.source) for c in configs] == [
        ("staging", "config/staging.yaml"),
        ("qa", "config/qa.yml"),
    ]
    assert workspace_paths(tmp_path / "config", tmp_path) == (
        {
            "production": [tmp_path / "config/production.yaml"],
            "qa": [tmp_path / "config/qa.yml"],
            "staging": [tmp_path / "config/staging.yaml"],
        },
        [],
    )


def test_a_named_workspace_gets_the_same_checks_and_unknown_names_list_the_known(
    tmp_path: Path,
) -> None:
    write(tmp_path, "staging.yaml", MINIMAL_CONFIG)
    write(tmp_path, "staging.yml", MINIMAL_CONFIG)
    write(tmp_path, "Prod.yaml", MINIMAL_CONFIG)
    with pytest.raises(ConfigError) as caught:
        load_named(tmp_path / "config", tmp_path, ["staging", "Prod", "eu"], environ={})
    assert caught.value.problems == [
        "config/staging.yaml: the same workspace 'staging' as config/staging.yml; keep one of them",
        "config/Prod.yaml: 'Prod' is not a usable workspace name (lower case letters, digits "
        "and '-')",
        "config: no workspace 'eu' (workspaces: Prod, staging)",
    ]


def test_every_file_is_reported_not_just_the_first_unusable_one(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "a.yaml").mkdir()
    write(tmp_path, "b.yml", b"\xff\xfe")
    write(tmp_path, "c.yaml", MINIMAL_CONFIG)
    write(tmp_path, "d.yaml", MINIMAL_CONFIG + "pilot: 1\npilot: 2\n")
    write(tmp_path, "e.yaml", MINIMAL_CONFIG + "tracing: {tracer: none}\n")
    with pytest.raises(ConfigError) as caught:
        load_all(tmp_path / "config", tmp_path, environ={})
    assert [p.split(": ")[0] for p in caught.value.problems] == [
        "config/a.yaml",
        "config/b.yml",
        "config/d.yaml",
        "config/e.yaml",
    ]


def test_a_missing_config_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_all(tmp_path / "config", tmp_path, environ={})
    assert caught.value.problems == ["config: cannot be read: No such file or directory"]


# --- Files that are not a page of UTF-8 YAML ---------------------------------------------------
@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            "istio_version: caf\xe9\n".encode("latin-1"),
            "is not UTF-8 text: byte 0xe9 at byte offset 18 (save it as UTF-8)",
        ),
        (
            MINIMAL_CONFIG.encode("utf-16"),  # a Windows editor's "Unicode": NULs everywhere
            "contains a NUL byte at byte offset 3: a binary file, not YAML text",
        ),
        (
            random.Random(13).randbytes(4096),
            "contains a NUL byte at byte offset 495: a binary file, not YAML text",
        ),
        (
            b"cluster: {}\nistio_version: \x1b[1m1.23.6\n",
            "line 2: not valid YAML: control character U+001B is not allowed",
        ),
        (b"# " + b"x" * MAX_FILE_BYTES, "is larger than 64 KiB; a workspace file is a page of"),
        (b"", "is empty; a workspace needs at least cluster and istio_version"),
        (b"# nothing but a comment\n", "is empty; a workspace needs at least cluster and"),
        (b"[" * MAX_FILE_BYTES, f"line 1: nested more than {MAX_DEPTH} levels deep"),
        (b"{a: " * 1000, f"line 1: nested more than {MAX_DEPTH} levels deep"),
        (
            b"".join(b" " * i + b"a:\n" for i in range(100)),
            f"line {MAX_DEPTH}: nested more than {MAX_DEPTH} levels deep",
        ),
        (
            b"pilot: [" + b"x, " * MAX_VALUES + b"]",
            f"line 1: more than {MAX_VALUES} values, aliases expanded",
        ),
        (b"cluster: {}\n---\nistio_version: 1\n", "line 2: not valid YAML: but found another"),
        (
            b"x: 0x_\n",
            "line 1: not valid YAML: cannot read '0x_' as int (invalid literal for int() with "
            "base 16: '')",
        ),
        (b"x: 2024-13-01\n", "line 1: not valid YAML: cannot read '2024-13-01' as timestamp"),
        (b"x: !!bool maybe\n", "line 1: not valid YAML: cannot read 'maybe' as bool"),
        (b"x: !!timestamp soon\n", "line 1: not valid YAML: cannot read 'soon' as timestamp"),
        (b"x: " + b"9" * 5000, "line 1: not valid YAML: cannot read '9999"),
        (b"x: !!python/object:os.system ls\n", "line 1: not valid YAML: could not determine a"),
    ],
    ids=lambda v: repr(v)[:30] if isinstance(v, bytes) else None,
)
def test_unusable_content_is_one_line_naming_the_file(
    tmp_path: Path, data: bytes, expected: str
) -> None:
    [problem] = problems_of(tmp_path, data)
    assert problem.startswith(f"config/qa.yaml: {expected}"), problem
    assert len(problem) < 200, problem


def test_a_directory_is_named_as_one(tmp_path: Path) -> None:
    (tmp_path / "config" / "qa.yaml").mkdir(parents=True)
    with pytest.raises(ConfigError) as caught:
        load_all(tmp_path / "config", tmp_path, environ={})
    assert caught.value.problems == ["config/qa.yaml: is a directory, not a workspace file"]


@pytest.fixture
def special_files(tmp_path: Path) -> Iterator[Path]:
    config = tmp_path / "config"
    config.mkdir()
    os.mkfifo(config / "fifo.yaml")  # nobody ever writes: a blocking open would hang forever
    (config / "zero.yaml").symlink_to("/dev/zero")  # endless: a whole read would never end
    (config / "gone.yaml").symlink_to(tmp_path / "moved-away.yaml")
    (config / "loop.yaml").symlink_to(config / "loop.yaml")
    big = tmp_path / "some.log"
    big.write_bytes(b"2026-11-28 INFO all fine\n" * 10_000)
    (config / "log.yml").symlink_to(big)
    yield config


def test_special_files_are_refused_without_reading_them(
    tmp_path: Path, special_files: Path
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_all(special_files, tmp_path, environ={})
    assert caught.value.problems == [
        "config/fifo.yaml: is a named pipe, not a regular file",
        "config/gone.yaml: cannot be read: No such file or directory",
        "config/log.yml: is larger than 64 KiB; a workspace file is a page of settings (is this "
        "the file you meant?)",
        "config/loop.yaml: cannot be read: Too many levels of symbolic links",
        "config/zero.yaml: is a device, not a regular file",
    ]


def test_an_unreadable_file_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The tests may run as root, which reads any file whatever its mode: stand in for EACCES.
    path = write(tmp_path, "qa.yaml", MINIMAL_CONFIG)

    def refuse(*args: Any, **kwargs: Any) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(ConfigError) as caught:
        load_file(path, tmp_path, environ={})
    assert caught.value.problems == ["config/qa.yaml: cannot be read: Permission denied"]


# --- Aliases -----------------------------------------------------------------------------------
def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    # Nine lines, 10**9 strings once expanded: the classic "billion laughs".
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    ]
    [problem] = problems_of(tmp_path, "\n".join(lines) + "\n")
    assert problem == (
        f"config/qa.yaml: line 4: d: more than {MAX_VALUES} values, aliases expanded; a "
        "workspace file has a few dozen"
    )


def test_aliases_cannot_nest_deeper_than_the_limit(tmp_path: Path) -> None:
    # Each anchor is 20 levels deep; an alias inside the next one doubles that.
    deep = "[" * 19 + "x" + "]" * 19
    text = f"a: &a {deep}\nb: {'[' * 19}*a{']' * 19}\n"
    [problem] = problems_of(tmp_path, text)
    assert problem.startswith(
        f"config/qa.yaml: line 1: b.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0: nested more than "
        f"{MAX_DEPTH} levels deep, aliases expanded"
    ), problem


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path, MINIMAL_CONFIG + "pilot: &p {resources: *p}\n")
    assert problem == (
        "config/qa.yaml: line 3: pilot.resources: an alias refers to a value that contains it"
    )


# --- Values quoted in messages are cut ---------------------------------------------------------
def test_quoted_values_are_cut_to_a_readable_length(tmp_path: Path) -> None:
    long = "x" * 1000  # YAML's limit for a plain key
    text = MINIMAL_CONFIG + (
        f"control_plane: {{profile: {long}, name: {long}}}\n"
        f"injection_namespaces: [ads]\nnamespace_labels: {{{long}: {{team: a}}}}\n"
        f"{long}: 1\n"
    )
    cut = "'" + "x" * 79 + "…"
    problems = problems_of(tmp_path, text)
    assert problems[:2] == [
        f"config/qa.yaml: control_plane.name: {cut} is not a DNS-1123 subdomain",
        f"config/qa.yaml: control_plane.profile: {cut}: Input should be 'minimal', 'default', "
        "'demo', 'empty', 'remote' or 'preview'",
    ]
    assert problems[2].startswith(f"config/qa.yaml: {'x' * 80}…: unknown key (allowed: ")
    # The labels check runs beside the field errors: its sections are valid.
    assert problems[3:] == [
        f"config/qa.yaml: namespace_labels.{'x' * 80}…: {cut} is not in injection_namespaces "
        "['ads']; only namespaces this stack creates can be labelled here"
    ]
    [labels] = problems_of(tmp_path, MINIMAL_CONFIG + f"namespace_labels: {{{long}: {{}}}}\n")
    assert labels == (
        f"config/qa.yaml: namespace_labels.{'x' * 80}…: {cut} is not in injection_namespaces "
        "[]; only namespaces this stack creates can be labelled here"
    )
    [text_value] = problems_of(tmp_path, long)
    assert text_value == f"config/qa.yaml: the file must be a mapping of settings, got {cut}"


def test_keys_with_line_breaks_cannot_break_the_one_line_rule(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, MINIMAL_CONFIG + '"a\\nb": 1\n"a\\nb": 2\n')
    assert problems == [
        "config/qa.yaml: 'a\\nb': key written twice (lines 3 and 4)",
    ]


# --- Through the app: exit 1, one line each, no traceback, previous output kept ----------------
def test_the_app_reports_unusable_files_and_keeps_the_previous_output(project_copy: Path) -> None:
    outdir = project_copy / "cdktf.out"
    (outdir / "stacks" / "staging").mkdir(parents=True)
    (outdir / "stacks" / "staging" / "cdk.tf.json").write_text("{}\n")
    before = tree_bytes(outdir)
    config = project_copy / "config"
    (config / "dir.yaml").mkdir()
    os.mkfifo(config / "pipe.yaml")
    (config / "nested.yaml").write_bytes(b"[" * 100_000)
    (config / "staging.yml").write_text(MINIMAL_CONFIG)
    (config / "qa.yml").write_text(MINIMAL_CONFIG + "pilot: 1\npilot: 2\n")
    result = run_main(project_copy)
    assert result.returncode == 1
    assert result.stderr.splitlines()[1:] == [
        "  config/dir.yaml: is a directory, not a workspace file",
        f"  config/nested.yaml: is larger than {MAX_FILE_BYTES // 1024} KiB; a workspace file "
        "is a page of settings (is this the file you meant?)",
        "  config/pipe.yaml: is a named pipe, not a regular file",
        "  config/qa.yml: pilot: key written twice (lines 3 and 4)",
        "  config/staging.yaml: the same workspace 'staging' as config/staging.yml; keep "
        "one of them",
    ]
    assert tree_bytes(outdir) == before


# --- Property: arbitrary input gives a config or a ConfigError naming the file -----------------
def _field_names(model: type[BaseModel]) -> set[str]:
    names = set(model.model_fields)
    for field in model.model_fields.values():
        for arg in (field.annotation, *getattr(field.annotation, "__args__", ())):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                names |= _field_names(arg)
    return names


KEYS = st.sampled_from(sorted(_field_names(WorkspaceFile))) | st.text(max_size=8)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["1.23.6", "1.7.3", "100m", "1Gi", "datadog", "istio-system", "kubeconfig"])
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=15,
)
# Also documents that get past the required keys, so the sections are checked too.
WORKSPACES = st.dictionaries(KEYS, DOCUMENTS, max_size=3).map(
    lambda sections: {**yaml.safe_load(MINIMAL_CONFIG), **sections}
)


@st.composite
def staging_mutations(draw: st.DrawFn) -> bytes:
    """The shipped staging.yaml with a few random edits: the typos a person makes."""
    data = bytearray(STAGING.encode())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        end = draw(st.integers(at, min(len(data), at + 12)))
        insert = draw(
            st.binary(max_size=6)
            | st.sampled_from([b":", b"- ", b"\n", b"  ", b"[", b"{", b"&a ", b"*a", b"'", b"#"])
            | st.just(bytes(data[at:end]))  # a duplicated stretch: a line pasted twice
        )
        data[at:end] = insert if draw(st.booleans()) else bytes(data[at:end]) + insert
    return bytes(data)


def check_outcome(root: Path, data: bytes) -> None:
    path = write(root, "fuzz.yaml", data)
    try:
        config = load_file(path, root, environ={})
    except ConfigError as exc:
        assert exc.problems
        for line in str(exc).splitlines():
            assert line.startswith("config/fuzz.yaml: "), line
        event("refused")  # --hypothesis-show-statistics shows how often each outcome came up
    else:
        assert isinstance(config, WorkspaceConfig)
        event("loaded")


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,  # the same examples in CI every time
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FUZZ
@given(st.binary(max_size=512))
def test_arbitrary_bytes(fuzz_root: Path, data: bytes) -> None:
    check_outcome(fuzz_root, data)


@FUZZ
@given(DOCUMENTS | WORKSPACES)
def test_arbitrary_yaml_documents(fuzz_root: Path, document: Any) -> None:
    check_outcome(fuzz_root, yaml.safe_dump(document).encode())


@FUZZ
@given(staging_mutations())
def test_edits_of_the_shipped_staging_file(fuzz_root: Path, data: bytes) -> None:
    check_outcome(fuzz_root, data)
