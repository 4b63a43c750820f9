"""Typed workspace configuration: one `config/<workspace>.yaml` becomes one `WorkspaceConfig`.

Everything is parsed and validated here, once, at the edge; stacks and constructs trust the
types. `load_all` reports every problem in every file in one `ConfigError`, each line as
`config/production.yaml: pilot.resources.limits.cpu: '100x' is not a Kubernetes quantity`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

IstioVersion = Literal["1.7.3", "1.23.6"]


def override_env(workspace: str) -> tuple[str, str]:
    """The variables that override one workspace's kubeconfig and context, e.g.
    ISTIO_STAGING_KUBECONFIG, so one person can use a local copy of the credentials without
    editing the shared file. They name the workspace because a synth builds every stack: an
    unscoped override left set after a production session would retarget staging too."""
    key = workspace.upper().replace("-", "_")
    return f"ISTIO_{key}_KUBECONFIG", f"ISTIO_{key}_KUBE_CONTEXT"


# The old unscoped names, refused so a leftover one is not silently ignored.
UNSCOPED_OVERRIDE_ENV = ("ISTIO_KUBECONFIG", "ISTIO_KUBE_CONTEXT")

# Labels the stack sets on injection namespaces, or that would fight with them: istio.io/rev
# selects a revisioned injector instead of istio-injection=enabled.
RESERVED_NAMESPACE_LABELS = ("istio-injection", "istio.io/rev")

# The kubernetes provider lets these override the cluster or credentials of its kubeconfig;
# kubectl ignores them. With a kubeconfig target, either would make the two disagree.
PROVIDER_OVERRIDE_ENV = (
    "KUBE_HOST",
    "KUBE_TOKEN",
    "KUBE_CLUSTER_CA_CERT_DATA",
    "KUBE_CLIENT_CERT_DATA",
    "KUBE_CLIENT_KEY_DATA",
    "KUBE_USER",
    "KUBE_PASSWORD",
    "KUBE_INSECURE",
    "KUBE_TLS_SERVER_NAME",
    "KUBE_PROXY_URL",
    "KUBE_CTX_CLUSTER",
    "KUBE_CTX_AUTH_INFO",
    "KUBE_CONFIG_PATHS",
)


class ConfigError(Exception):
    """Raised when one or more workspace files are unusable; `problems` holds one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


# --- Kubernetes value checks -------------------------------------------------------------------
# Patterns follow k8s.io/apimachinery: resource.Quantity, IsDNS1123Label, IsDNS1123Subdomain and
# IsValidLabelValue. Negative quantities are legal in Kubernetes but meaningless for resources.
_QUANTITY = re.compile(r"^(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# IsQualifiedName: an optional DNS-subdomain prefix and '/', then a 1-63 character name.
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_IMAGE_HUB = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def _check(pattern: re.Pattern[str], kind: str, max_len: int) -> AfterValidator:
    def validate(value: str) -> str:
        if len(value) > max_len or not pattern.fullmatch(value):
            raise PydanticCustomError("k8s_value", "is not " + kind)
        return value

    return AfterValidator(validate)


Quantity = Annotated[StrictStr, _check(_QUANTITY, "a Kubernetes quantity", 64)]
DnsLabel = Annotated[
    StrictStr, _check(_DNS_LABEL, "a DNS-1123 label (lower case, digits, '-')", 63)
]
DnsSubdomain = Annotated[StrictStr, _check(_DNS_SUBDOMAIN, "a DNS-1123 subdomain", 253)]
LabelValue = Annotated[StrictStr, _check(_LABEL_VALUE, "a Kubernetes label value", 63)]
LabelKey = Annotated[StrictStr, _check(_LABEL_KEY, "a Kubernetes label key", 253 + 1 + 63)]
ImageHub = Annotated[StrictStr, _check(_IMAGE_HUB, "an image registry/repository prefix", 255)]
ImageTag = Annotated[StrictStr, _check(_IMAGE_TAG, "an image tag", 128)]
NonEmptyStr = Annotated[StrictStr, Field(min_length=1)]


def _no_terraform_template(value: str) -> str:
    # Strings reach cdk.tf.json as they are, and Terraform evaluates `${...}` and `%{...}` in
    # any JSON string: `${file("...")}` in a context name would be read into state.
    if "${" in value or "%{" in value:
        raise PydanticCustomError(
            "k8s_value", "contains a Terraform template sequence (${ or %{), which is not allowed"
        )
    return value


# A free-form string that ends up in the synthesized JSON.
LiteralStr = Annotated[NonEmptyStr, AfterValidator(_no_terraform_template)]


def _no_repeats(values: list[str]) -> list[str]:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise PydanticCustomError(
            "repeated", "lists {repeated} more than once", {"repeated": repr(repeated)}
        )
    return values


class _Strict(BaseModel):
    """Base for every config section: unknown keys are errors, values are never coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --- Sections ----------------------------------------------------------------------------------
class ResourceList(_Strict):
    cpu: Quantity | None = None
    memory: Quantity | None = None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("cpu", self.cpu), ("memory", self.memory)) if v is not None}


class Resources(_Strict):
    requests: ResourceList = ResourceList()
    limits: ResourceList = ResourceList()


class Cluster(_Strict):
    """Where the stack points: a kubeconfig file and context, or the KUBE_* environment.

    `credentials: environment` is the Terraform Cloud mode: the workspace sets KUBE_HOST,
    KUBE_TOKEN, KUBE_CLUSTER_CA_CERT_DATA and friends, which the kubernetes provider reads by
    itself and our kubectl calls turn into a private, temporary kubeconfig.
    """

    credentials: Literal["kubeconfig", "environment"] = "kubeconfig"
    kubeconfig: LiteralStr | None = None
    context: LiteralStr | None = None

    @model_validator(mode="after")
    def _kubeconfig_needs_context(self) -> Cluster:
        if self.credentials == "kubeconfig" and not (self.kubeconfig and self.context):
            raise PydanticCustomError(
                "cluster_target",
                "credentials 'kubeconfig' needs both 'kubeconfig' and 'context', so every run "
                "is aimed at one named cluster",
            )
        if self.credentials == "environment" and (self.kubeconfig or self.context):
            raise PydanticCustomError(
                "cluster_target",
                "credentials 'environment' takes its target from KUBE_* variables; "
                "remove 'kubeconfig' and 'context'",
            )
        return self


class CloudBackend(_Strict):
    organization: LiteralStr
    workspace: LiteralStr
    project: LiteralStr | None = None
    hostname: LiteralStr = "app.terraform.io"


class Backend(_Strict):
    """Omitted: local state in state/<workspace>/, outside cdktf.out."""

    cloud: CloudBackend | None = None


class Operator(_Strict):
    """The Istio Operator install: what the blog passed to `helm template --set`."""

    hub: ImageHub = "docker.io/istio"
    tag: ImageTag | None = None  # None: the Istio version
    namespace: DnsLabel = "istio-operator"
    watched_namespaces: Annotated[list[DnsLabel], Field(min_length=1)] = ["istio-system"]
    resources: Resources = Resources(
        requests=ResourceList(cpu="50m", memory="128Mi"),
        limits=ResourceList(cpu="200m", memory="256Mi"),
    )


class ControlPlane(_Strict):
    """The IstioOperator custom resource this workspace applies."""

    name: DnsSubdomain = "default-istiocontrolplane"
    namespace: DnsLabel = "istio-system"
    profile: Literal["minimal", "default", "demo", "empty", "remote", "preview"] = "minimal"
    # How long destroy waits for the operator to remove the control plane (its finalizer).
    delete_timeout_seconds: Annotated[int, Field(ge=30, le=3600)] = 600


class Tracing(_Strict):
    enabled: StrictBool = True
    # No "none": 1.7.3 has no such tracer, and `enabled: false` already writes the off switch
    # each release understands.
    tracer: Literal["datadog", "zipkin", "lightstep", "stackdriver"] = "datadog"
    # A percentage, as pilot reads it: 100.0 samples every request (FACTS.md (b)).
    # Above zero: Istio reads 0 as "unset" and falls back to 1 %; turn tracing off with enabled.
    sampling_percent: Annotated[float, Field(gt=0.0, le=100.0)] = 1.0
    datadog_address: NonEmptyStr | None = None  # None: the chart's default, $(HOST_IP):8126

    @model_validator(mode="after")
    def _address_needs_datadog(self) -> Tracing:
        if self.datadog_address is not None and self.tracer != "datadog":
            raise PydanticCustomError(
                "tracing_address",
                "datadog_address is set but tracer is {tracer}; set tracer: datadog or remove it",
                {"path": "tracing.datadog_address", "tracer": repr(self.tracer)},
            )
        return self


class Pilot(_Strict):
    resources: Resources = Resources()


class Proxy(_Strict):
    hold_application_until_proxy_starts: StrictBool = True
    # Sidecar lifecycle commands (exec form, never run through a shell by Kubernetes itself).
    # Defaults are the blog's: postStart waits for the proxy, preStop waits until only envoy
    # still listens. None removes that hook.
    post_start_command: list[StrictStr] | None = ["pilot-agent", "wait"]
    pre_stop_command: list[StrictStr] | None = [
        "/bin/sh",
        "-c",
        "while [ $(netstat -plunt | grep tcp | grep -v envoy | wc -l | xargs) -ne 0 ]; "
        "do sleep 1; done",
    ]

    @model_validator(mode="after")
    def _hold_keeps_pilot_agent_wait(self) -> Proxy:
        # Any sidecar lifecycle replaces the injector's own `pilot-agent wait` postStart hook
        # (Istio 1.7 through 1.23), so holding the application needs that hook written here.
        lifecycle = self.post_start_command is not None or self.pre_stop_command is not None
        waits = (self.post_start_command or [])[:2] == ["pilot-agent", "wait"]
        if self.hold_application_until_proxy_starts and lifecycle and not waits:
            raise PydanticCustomError(
                "hold_needs_wait",
                "{value} must start with pilot-agent wait while "
                "hold_application_until_proxy_starts is true: a sidecar lifecycle replaces "
                "Istio's own postStart hook, so the application would no longer wait for the proxy",
                {"path": "proxy.post_start_command", "value": repr(self.post_start_command)},
            )
        return self


# --- kubectl for the provisioners --------------------------------------------------------------
# The kubectl release downloaded where the machine running Terraform has none (Terraform Cloud's
# remote runners), with its SHA-256 per platform as published at
# https://dl.k8s.io/release/v1.35.2/bin/<os>/<arch>/kubectl.sha256 and pinned by several public
# projects. A v1.35 kubectl serves API servers 1.34 to 1.36 (the one-minor skew rule).
KubectlPlatform = Literal["linux-amd64", "linux-arm64", "darwin-amd64", "darwin-arm64"]
KUBECTL_VERSION = "v1.35.2"
KUBECTL_SHA256: dict[KubectlPlatform, str] = {
    "linux-amd64": "924eb50779153f20cb668117d141440b95df2f325a64452d78dff9469145e277",
    "linux-arm64": "cd859449f54ad2cb05b491c490c13bb836cdd0886ae013c0aed3dd67ff747467",
    "darwin-amd64": "163955964d4ed9e66656eab45c0114f5c1110d1b430ace432b20ddc430023df5",
    "darwin-arm64": "b0b59cdd7ba20ca20b85214943100e578dd50ddd85242fcddf277a87c2249706",
}
_KUBECTL_VERSION = re.compile(r"^v\d+\.\d+\.\d+$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Path segments are appended to it, so a host, and no query, fragment or whitespace. curl gets
# it as one argv entry, never through a shell.
_DOWNLOAD_URL = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")


def _without_trailing_slash(value: str) -> str:
    # `https://mirror/kubectl/` and `https://mirror/kubectl` are the same mirror.
    return value.rstrip("/")


Sha256Digest = Annotated[
    StrictStr, _check(_SHA256, "a SHA-256 digest (64 lower-case hex digits)", 64)
]
KubectlVersion = Annotated[
    StrictStr, _check(_KUBECTL_VERSION, "a kubectl release version such as 'v1.35.2'", 32)
]
DownloadUrl = Annotated[
    LiteralStr,
    AfterValidator(_without_trailing_slash),
    _check(_DOWNLOAD_URL, "an http:// or https:// URL without spaces, '?' or '#'", 2048),
]


class KubectlSettings(_Strict):
    """Which kubectl the provisioners run (constructs/kubectl_provision.sh).

    `auto`: kubectl from PATH when there is one, else the pinned download; `always`: the pinned
    download even when PATH has one (the same kubectl on every machine); `never`: PATH only.
    The download is `<download_url>/<version>/bin/<os>/<arch>/kubectl`, run only when its SHA-256
    is the one pinned here for that `<os>-<arch>`.
    """

    provision: Literal["auto", "always", "never"] = "auto"
    version: KubectlVersion = KUBECTL_VERSION
    # None: the pins of the default version. A mapping replaces them as a whole.
    sha256: Annotated[dict[KubectlPlatform, Sha256Digest], Field(min_length=1)] | None = None
    download_url: DownloadUrl = "https://dl.k8s.io/release"

    @model_validator(mode="after")
    def _custom_version_is_pinned(self) -> KubectlSettings:
        if self.sha256 is None and self.version != KUBECTL_VERSION:
            raise PydanticCustomError(
                "kubectl_pins",
                "kubectl.version {version} has no default digests: add kubectl.sha256 with the "
                "SHA-256 of each platform that runs Terraform ({platforms}), as published in "
                "<download_url>/{version}/bin/<os>/<arch>/kubectl.sha256",
                {
                    "path": "kubectl.sha256",
                    "version": self.version,
                    "platforms": ", ".join(KUBECTL_SHA256),
                },
            )
        return self

    @property
    def pins(self) -> dict[KubectlPlatform, str]:
        """The digest to expect per platform; a platform not listed cannot download."""
        return dict(KUBECTL_SHA256 if self.sha256 is None else self.sha256)


class WorkspaceFile(_Strict):
    """The schema of config/<workspace>.yaml."""

    cluster: Cluster
    istio_version: IstioVersion
    backend: Backend = Backend()
    operator: Operator = Operator()
    control_plane: ControlPlane = ControlPlane()
    tracing: Tracing = Tracing()
    pilot: Pilot = Pilot()
    proxy: Proxy = Proxy()
    kubectl: KubectlSettings = KubectlSettings()
    injection_namespaces: Annotated[list[DnsLabel], AfterValidator(_no_repeats)] = []
    # Extra labels for namespaces in injection_namespaces. The stack owns those namespaces, so
    # labels added by hand would be removed by the next apply: they belong here.
    namespace_labels: dict[StrictStr, dict[LabelKey, LabelValue]] = {}

    @model_validator(mode="after")
    def _control_plane_is_watched(self) -> WorkspaceFile:
        if self.control_plane.namespace not in self.operator.watched_namespaces:
            raise PydanticCustomError(
                "unwatched_namespace",
                "{value} is not in operator.watched_namespaces {watched}: the operator would "
                "never see the IstioOperator",
                {
                    "path": "control_plane.namespace",
                    "value": repr(self.control_plane.namespace),
                    "watched": repr(self.operator.watched_namespaces),
                },
            )
        return self

    @model_validator(mode="after")
    def _injection_namespaces_are_not_istio_s(self) -> WorkspaceFile:
        istio = {self.operator.namespace, *self.operator.watched_namespaces}
        clash = [name for name in self.injection_namespaces if name in istio]
        if clash:
            raise PydanticCustomError(
                "namespace_clash",
                "{clash} already created by the operator install (operator.namespace or "
                "operator.watched_namespaces); Istio's own namespaces are not injected",
                {"path": "injection_namespaces", "clash": repr(clash)},
            )
        return self

    @model_validator(mode="after")
    def _labels_are_for_injection_namespaces(self) -> WorkspaceFile:
        for namespace, labels in self.namespace_labels.items():
            path = f"namespace_labels.{namespace}"
            if namespace not in self.injection_namespaces:
                raise PydanticCustomError(
                    "namespace_labels",
                    "{namespace} is not in injection_namespaces {names}; only namespaces this "
                    "stack creates can be labelled here",
                    {
                        "path": path,
                        "namespace": repr(namespace),
                        "names": repr(self.injection_namespaces),
                    },
                )
            reserved = sorted(set(labels) & set(RESERVED_NAMESPACE_LABELS))
            if reserved:
                raise PydanticCustomError(
                    "namespace_labels",
                    "{reserved} is set by the stack itself (sidecar injection); remove it",
                    {"path": path, "reserved": repr(reserved)},
                )
        return self


@dataclass(frozen=True)
class WorkspaceConfig:
    """A validated workspace: its name (the stack name), its source file and its settings."""

    name: str
    source: str  # project-relative path, for messages
    spec: WorkspaceFile

    @property
    def operator_tag(self) -> str:
        return self.spec.operator.tag or self.spec.istio_version


# --- Loading -----------------------------------------------------------------------------------
_FRIENDLY = {
    "extra_forbidden": "unknown key",
    "missing": "is required",
}


def _format_error(source: str, err: Mapping[str, Any], model: type[BaseModel]) -> str:
    loc = [str(p) for p in err["loc"] if not str(p).startswith("function-")]
    if loc[-1:] == ["[key]"]:  # a bad mapping key: name the mapping, the message names the key
        loc = loc[:-2]
    # Checks that span sections report the field they are about, not the top level.
    path = (err.get("ctx") or {}).get("path") or ".".join(loc) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        return f"{source}: {path}: unknown key (allowed: {', '.join(allowed)})"
    if kind == "missing":
        return f"{source}: {path}: is required"
    if kind in ("k8s_value",):
        return f"{source}: {path}: {err['input']!r} {err['msg']}"
    if kind in (
        "cluster_target",
        "unwatched_namespace",
        "tracing_address",
        "namespace_clash",
        "repeated",
        "hold_needs_wait",
        "namespace_labels",
        "kubectl_pins",
    ):
        return f"{source}: {path}: {err['msg']}"
    return f"{source}: {path}: {err['input']!r}: {err['msg']}"


def _allowed_keys(model: type[BaseModel], loc: list[str]) -> list[str]:
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = _model_of(field.annotation)
    return sorted(getattr(current, "model_fields", {}))


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _apply_env_overrides(data: Any, workspace: str, environ: Mapping[str, str]) -> Any:
    cluster = data.get("cluster") if isinstance(data, dict) else None
    if isinstance(cluster, dict) and cluster.get("credentials", "kubeconfig") == "kubeconfig":
        kubeconfig_env, context_env = override_env(workspace)
        if environ.get(kubeconfig_env):
            cluster["kubeconfig"] = environ[kubeconfig_env]
        if environ.get(context_env):
            cluster["context"] = environ[context_env]
    return data


def load_file(path: Path, root: Path, environ: Mapping[str, str] | None = None) -> WorkspaceConfig:
    """Load one workspace file; raises ConfigError listing every problem in it."""
    source = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", exc)
        raise ConfigError([f"{source}: {where}not valid YAML: {problem}"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: the file must be a mapping of settings, got {data!r}"])
    environ = os.environ if environ is None else environ
    data = _apply_env_overrides(data, path.stem, environ)
    try:
        spec = WorkspaceFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            [_format_error(source, e, WorkspaceFile) for e in exc.errors(include_url=False)]
        ) from None
    leaking = [name for name in PROVIDER_OVERRIDE_ENV if environ.get(name)]
    if spec.cluster.credentials == "kubeconfig" and leaking:
        raise ConfigError(
            [
                f"{source}: cluster: {', '.join(leaking)} set in the environment would make the "
                f"kubernetes provider override {spec.cluster.kubeconfig} (context "
                f"{spec.cluster.context}) while kubectl follows the kubeconfig; unset them, or "
                "use credentials: environment"
            ]
        )
    return WorkspaceConfig(name=path.stem, source=source, spec=spec)


def load_all(
    config_dir: Path, root: Path, environ: Mapping[str, str] | None = None
) -> list[WorkspaceConfig]:
    """Load every config/<workspace>.yaml, sorted by name; one ConfigError for all problems."""
    files = sorted(config_dir.glob("*.yaml"))
    environ = os.environ if environ is None else environ
    problems: list[str] = [
        f"{name} is set, but overrides now name their workspace: use {scoped}"
        for name, scoped in zip(UNSCOPED_OVERRIDE_ENV, override_env("<workspace>"), strict=True)
        if environ.get(name)
    ]
    if not files:
        problems.append(f"{config_dir.relative_to(root).as_posix()}: no <workspace>.yaml files")
    configs: list[WorkspaceConfig] = []
    for path in files:
        if not _DNS_LABEL.fullmatch(path.stem):
            problems.append(
                f"{path.relative_to(root).as_posix()}: {path.stem!r} is not a usable workspace "
                "name (lower case letters, digits and '-')"
            )
            continue
        try:
            configs.append(load_file(path, root, environ))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return configs
