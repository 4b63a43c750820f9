"""Typed workspace configuration: one `config/<workspace>.yaml` becomes one `WorkspaceConfig`.

Everything is parsed and validated here, once, at the edge; stacks and constructs trust the
types. `load_all` reports every problem in every file in one `ConfigError`, each line as
`config/production.yaml: pilot.resources.limits.cpu: '100x' is not a Kubernetes quantity`.
"""

from __future__ import annotations

import inspect
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StrictBool,
    StrictStr,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

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


def _overrides_provider(name: str, environ: Mapping[str, str]) -> bool:
    """Whether the variable, as set, changes what the provider does. The provider parses
    KUBE_INSECURE as a Go bool and acts only on true, so a false one changes nothing."""
    value = environ.get(name, "")
    if name == "KUBE_INSECURE":
        return value not in ("", "0", "f", "F", "FALSE", "false", "False")
    return value != ""


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
    itself and our kubectl calls turn into a kubeconfig built in memory, never written.
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
    # postStart is the blog's: wait for the proxy. preStop keeps the blog's idea, holding the
    # sidecar until the application has closed its listening sockets, but counts TCP listeners
    # by port, leaving out the sidecar's own (Istio's default ports 15000-15090). The blog's
    # `grep -v envoy` also counted pilot-agent's listeners (15020, and 15004 on localhost), so it
    # never reached 0 and every pod waited out its whole grace period. Without netstat in the
    # image the count is 0 and the hook returns at once. None removes that hook.
    post_start_command: list[StrictStr] | None = ["pilot-agent", "wait"]
    pre_stop_command: list[StrictStr] | None = [
        "/bin/sh",
        "-c",
        "while [ $(netstat -lnt | grep '^tcp' "
        "| grep -Evc ':(15000|15001|15004|15006|15008|15020|15021|15053|15090) ') -ne 0 ]; "
        "do sleep 1; done",
    ]


class SailOperator(_Strict):
    """The Sail Operator install (Sail versions); defaults are the chart's."""

    image: ImageRef | None = None  # None: the chart's, quay.io/sail-dev/sail-operator:<release>
    namespace: DnsLabel = "sail-operator"
    resources: Resources | None = None  # None: the chart's (10m/64Mi requests, 500m/1024Mi limits)


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
    sail_operator: SailOperator = SailOperator()
    kubectl: KubectlSettings = KubectlSettings()
    injection_namespaces: Annotated[list[DnsLabel], AfterValidator(_no_repeats)] = []
    # Extra labels for namespaces in injection_namespaces. The stack owns those namespaces, so
    # labels added by hand would be removed by the next apply: they belong here.
    namespace_labels: dict[StrictStr, dict[LabelKey, LabelValue]] = {}
    # Namespaces among the above that exist before the stack and must outlive it: the stack only
    # sets its labels on them (constructs/namespaces.py), and never creates or deletes them.
    existing_namespaces: Annotated[list[DnsLabel], AfterValidator(_no_repeats)] = []

    @model_validator(mode="wrap")
    @classmethod
    def _cross_section_checks(
        cls, data: Any, handler: ModelWrapValidatorHandler[WorkspaceFile]
    ) -> WorkspaceFile:
        # pydantic runs model validators only once every field is valid, and stops at the first
        # that raises. These checks run on whatever sections are valid, all of them, and their
        # problems join the field errors, so one run lists every problem of the file.
        try:
            spec = handler(data)
        except ValidationError as exc:
            errors = [_reraisable(e) for e in exc.errors()]
            failed = {e["loc"][0] for e in exc.errors() if e["loc"]}
            if isinstance(data, dict):
                errors += _cross_section_problems(_valid_sections(cls, data, failed))
            raise ValidationError.from_exception_data(cls.__name__, errors) from None
        problems = _cross_section_problems(dict(spec))
        if problems:
            raise ValidationError.from_exception_data(cls.__name__, problems)
        return spec


def _settings_fit_the_engine(
    istio_version: str,
    operator: Operator,
    sail_operator: SailOperator,
    control_plane: ControlPlane,
    proxy: Proxy,
) -> None:
    """Settings that belong to the other engine, or that the Sail engine gives another meaning."""
    sail = VERSIONS[istio_version].engine is Engine.SAIL_OPERATOR
    sail_versions = ", ".join(v for v, s in VERSIONS.items() if s.engine is Engine.SAIL_OPERATOR)
    native = sail and proxy.native_sidecars is not False
    path, message = "", ""
    if sail and "watched_namespaces" in operator.model_fields_set:
        path = "operator.watched_namespaces"
        message = (
            f"has no meaning for istio_version {istio_version}: the Sail Operator watches every "
            "namespace; remove it"
        )
    elif sail and operator.model_fields_set:
        path = "operator"
        message = (
            f"configures the in-cluster Istio Operator of 1.23.6 and older; istio_version "
            f"{istio_version} is installed by the Sail Operator: use sail_operator (image, "
            "namespace, resources) instead"
        )
    elif sail and control_plane.profile == "minimal":
        path = "control_plane.profile"
        message = (
            f"'minimal' is not a profile on istio_version {istio_version}: the Sail Operator "
            "installs only istiod, so profile 'default' gives what 'minimal' gave; write "
            "profile: default, or leave profile out"
        )
    elif sail and sail_operator.namespace == control_plane.namespace:
        path = "sail_operator.namespace"
        message = (
            f"{sail_operator.namespace!r} is also control_plane.namespace; the stack creates "
            "both namespaces, so they must differ"
        )
    elif not sail and sail_operator.model_fields_set:
        path = "sail_operator"
        message = (
            f"applies only to Sail versions ({sail_versions}); istio_version {istio_version} is "
            "installed by the in-cluster Istio Operator: use operator"
        )
    elif not sail and "native_sidecars" in proxy.model_fields_set:
        path = "proxy.native_sidecars"
        message = (
            f"applies only to Sail versions ({sail_versions}); istio_version {istio_version} "
            "injects classic sidecars, sequenced by the hold and lifecycle settings"
        )
    elif native:
        for key in ("post_start_command", "pre_stop_command"):
            if key in proxy.model_fields_set and getattr(proxy, key) is not None:
                path = f"proxy.{key}"
                message = (
                    "sets a sidecar lifecycle while native sidecars are on (the default on "
                    f"{istio_version}): the proxy then starts before and stops after the "
                    "application by itself, and a lifecycle would replace Istio's own drain "
                    "hook; remove it, or set proxy.native_sidecars: false for the blog's hooks"
                )
                break
        else:
            if not proxy.hold_application_until_proxy_starts:
                path = "proxy.hold_application_until_proxy_starts"
                message = (
                    "false has no effect while native sidecars are on (the default on "
                    f"{istio_version}): the proxy always starts before the application; remove "
                    "it, or set proxy.native_sidecars: false"
                )
    if path:
        # The message as the template (it has no braces), so no ctx value gets cut.
        raise PydanticCustomError("engine_setting", message, {"path": path})


def _hold_keeps_pilot_agent_wait(istio_version: str, proxy: Proxy) -> None:
    # Any sidecar lifecycle replaces the injector's own `pilot-agent wait` postStart hook
    # (classic sidecars, Istio 1.7 onwards), so holding the application needs that hook written
    # here. Native sidecars write no lifecycle (_settings_fit_the_engine).
    if (
        VERSIONS[istio_version].engine is Engine.SAIL_OPERATOR
        and proxy.native_sidecars is not False
    ):
        return
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


def _istio_namespaces(
    istio_version: str, operator: Operator, sail_operator: SailOperator, control_plane: ControlPlane
) -> list[str]:
    """The namespaces the engine's install creates."""
    if VERSIONS[istio_version].engine is Engine.SAIL_OPERATOR:
        return [sail_operator.namespace, control_plane.namespace]
    return [operator.namespace, *operator.watched_namespaces]


def _control_plane_is_watched(
    istio_version: str, operator: Operator, control_plane: ControlPlane
) -> None:
    if VERSIONS[istio_version].engine is not Engine.ISTIO_OPERATOR:
        return  # the Sail Operator watches the whole cluster
    if control_plane.namespace not in operator.watched_namespaces:
        raise PydanticCustomError(
            "unwatched_namespace",
            "{value} is not in operator.watched_namespaces {watched}: the operator would "
            "never see the IstioOperator",
            {
                "path": "control_plane.namespace",
                "value": repr(control_plane.namespace),
                "watched": repr(operator.watched_namespaces),
            },
        )


def _injection_namespaces_are_not_istio_s(
    istio_version: str,
    operator: Operator,
    sail_operator: SailOperator,
    control_plane: ControlPlane,
    injection_namespaces: list[str],
) -> None:
    istio = _istio_namespaces(istio_version, operator, sail_operator, control_plane)
    clash = [name for name in injection_namespaces if name in istio]
    if clash:
        sail = VERSIONS[istio_version].engine is Engine.SAIL_OPERATOR
        keys = (
            "the Sail Operator install (sail_operator.namespace or control_plane.namespace)"
            if sail
            else "the operator install (operator.namespace or operator.watched_namespaces)"
        )
        raise PydanticCustomError(
            "namespace_clash",
            f"{{clash}} already created by {keys}; Istio's own namespaces are not injected",
            {"path": "injection_namespaces", "clash": repr(clash)},
        )


def _labels_are_for_injection_namespaces(
    namespace_labels: dict[str, dict[str, str]], injection_namespaces: list[str]
) -> None:
    for namespace, labels in namespace_labels.items():
        path = f"namespace_labels.{namespace}"
        if namespace not in injection_namespaces:
            raise PydanticCustomError(
                "namespace_labels",
                "{namespace} is not in injection_namespaces {names}; only namespaces this "
                "stack creates can be labelled here",
                {"path": path, "namespace": repr(namespace), "names": repr(injection_namespaces)},
            )
        reserved = sorted(set(labels) & set(RESERVED_NAMESPACE_LABELS))
        if reserved:
            raise PydanticCustomError(
                "namespace_labels",
                "{reserved} is set by the stack itself (sidecar injection); remove it",
                {"path": path, "reserved": repr(reserved)},
            )


def _existing_namespaces_are_the_stacks(
    istio_version: str,
    operator: Operator,
    control_plane: ControlPlane,
    injection_namespaces: list[str],
    existing_namespaces: list[str],
) -> None:
    if VERSIONS[istio_version].engine is Engine.SAIL_OPERATOR:
        # The Sail Operator's own namespace is always the stack's (sail_operator.namespace).
        ours = [control_plane.namespace, *injection_namespaces]
        keys = "control_plane.namespace, injection_namespaces"
    else:
        ours = [operator.namespace, *operator.watched_namespaces, *injection_namespaces]
        keys = "operator.namespace, operator.watched_namespaces, injection_namespaces"
    unknown = [name for name in existing_namespaces if name not in ours]
    if unknown:
        raise PydanticCustomError(
            "namespace_clash",
            "{unknown} is not a namespace this stack would create ({keys}: {ours})",
            {
                "path": "existing_namespaces",
                "unknown": repr(unknown),
                "keys": keys,
                "ours": repr(ours),
            },
        )


# Checks across sections; each runs when every section it names (its parameters) is valid.
_CROSS_SECTION_CHECKS: tuple[Callable[..., None], ...] = (
    _settings_fit_the_engine,
    _hold_keeps_pilot_agent_wait,
    _control_plane_is_watched,
    _injection_namespaces_are_not_istio_s,
    _labels_are_for_injection_namespaces,
    _existing_namespaces_are_the_stacks,
)


def _cross_section_problems(sections: Mapping[str, Any]) -> list[InitErrorDetails]:
    problems: list[InitErrorDetails] = []
    for check in _CROSS_SECTION_CHECKS:
        needs = inspect.signature(check).parameters
        if all(name in sections for name in needs):
            try:
                check(**{name: sections[name] for name in needs})
            except PydanticCustomError as problem:
                problems.append({"type": problem, "loc": (), "input": None})
    return problems


def _valid_sections(
    model: type[WorkspaceFile], data: dict[str, Any], failed: set[Any]
) -> dict[str, Any]:
    """The sections of `data` without errors, validated again one by one (defaults filled in)."""
    valid: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if name in failed:
            continue
        if name not in data:
            valid[name] = field.get_default(call_default_factory=True)
            continue
        annotated: Any = (
            Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
        )
        adapter: TypeAdapter[Any] = TypeAdapter(
            annotated,
            config=None if _model_of(field.annotation) else ConfigDict(strict=True),
        )
        valid[name] = adapter.validate_python(data[name])
    return valid


def _reraisable(error: ErrorDetails) -> InitErrorDetails:
    """A reported error as one that can be raised again, keeping its type, message and ctx."""
    return {
        "type": PydanticCustomError(error["type"], error["msg"], error.get("ctx")),
        "loc": error["loc"],
        "input": error["input"],
    }


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
# A workspace file is a page of settings (about 1 KiB). These bounds keep every careless or
# hostile input (a mistaken symlink to a log file, random bytes, `[[[[...`, an alias bomb)
# a one-line error that takes milliseconds, never a hang, a traceback or a memory blow-up.
MAX_FILE_BYTES = 64 * 1024
MAX_DEPTH = 32  # nesting levels, counted through aliases; the schema itself needs 4
MAX_VALUES = 2_000  # scalars, lists and mappings, counted as often as aliases repeat them
WORKSPACE_SUFFIXES = (".yaml", ".yml")
_CUT = 80  # characters of a value quoted in a message: a quoted SHA-256 digest (66) fits whole
_DEEP = f"nested more than {MAX_DEPTH} levels deep"
_MANY = f"more than {MAX_VALUES} values, aliases expanded; a workspace file has a few dozen"


def _cut(text: str, limit: int = _CUT) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _quote(value: Any) -> str:
    """A value as a message quotes it: its repr, cut to a readable length."""
    return _cut(repr(value))


def _shown(text: str) -> str:
    """A name (a key, a path part) as a message shows it: plain if printable, else its repr."""
    return _cut(text if text.isprintable() else repr(text))


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


class _Unusable(Exception):
    """Why a file cannot be used, one reason per line, without the file name load_file adds."""

    def __init__(self, *reasons: str) -> None:
        self.reasons = list(reasons)
        super().__init__("\n".join(reasons))


def _format_error(source: str, err: Mapping[str, Any], model: type[BaseModel]) -> str:
    loc = [_shown(str(p)) for p in err["loc"] if not str(p).startswith("function-")]
    if loc[-1:] == ["[key]"]:  # a bad mapping key: name the mapping, the message names the key
        loc = loc[:-2]
    # Checks that span sections report the field they are about, not the top level.
    ctx = err.get("ctx") or {}
    if ctx.get("path"):
        path = ".".join(_shown(part) for part in str(ctx["path"]).split("."))
    else:
        path = ".".join(loc) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        return f"{source}: {path}: unknown key (allowed: {', '.join(allowed)})"
    if kind == "missing":
        return f"{source}: {path}: is required"
    if kind in ("k8s_value",):
        return f"{source}: {path}: {_quote(err['input'])} {err['msg']}"
    if kind in (
        "cluster_target",
        "unwatched_namespace",
        "tracing_address",
        "namespace_clash",
        "repeated",
        "hold_needs_wait",
        "namespace_labels",
        "engine_setting",
        "kubectl_pins",
    ):
        return f"{source}: {path}: {_custom_message(err['msg'], ctx)}"
    return f"{source}: {path}: {_quote(err['input'])}: {err['msg']}"


def _custom_message(message: str, ctx: Mapping[str, Any]) -> str:
    # Our checks put the values they quote in ctx as reprs; cut those where the message has them.
    for value in ctx.values():
        if isinstance(value, str) and len(value) > _CUT:
            message = message.replace(value, _cut(value))
    return message


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


_NOT_REGULAR = (
    (stat.S_ISDIR, "is a directory, not a workspace file"),
    (stat.S_ISFIFO, "is a named pipe, not a regular file"),
    (stat.S_ISCHR, "is a device, not a regular file"),
    (stat.S_ISBLK, "is a device, not a regular file"),
    (stat.S_ISSOCK, "is a socket, not a regular file"),
)


def _read_text(path: Path) -> str:
    """The file's text: a regular file (symlinks followed), at most MAX_FILE_BYTES, UTF-8."""
    try:
        # O_NONBLOCK: opening a named pipe must not wait for a writer; fstat refuses it next.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise _Unusable(f"cannot be read: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        for is_kind, reason in _NOT_REGULAR:
            if is_kind(mode):
                raise _Unusable(reason)
        # Bounded however large the file is, or grows while it is read.
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_FILE_BYTES and (chunk := os.read(fd, MAX_FILE_BYTES + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise _Unusable(f"cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if size > MAX_FILE_BYTES:
        raise _Unusable(
            f"is larger than {MAX_FILE_BYTES // 1024} KiB; a workspace file is a page of "
            "settings (is this the file you meant?)"
        )
    data = b"".join(chunks)
    nul = data.find(b"\0")
    if nul >= 0:
        raise _Unusable(f"contains a NUL byte at byte offset {nul}: a binary file, not YAML text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Unusable(
            f"is not UTF-8 text: byte {data[exc.start]:#04x} at byte offset {exc.start} "
            "(save it as UTF-8)"
        ) from None


class _WorkspaceLoader(yaml.SafeLoader):
    """PyYAML's safe loader, bounded in depth and refusing to turn a bad scalar into a crash.

    PyYAML composes nested nodes recursively, so `[[[[...` would end in RecursionError; and
    composing is the slow part, so it stops as soon as there are too many values.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0
        self._values = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._values += 1
        if self._depth >= MAX_DEPTH or self._values > MAX_VALUES:
            line = self.peek_event().start_mark.line + 1  # type: ignore[no-untyped-call]
            raise _Unusable(f"line {line}: {_DEEP if self._depth >= MAX_DEPTH else _MANY}")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        # The scanner rechecks every open bracket at each step: `[[[[...` is quadratic.
        if self.flow_level >= MAX_DEPTH:
            raise _Unusable(f"line {self.get_mark().line + 1}: {_DEEP}")
        super().fetch_flow_collection_start(token_class)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except Exception as exc:
            # An explicit tag or an odd implicit one (`!!int x`, `0x_`, `2024-13-01`, a
            # 5000-digit number) makes PyYAML's scalar constructors raise plain Python errors.
            if not isinstance(node, yaml.ScalarNode):
                raise
            kind = node.tag.rsplit(":", 1)[-1]
            why = f" ({exc})" if isinstance(exc, ValueError) else ""  # others say nothing useful
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {_quote(node.value)} as {kind}{why}", node.start_mark
            ) from None


def _check_tree(loader: _WorkspaceLoader, root: yaml.Node) -> None:
    """Refuse what YAML would silently accept: duplicate keys (the earlier value would be lost),
    and aliases that expand into a tree too big or too deep to validate (a "billion laughs"),
    or into itself. Anchors and aliases are otherwise fine (`limits: *requests`). A node
    reached through several aliases is measured once, so this takes linear time."""
    duplicates: list[tuple[int, int, str]] = []  # where the key is first written, the message
    measured: dict[int, tuple[int, int]] = {}  # id(node): (values, levels below) once expanded
    open_nodes: set[int] = set()

    def measure(node: yaml.Node, path: list[str], depth: int) -> tuple[int, int]:
        where = f"line {node.start_mark.line + 1}: {'.'.join(path) or '(top level)'}"
        if id(node) in open_nodes:
            raise _Unusable(f"{where}: an alias refers to a value that contains it")
        if id(node) not in measured:
            if depth >= MAX_DEPTH:
                raise _Unusable(f"{where}: {_DEEP}")
            open_nodes.add(id(node))
            measured[id(node)] = expand(node, path, depth)
            open_nodes.discard(id(node))
        values, below = measured[id(node)]
        if depth + below >= MAX_DEPTH:  # reached again through an alias, deeper this time
            raise _Unusable(f"{where}: {_DEEP}, aliases expanded")
        if values > MAX_VALUES:
            raise _Unusable(f"{where}: {_MANY}")
        return values, below

    def expand(node: yaml.Node, path: list[str], depth: int) -> tuple[int, int]:
        children: list[tuple[yaml.Node, list[str]]] = []
        if isinstance(node, yaml.SequenceNode):
            children = [(item, [*path, str(i)]) for i, item in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            marks: dict[Any, list[yaml.Mark]] = {}
            for key, value in node.value:
                ident = _key_identity(loader, key)
                name = "(complex key)" if ident is None else _shown(str(ident))
                if ident is not None:
                    marks.setdefault(ident, []).append(key.start_mark)
                children += [(key, path), (value, [*path, name])]
            duplicates.extend(
                (
                    at[0].line,
                    at[0].column,
                    f"{'.'.join([*path, _shown(str(ident))])}: key written {_times(len(at))} "
                    f"({_places(at)})",
                )
                for ident, at in marks.items()
                if len(at) > 1
            )
        values, below = 1, 0
        for child, child_path in children:
            child_values, child_below = measure(child, child_path, depth + 1)
            values += child_values
            below = max(below, child_below + 1)
            if values > MAX_VALUES:
                break  # measure() reports it, with this node's line
        return values, below

    measure(root, [], 0)
    if duplicates:
        raise _Unusable(*(message for _, _, message in sorted(duplicates)))


def _key_identity(loader: _WorkspaceLoader, key: yaml.Node) -> Any:
    """What a mapping key becomes in Python (`1` and `true` collide there too); None for
    keys that are not scalars, which construction refuses anyway."""
    if key.tag == "tag:yaml.org,2002:merge":
        return "<<"  # `<<: *base` merges; explicit keys beside it override, as YAML intends
    if isinstance(key, yaml.ScalarNode):
        return loader.construct_object(key)
    return None


def _times(count: int) -> str:
    return "twice" if count == 2 else f"{count} times"


def _places(marks: list[yaml.Mark]) -> str:
    lines = [m.line + 1 for m in marks]
    if len(set(lines)) == len(lines):
        return f"lines {_and(lines)}"
    return f"line:column {_and([f'{m.line + 1}:{m.column + 1}' for m in marks])}"


def _and(items: list[Any]) -> str:
    return f"{', '.join(map(str, items[:-1]))} and {items[-1]}"


def _parse(text: str) -> Any:
    """YAML text to Python data, through the bounded loader and the tree checks."""
    try:
        loader = _WorkspaceLoader(text)
    except yaml.reader.ReaderError as exc:  # a control character, found before any parsing
        line = text.count("\n", 0, exc.position) + 1
        raise _Unusable(
            f"line {line}: not valid YAML: control character U+{exc.character:04X} is not allowed"
        ) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_tree(loader, node)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = " ".join(str(exc.problem or exc.context).split())
        raise _Unusable(f"{where}not valid YAML: {_cut(problem, 120)}") from None
    finally:
        loader.dispose()


def load_file(path: Path, root: Path, environ: Mapping[str, str] | None = None) -> WorkspaceConfig:
    """Load one workspace file; raises ConfigError listing every problem in it.

    The one way a workspace file is read: bytes (bounded), text, YAML, then the model.
    """
    source = _relative(path, root)
    try:
        data = _parse(_read_text(path))
        if data is None:
            raise _Unusable("is empty; a workspace needs at least cluster and istio_version")
        if not isinstance(data, dict):
            raise _Unusable(f"the file must be a mapping of settings, got {_quote(data)}")
    except _Unusable as exc:
        raise ConfigError([f"{source}: {reason}" for reason in exc.reasons]) from None
    environ = os.environ if environ is None else environ
    data = _apply_env_overrides(data, path.stem, environ)
    try:
        spec = WorkspaceFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            [_format_error(source, e, WorkspaceFile) for e in exc.errors(include_url=False)]
        ) from None
    leaking = [name for name in PROVIDER_OVERRIDE_ENV if _overrides_provider(name, environ)]
    if spec.cluster.credentials == "kubeconfig" and leaking:
        raise ConfigError(
            [
                f"{source}: cluster: {', '.join(leaking)} set in the environment would make the "
                f"kubernetes provider override {_shown(spec.cluster.kubeconfig or '')} (context "
                f"{_shown(spec.cluster.context or '')}) while kubectl follows the kubeconfig; "
                "unset them, or use credentials: environment"
            ]
        )
    return WorkspaceConfig(name=path.stem, source=source, spec=spec)


def workspace_paths(config_dir: Path, root: Path) -> tuple[dict[str, list[Path]], list[str]]:
    """Every workspace file in config_dir (<workspace>.yaml or .yml) by workspace name, sorted,
    and what made the directory itself unusable (unreadable, or no workspace in it).

    A name with two files stays listed with both: loading it reports them (see load_named)."""
    by_name: dict[str, list[Path]] = {}
    try:
        for path in sorted(config_dir.iterdir()):
            # Dot files are editors' lock and backup files (emacs' .#staging.yaml).
            if path.suffix.lower() in WORKSPACE_SUFFIXES and not path.name.startswith("."):
                by_name.setdefault(path.stem, []).append(path)
    except OSError as exc:
        return {}, [f"{_relative(config_dir, root)}: cannot be read: {exc.strerror}"]
    if not by_name:
        return {}, [f"{_relative(config_dir, root)}: no <workspace>.yaml or .yml files"]
    return dict(sorted(by_name.items())), []


def _load_workspace(
    name: str, paths: list[Path], root: Path, environ: Mapping[str, str]
) -> WorkspaceConfig:
    """Load the one file of a discovered workspace; raises ConfigError."""
    sources = [_relative(p, root) for p in paths]
    if len(paths) > 1:
        raise ConfigError(
            [
                f"{sources[0]}: the same workspace {_quote(name)} as "
                f"{' and '.join(sources[1:])}; keep one of them"
            ]
        )
    if not _DNS_LABEL.fullmatch(name):
        raise ConfigError(
            [
                f"{sources[0]}: {_quote(name)} is not a usable workspace name (lower case "
                "letters, digits and '-')"
            ]
        )
    return load_file(paths[0], root, environ)


def _unscoped_overrides(environ: Mapping[str, str]) -> list[str]:
    return [
        f"{name} is set, but overrides now name their workspace: use {scoped}"
        for name, scoped in zip(UNSCOPED_OVERRIDE_ENV, override_env("<workspace>"), strict=True)
        if environ.get(name)
    ]


def load_all(
    config_dir: Path, root: Path, environ: Mapping[str, str] | None = None
) -> list[WorkspaceConfig]:
    """Load every config/<workspace>.yaml (or .yml), sorted by name; one ConfigError for all
    problems in all files."""
    return load_named(config_dir, root, (), environ)


def load_named(
    config_dir: Path,
    root: Path,
    names: Sequence[str],
    environ: Mapping[str, str] | None = None,
) -> list[WorkspaceConfig]:
    """Load the named workspaces (every one if `names` is empty), found as load_all finds
    them, in the order named; one ConfigError for all problems. Only the named files are read:
    another workspace's problems are not theirs."""
    environ = os.environ if environ is None else environ
    problems = _unscoped_overrides(environ)
    by_name, unusable = workspace_paths(config_dir, root)
    problems.extend(unusable)
    wanted = list(dict.fromkeys(names)) if names else list(by_name)
    configs: list[WorkspaceConfig] = []
    for name in wanted if not unusable else []:
        if name not in by_name:
            problems.append(
                f"{_relative(config_dir, root)}: no workspace {_quote(name)} "
                f"(workspaces: {', '.join(by_name)})"
            )
            continue
        try:
            configs.append(_load_workspace(name, by_name[name], root, environ))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    return configs
