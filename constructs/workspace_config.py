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

from constructs.istio_releases import (
    SAIL_APIS,
    SAIL_OPERATOR_RELEASES,
    VERSIONS,
    Engine,
    SailOperatorRelease,
)

# Every key of VERSIONS (tests check they agree): the engine follows from the version.
IstioVersion = Literal["1.7.3", "1.23.6", "1.29.6", "1.30.3"]


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
# A whole reference: repository, optional tag, optional digest.
_IMAGE = re.compile(
    _IMAGE_HUB.pattern[:-1] + r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$"
)


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
ImageRef = Annotated[
    StrictStr, _check(_IMAGE, "an image reference (repository[:tag][@digest])", 512)
]
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
    """The custom resource this workspace applies: an IstioOperator, or Sail's `Istio`.

    `name` and `profile` default per engine (WorkspaceConfig.control_plane_name and .profile):
    `default-istiocontrolplane` and `minimal` for the Istio Operator; `default` and `default`
    on Sail, which has no `minimal` and labels injection only for the revision named `default`.
    """

    name: DnsSubdomain | None = None
    namespace: DnsLabel = "istio-system"
    profile: Literal["minimal", "default", "demo", "empty", "remote", "preview"] | None = None
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
    # Sail versions only; None: on. Off writes ENABLE_NATIVE_SIDECARS "false" for the mesh.
    native_sidecars: StrictBool | None = None
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


class SailOperator(_Strict):
    """The Sail Operator install (Sail versions); defaults are the chart's."""

    image: ImageRef | None = None  # None: the chart's, quay.io/sail-dev/sail-operator:<release>
    namespace: DnsLabel = "sail-operator"
    resources: Resources | None = None  # None: the chart's (10m/64Mi requests, 500m/1024Mi limits)


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
    sail_operator: SailOperator = SailOperator()
    injection_namespaces: Annotated[list[DnsLabel], AfterValidator(_no_repeats)] = []
    # Extra labels for namespaces in injection_namespaces. The stack owns those namespaces, so
    # labels added by hand would be removed by the next apply: they belong here.
    namespace_labels: dict[StrictStr, dict[LabelKey, LabelValue]] = {}

    @model_validator(mode="after")
    def _settings_fit_the_engine(self) -> WorkspaceFile:
        version = self.istio_version
        sail = VERSIONS[version].engine is Engine.SAIL_OPERATOR
        sail_versions = ", ".join(v for v in VERSIONS if VERSIONS[v].engine is Engine.SAIL_OPERATOR)
        path, message = "", ""
        proxy_set = self.proxy.model_fields_set
        native = sail and self.proxy.native_sidecars is not False
        if sail and "watched_namespaces" in self.operator.model_fields_set:
            path = "operator.watched_namespaces"
            message = (
                f"has no meaning for istio_version {version}: the Sail Operator watches every "
                "namespace; remove it"
            )
        elif sail and "operator" in self.model_fields_set:
            path = "operator"
            message = (
                f"configures the in-cluster Istio Operator of 1.23.6 and older; istio_version "
                f"{version} is installed by the Sail Operator: use sail_operator (image, "
                "namespace, resources) instead"
            )
        elif sail and self.control_plane.profile == "minimal":
            path = "control_plane.profile"
            message = (
                f"'minimal' is not a profile on istio_version {version}: the Sail Operator "
                "installs only istiod, so profile 'default' gives what 'minimal' gave; write "
                "profile: default, or leave profile out"
            )
        elif sail and self.sail_operator.namespace == self.control_plane.namespace:
            path = "sail_operator.namespace"
            message = (
                f"{self.sail_operator.namespace!r} is also control_plane.namespace; the stack "
                "creates both namespaces, so they must differ"
            )
        elif not sail and "sail_operator" in self.model_fields_set:
            path = "sail_operator"
            message = (
                f"applies only to Sail versions ({sail_versions}); istio_version {version} is "
                "installed by the in-cluster Istio Operator: use operator"
            )
        elif not sail and "native_sidecars" in proxy_set:
            path = "proxy.native_sidecars"
            message = (
                f"applies only to Sail versions ({sail_versions}); istio_version {version} "
                "injects classic sidecars, sequenced by the hold and lifecycle settings"
            )
        elif native:
            for key in ("post_start_command", "pre_stop_command"):
                if key in proxy_set and getattr(self.proxy, key) is not None:
                    path = f"proxy.{key}"
                    message = (
                        "sets a sidecar lifecycle while native sidecars are on (the default on "
                        f"{version}): the proxy then starts before and stops after the "
                        "application by itself, and a lifecycle would replace Istio's own drain "
                        "hook; remove it, or set proxy.native_sidecars: false for the blog's hooks"
                    )
                    break
            else:
                if not self.proxy.hold_application_until_proxy_starts:
                    path = "proxy.hold_application_until_proxy_starts"
                    message = (
                        "false has no effect while native sidecars are on (the default on "
                        f"{version}): the proxy always starts before the application; remove "
                        "it, or set proxy.native_sidecars: false"
                    )
        if path:
            raise PydanticCustomError(
                "engine_setting", "{message}", {"path": path, "message": message}
            )
        return self

    @model_validator(mode="after")
    def _hold_keeps_pilot_agent_wait(self) -> WorkspaceFile:
        # Any sidecar lifecycle replaces the injector's own `pilot-agent wait` postStart hook
        # (classic sidecars, Istio 1.7 onwards), so holding the application needs that hook
        # written here. Native sidecars write no lifecycle (checked above).
        proxy = self.proxy
        if (
            VERSIONS[self.istio_version].engine is Engine.SAIL_OPERATOR
            and proxy.native_sidecars is not False
        ):
            return self
        lifecycle = proxy.post_start_command is not None or proxy.pre_stop_command is not None
        waits = (proxy.post_start_command or [])[:2] == ["pilot-agent", "wait"]
        if proxy.hold_application_until_proxy_starts and lifecycle and not waits:
            raise PydanticCustomError(
                "hold_needs_wait",
                "{value} must start with pilot-agent wait while "
                "hold_application_until_proxy_starts is true: a sidecar lifecycle replaces "
                "Istio's own postStart hook, so the application would no longer wait for the proxy",
                {"path": "proxy.post_start_command", "value": repr(proxy.post_start_command)},
            )
        return self

    @model_validator(mode="after")
    def _control_plane_is_watched(self) -> WorkspaceFile:
        if VERSIONS[self.istio_version].engine is not Engine.ISTIO_OPERATOR:
            return self  # the Sail Operator watches the whole cluster
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
        if VERSIONS[self.istio_version].engine is Engine.SAIL_OPERATOR:
            istio = {self.sail_operator.namespace, self.control_plane.namespace}
        else:
            istio = {self.operator.namespace, *self.operator.watched_namespaces}
        clash = [name for name in self.injection_namespaces if name in istio]
        if clash:
            raise PydanticCustomError(
                "namespace_clash",
                "{clash} already created by the Istio install (the operator's namespace or the "
                "control plane's); Istio's own namespaces are not injected",
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

    @property
    def engine(self) -> Engine:
        return VERSIONS[self.spec.istio_version].engine

    @property
    def control_plane_name(self) -> str:
        default = "default" if self.engine is Engine.SAIL_OPERATOR else "default-istiocontrolplane"
        return self.spec.control_plane.name or default

    @property
    def profile(self) -> str:
        default = "default" if self.engine is Engine.SAIL_OPERATOR else "minimal"
        return self.spec.control_plane.profile or default

    @property
    def native_sidecars(self) -> bool:
        """On by default on Sail versions (Istio 1.27+); never written for older ones."""
        return self.engine is Engine.SAIL_OPERATOR and self.spec.proxy.native_sidecars is not False

    @property
    def sail_operator_release(self) -> SailOperatorRelease:
        return SAIL_OPERATOR_RELEASES[SAIL_APIS[self.spec.istio_version].sail_release]

    @property
    def sail_operator_image(self) -> str:
        return self.spec.sail_operator.image or self.sail_operator_release.image

    def sail_operator_resources(self) -> tuple[dict[str, str], dict[str, str]]:
        """Requests and limits: the config's, else the chart's."""
        resources = self.spec.sail_operator.resources
        if resources is None:
            release = self.sail_operator_release
            return dict(release.default_resource_requests), dict(release.default_resource_limits)
        return resources.requests.as_dict(), resources.limits.as_dict()


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
        "engine_setting",
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
