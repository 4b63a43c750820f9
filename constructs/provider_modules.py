"""Load the prebuilt providers one resource module at a time.

Importing anything under `cdktf_cdktf_provider_kubernetes` normally runs the package `__init__`,
which imports all ~110 resource modules: about 4 of the 5 seconds a plain synth takes. `install()`
puts a bare package object in `sys.modules` first, so `from cdktf_cdktf_provider_kubernetes.
namespace_v1 import NamespaceV1` loads that module (and the shared jsii assembly) and nothing
else. The generated modules only need the package for its `__path__` and its `_jsii` submodule,
which still load normally.

Reaching for a module that was never imported (`kubernetes.secret_v1` as an attribute) raises an
AttributeError that says what to do, instead of working in one mode and failing in the other.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from typing import Any

PACKAGES = ("cdktf_cdktf_provider_kubernetes", "cdktf_cdktf_provider_null")

# Set to 1 to import the providers the plain way (the benchmark's baseline).
PLAIN_IMPORTS_ENV = "ISTIO_CDKTF_PLAIN_IMPORTS"


class _LazyPackage(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(
            f"{self.__name__}.{name} is not loaded: this app loads provider modules one by one "
            f"(constructs/provider_modules.py). Import it explicitly, e.g. "
            f"`from {self.__name__}.{name} import ...`."
        )


def install() -> None:
    """Register bare provider packages; a no-op if they are already imported (or disabled)."""
    if os.environ.get(PLAIN_IMPORTS_ENV) == "1":
        return
    for name in PACKAGES:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or spec.submodule_search_locations is None:
            raise ImportError(f"{name} is not installed; run `make synth` to set up .venv")
        package = _LazyPackage(name, f"{name} (loaded module by module)")
        package.__spec__ = spec
        package.__path__ = list(spec.submodule_search_locations)
        package.__file__ = spec.origin
        package.__package__ = name
        sys.modules[name] = package
