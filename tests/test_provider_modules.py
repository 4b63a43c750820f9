"""The provider fast path is safe: same bytes as plain imports, and loud when misused.

Every check runs in a fresh interpreter: this pytest process has already taken the fast path
(tests/conftest.py), and which path a process takes is decided once, before the first import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from constructs.provider_modules import PACKAGES, PLAIN_IMPORTS_ENV
from tests.conftest import ROOT

KUBERNETES = "cdktf_cdktf_provider_kubernetes"


def python(
    args: list[str], *, plain: bool, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the project's Python in the project root, with or without the fast path."""
    child_env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    for name in (PLAIN_IMPORTS_ENV, "ISTIO_KUBECONFIG", "ISTIO_KUBE_CONTEXT", "CDKTF_OUTDIR"):
        child_env.pop(name, None)
    if plain:
        child_env[PLAIN_IMPORTS_ENV] = "1"
    child_env.update(env or {})
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=child_env, capture_output=True, text=True
    )


def tree_bytes(outdir: Path) -> dict[str, bytes]:
    return {
        p.relative_to(outdir).as_posix(): p.read_bytes()
        for p in sorted(outdir.rglob("*"))
        if p.is_file()
    }


def loaded_provider_modules(plain: bool) -> list[str]:
    """The provider submodules that importing main.py (install() and the app) leaves loaded."""
    script = (
        "import json, sys; import main; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({PACKAGES!r}))))"
    )
    result = python(["-c", script], plain=plain)
    assert result.returncode == 0, result.stderr
    modules: list[str] = json.loads(result.stdout.splitlines()[-1])
    return modules


def test_fast_path_synthesizes_the_same_bytes_as_plain_imports(tmp_path: Path) -> None:
    fast_out, plain_out = tmp_path / "fast", tmp_path / "plain"
    fast = python(["main.py"], plain=False, env={"CDKTF_OUTDIR": str(fast_out)})
    plain = python(["main.py"], plain=True, env={"CDKTF_OUTDIR": str(plain_out)})
    assert fast.returncode == 0, fast.stderr
    assert plain.returncode == 0, plain.stderr
    fast_files, plain_files = tree_bytes(fast_out), tree_bytes(plain_out)
    assert sorted(fast_files) == sorted(plain_files)
    assert any(name.endswith("cdk.tf.json") for name in fast_files)
    for name, data in plain_files.items():
        assert fast_files[name] == data, f"{name} differs between fast path and plain imports"


def test_fast_path_loads_a_few_modules_and_the_baseline_loads_them_all() -> None:
    # Guards the comparison above: it would prove nothing if both runs took the same path.
    fast, plain = loaded_provider_modules(plain=False), loaded_provider_modules(plain=True)
    assert f"{KUBERNETES}.provider" in fast
    assert f"{KUBERNETES}.secret_v1" not in fast
    assert f"{KUBERNETES}.secret_v1" in plain
    assert len(plain) > 100
    assert len(fast) < len(plain) / 4, fast


def test_a_module_that_was_not_imported_raises_a_clear_attribute_error() -> None:
    script = f"""
from constructs.provider_modules import install
install()
import {KUBERNETES} as k
assert not hasattr(k, "secret_v1")
try:
    k.secret_v1
except AttributeError as exc:
    print(exc)
else:
    raise SystemExit("k.secret_v1 did not raise")
"""
    result = python(["-c", script], plain=False)
    assert result.returncode == 0, result.stdout + result.stderr
    message = result.stdout.strip()
    assert f"{KUBERNETES}.secret_v1 is not loaded" in message
    assert f"from {KUBERNETES}.secret_v1 import" in message
    assert "constructs/provider_modules.py" in message


def test_an_explicitly_imported_module_is_reachable_from_the_package() -> None:
    script = f"""
from constructs.provider_modules import install
install()
import {KUBERNETES} as k
from {KUBERNETES}.secret_v1 import SecretV1
assert k.secret_v1.SecretV1 is SecretV1
print(type(k).__name__)
"""
    result = python(["-c", script], plain=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "_LazyPackage"


def test_plain_imports_switch_leaves_the_real_package_in_place() -> None:
    script = f"""
from constructs.provider_modules import install
install()
import {KUBERNETES} as k
print(type(k).__name__, hasattr(k, "secret_v1"))
"""
    result = python(["-c", script], plain=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "module True"
