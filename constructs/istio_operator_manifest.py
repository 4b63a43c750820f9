"""Render and check the workspace's control plane manifest (manifests/<version>/*.yaml.j2).

Rendering happens once per workspace at synth. The result is checked before any stack uses it.
For the Istio Operator engine: valid YAML, exactly one IstioOperator, in a namespace the operator
watches, and only field paths the chosen version's operator accepts. The operator validates
`spec.values` and `spec.meshConfig` strictly, so an unknown key would otherwise be found only in
the cluster, after the apply. For the Sail Operator engine: every rendered resource is validated
against the openAPIV3Schema of its CRD as shipped in manifests/ (see `sail_schema`), and each
failure is reported at the config key it came from.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import yaml

from constructs.istio_releases import OPERATOR_APIS, SAIL_APIS, Engine, OperatorApi, SailApi
from constructs.workspace_config import WorkspaceConfig

if TYPE_CHECKING:
    # Imported where used: only a synth with a Sail workspace pays its ~0.1 s import.
    import jsonschema

MANIFESTS = Path(__file__).resolve().parent.parent / "manifests"
API_VERSION = "install.istio.io/v1alpha1"
KIND = "IstioOperator"


class ManifestError(Exception):
    """A template or its rendering is unusable; the message names the template and the problem.

    `problems` holds one line per problem (several when a schema rejects several fields)."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems) or [message]


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
    sail = SAIL_APIS.get(spec.istio_version)
    return {
        "name": config.control_plane_name,
        "namespace": spec.control_plane.namespace,
        "profile": config.profile,
        "version": sail.spec_version if sail else spec.istio_version,
        "tracing": spec.tracing.model_dump(),
        "pilot": {
            "requests": spec.pilot.resources.requests.as_dict(),
            "limits": spec.pilot.resources.limits.as_dict(),
        },
        "proxy": {**spec.proxy.model_dump(), "native_sidecars": config.native_sidecars},
    }


def render(config: WorkspaceConfig) -> RenderedManifest:
    """Render the workspace's control plane manifest and check it; raises ManifestError."""
    if config.engine is Engine.SAIL_OPERATOR:
        return _render_sail(config)
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


def _documents(text: str, source: str) -> list[Any]:
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ManifestError(f"{source}: rendered output is not valid YAML: {exc}") from None


def check(text: str, api: OperatorApi, source: str, watched: list[str]) -> None:
    """Raise ManifestError unless `text` is one IstioOperator the version's operator accepts."""
    documents = _documents(text, source)
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


# --- The Sail Operator engine -------------------------------------------------------------------
SAIL_API_VERSION = "sailoperator.io/v1"


def _render_sail(config: WorkspaceConfig) -> RenderedManifest:
    api = SAIL_APIS[config.spec.istio_version]
    context = template_context(config)
    text = _render_template(api.template, json.dumps(context, sort_keys=True))
    check_sail(text, api, source=f"manifests/{api.template}")
    return RenderedManifest(name=context["name"], namespace=context["namespace"], text=text)


def check_sail(text: str, api: SailApi, source: str) -> None:
    """Raise ManifestError unless `text` is one `Istio` (and what goes with it) that the shipped
    CRDs accept. A failure in a field that comes from config is reported at its config key
    (`pilot.resources.limits.cpu: ...`), anything else at the template (`<source>: spec...`)."""
    documents = _documents(text, source)
    kinds = [d.get("kind") if isinstance(d, dict) else None for d in documents]
    if kinds.count("Istio") != 1 or kinds[0] != "Istio":
        raise ManifestError(f"{source}: rendered kinds {kinds}, expected one Istio first")
    problems = []
    for document, kind in zip(documents, kinds, strict=True):
        schema = api.schemas.get(kind) if isinstance(kind, str) else None
        if document.get("apiVersion") != SAIL_API_VERSION or schema is None:
            raise ManifestError(
                f"{source}: rendered {document.get('apiVersion')} {kind}, which no shipped "
                f"schema describes ({SAIL_API_VERSION} {', '.join(api.schemas)})"
            )
        if "namespace" in (document.get("metadata") or {}):
            problems.append(f"{source}: metadata.namespace: {kind} is cluster-scoped")
        for error in sorted(sail_schema(schema).iter_errors(document), key=_error_order):
            problems.append(_describe(error, api, source))
    if problems:
        raise ManifestError("; ".join(problems), problems)


def _error_order(error: jsonschema.ValidationError) -> str:
    return _dotted(error.absolute_path)


def _dotted(path: Sequence[str | int] | Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _describe(error: jsonschema.ValidationError, api: SailApi, source: str) -> str:
    path = _dotted(error.absolute_path) or "(top level)"
    if error.validator == "pattern":
        message = f"{error.instance!r} does not match the CRD's pattern {error.validator_value}"
    else:
        message = error.message
    for rendered, config_key in sorted(api.config_paths, key=lambda p: -len(p[0])):
        if path == rendered or path.startswith((rendered + ".", rendered + "[")):
            return f"{config_key}{path[len(rendered) :]}: {message} (rendered as {path})"
    return f"{source}: {path}: {message}"


@functools.cache
def sail_schema(relative: str) -> jsonschema.Draft4Validator:
    """The validator for a CRD file under manifests/, built once per synth (the Istio CRD is
    ~730 KB of YAML, ~390 KB as JSON).

    A CRD's openAPIV3Schema is structural, but an object that lists `properties` allows other
    keys in JSON Schema, where the API server would prune them or `kubectl apply` reject them.
    Adding `additionalProperties: false` there (never where the CRD already says what else is
    allowed, or preserves unknown fields) makes the validator reject unknown keys as the
    cluster would. OpenAPI v3.0 schemas are close to JSON Schema draft 4; CEL rules
    (x-kubernetes-validations) are not checked here.
    """
    import jsonschema  # see TYPE_CHECKING above

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster on this file
    crd = yaml.load((MANIFESTS / relative).read_bytes(), Loader=loader)  # noqa: S506 - safe loader
    [version] = [v for v in crd["spec"]["versions"] if v.get("storage")]
    schema = version["schema"]["openAPIV3Schema"]
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return jsonschema.Draft4Validator(schema)
