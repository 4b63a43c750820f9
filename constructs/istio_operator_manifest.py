"""Render and check the workspace's IstioOperator manifest (manifests/<version>/*.yaml.j2).

Rendering happens once per workspace at synth. The result is checked before any stack uses it:
valid YAML, exactly one IstioOperator, in a namespace the operator watches, and only field paths
the chosen version's operator accepts. The operator validates `spec.values` and `spec.meshConfig`
strictly, so an unknown key would otherwise be found only in the cluster, after the apply.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

from constructs.istio_releases import OPERATOR_APIS, OperatorApi
from constructs.workspace_config import WorkspaceConfig

MANIFESTS = Path(__file__).resolve().parent.parent / "manifests"
API_VERSION = "install.istio.io/v1alpha1"
KIND = "IstioOperator"


class ManifestError(Exception):
    """A template or its rendering is unusable; the message names the template and the problem."""


@dataclass(frozen=True)
class RenderedManifest:
    """The exact bytes kubectl will read, and their sha1 (the apply's trigger)."""

    name: str
    namespace: str
    text: str

    @functools.cached_property
    def data(self) -> bytes:
        return self.text.encode("utf-8")

    @functools.cached_property
    def sha1(self) -> str:
        return hashlib.sha1(self.data, usedforsecurity=False).hexdigest()


class _Quoted(str):
    """Template output that went through `| yaml`; anything else is refused."""


def _to_yaml(value: Any) -> _Quoted:
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()  # raises UndefinedError naming the variable
    # JSON is YAML: a JSON string is a double-quoted YAML scalar, a JSON list or object a flow
    # collection. Whatever the value holds (newlines, ': ', '#', '---'), it stays one value.
    return _Quoted(json.dumps(value, ensure_ascii=True))


def _only_quoted(value: Any) -> Any:
    if not isinstance(value, _Quoted):
        raise ManifestError(
            f"template output {value!r} was not passed through `| yaml`; every {{{{ }}}} in a "
            "manifest template must end with `| yaml` so no value can change the YAML structure"
        )
    return value


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(MANIFESTS),
        undefined=jinja2.StrictUndefined,
        finalize=_only_quoted,
        autoescape=False,  # noqa: S701 - YAML, not HTML; values are quoted by `| yaml`
        keep_trailing_newline=True,
    )
    env.filters["yaml"] = _to_yaml
    return env


def template_context(config: WorkspaceConfig) -> dict[str, Any]:
    spec = config.spec
    return {
        "name": spec.control_plane.name,
        "namespace": spec.control_plane.namespace,
        "profile": spec.control_plane.profile,
        "tracing": spec.tracing.model_dump(),
        "pilot": {
            "requests": spec.pilot.resources.requests.as_dict(),
            "limits": spec.pilot.resources.limits.as_dict(),
        },
        "proxy": spec.proxy.model_dump(),
    }


def render(config: WorkspaceConfig) -> RenderedManifest:
    """Render the workspace's IstioOperator and check it; raises ManifestError."""
    api = OPERATOR_APIS[config.spec.istio_version]
    context = template_context(config)
    text = _render_template(api.template, json.dumps(context, sort_keys=True))
    check(
        text,
        api,
        source=f"manifests/{api.template}",
        watched=config.spec.operator.watched_namespaces,
    )
    return RenderedManifest(name=context["name"], namespace=context["namespace"], text=text)


@functools.cache
def _render_template(template: str, context_json: str) -> str:
    # Keyed on the JSON of the context, so each distinct workspace is rendered once per synth.
    try:
        return _environment().get_template(template).render(json.loads(context_json))
    except jinja2.UndefinedError as exc:
        raise ManifestError(f"manifests/{template}: {exc.message}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise ManifestError(f"manifests/{template}: line {exc.lineno}: {exc.message}") from None
    except ManifestError as exc:
        raise ManifestError(f"manifests/{template}: {exc}") from None


def check(text: str, api: OperatorApi, source: str, watched: list[str]) -> None:
    """Raise ManifestError unless `text` is one IstioOperator the version's operator accepts."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ManifestError(f"{source}: rendered output is not valid YAML: {exc}") from None
    if len(documents) != 1:
        raise ManifestError(f"{source}: rendered {len(documents)} documents, expected exactly one")
    [manifest] = documents
    if not isinstance(manifest, dict):
        raise ManifestError(f"{source}: rendered a {type(manifest).__name__}, not an object")
    kind = (manifest.get("apiVersion"), manifest.get("kind"))
    if kind != (API_VERSION, KIND):
        raise ManifestError(f"{source}: rendered {kind}, expected ({API_VERSION!r}, {KIND!r})")
    namespace = (manifest.get("metadata") or {}).get("namespace")
    if namespace not in watched:
        raise ManifestError(
            f"{source}: metadata.namespace {namespace!r} is not watched by the operator "
            f"(operator.watched_namespaces: {watched})"
        )
    unknown = sorted(set(_leaf_paths(manifest)) - api.accepted_paths)
    if unknown:
        raise ManifestError(
            f"{source}: field paths this Istio version's operator is not known to accept: "
            f"{', '.join(unknown)} (accepted: OPERATOR_APIS in constructs/istio_releases.py)"
        )
    tracer = manifest.get("spec", {}).get("values", {}).get("global", {}).get("proxy", {})
    tracer = tracer.get("tracer") if isinstance(tracer, dict) else None
    if tracer is not None and tracer not in api.tracers:
        raise ManifestError(
            f"{source}: spec.values.global.proxy.tracer {tracer!r} is not one of "
            f"{sorted(api.tracers)}"
        )


def _leaf_paths(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, child in value.items():
            if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", key):
                yield f"{prefix}{key!r}"
                continue
            yield from _leaf_paths(child, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list):
        for child in value:
            yield from _leaf_paths(child, f"{prefix}[]")
    else:
        yield prefix


@functools.cache
def manifest_sha1(relative: str) -> str:
    """The sha1 of a file under manifests/, read and hashed once per synth however many stacks
    use it."""
    return hashlib.sha1((MANIFESTS / relative).read_bytes(), usedforsecurity=False).hexdigest()
