"""What the Istio Operator chart installs, per supported Istio release, as data.

One frozen `IstioRelease` per version holds everything that differs between the releases' charts
(`manifests/charts/istio-operator/` at the release tag): the ClusterRole rules in chart order, the
operator Deployment's version-specific fields and the labels of the namespaces the stack creates.
One `OperatorApi` per version names its manifests/ files and what its operator accepts in an
IstioOperator. Constructs read these fields and never branch on a version string.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

# The charts' literal '*': every resource, or every verb.
_ALL = ("*",)


@dataclass(frozen=True, kw_only=True)
class ClusterRoleRule:
    """One `rules` entry of the operator ClusterRole (no rule uses resourceNames)."""

    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...] = _ALL


@dataclass(frozen=True, kw_only=True)
class IstioRelease:
    """The operator chart of one Istio release, as far as it differs between releases."""

    version: str
    cluster_role_rules: tuple[ClusterRoleRule, ...]
    # The container's `command`; the charts never set `args`.
    command: tuple[str, ...]
    # None: the chart omits the key (the API server then applies its own default).
    revision_history_limit: int | None
    pod_annotations: Mapping[str, str]
    image_pull_policy: str | None
    run_as_user: int | None
    run_as_group: int | None
    service_port_protocol: str | None
    # Labels of the operator namespace and of each watched namespace, both created by the stack.
    operator_namespace_labels: Mapping[str, str]
    watched_namespace_labels: Mapping[str, str]


_ISTIO_API_GROUPS_1_7 = (
    "authentication.istio.io",
    "config.istio.io",
    "install.istio.io",
    "networking.istio.io",
    "security.istio.io",
)

# Rules that both releases' charts carry unchanged, so each release below reads as its chart's
# rule list in order, and what changed between them stands out.
_WEBHOOKS = ClusterRoleRule(
    api_groups=("admissionregistration.k8s.io",),
    resources=("mutatingwebhookconfigurations", "validatingwebhookconfigurations"),
)
_CRDS = ClusterRoleRule(
    api_groups=("apiextensions.k8s.io",),
    resources=("customresourcedefinitions.apiextensions.k8s.io", "customresourcedefinitions"),
)
_AUTOSCALERS = ClusterRoleRule(api_groups=("autoscaling",), resources=("horizontalpodautoscalers",))
_SERVICE_MONITORS = ClusterRoleRule(
    api_groups=("monitoring.coreos.com",),
    resources=("servicemonitors",),
    verbs=("get", "create", "update"),
)
_DISRUPTION_BUDGETS = ClusterRoleRule(api_groups=("policy",), resources=("poddisruptionbudgets",))
_RBAC = ClusterRoleRule(
    api_groups=("rbac.authorization.k8s.io",),
    resources=("clusterrolebindings", "clusterroles", "roles", "rolebindings"),
)

# The 1.7-era chart rendered the operator namespace with these labels. Later charts stopped
# rendering it (helm's --create-namespace makes it unlabelled), but we keep both labels for every
# release: `istio-injection: disabled` keeps the operator's own pod out of the mesh it installs
# (and out of a webhook served by the istiod it is still creating), and unchanged labels make an
# upgrade of a 1.7.3 workspace leave the namespace alone instead of relabelling it.
_OPERATOR_NAMESPACE_LABELS = {"istio-operator-managed": "Reconcile", "istio-injection": "disabled"}

ISTIO_1_7_3 = IstioRelease(
    version="1.7.3",
    cluster_role_rules=(
        *(ClusterRoleRule(api_groups=(group,), resources=_ALL) for group in _ISTIO_API_GROUPS_1_7),
        _WEBHOOKS,
        _CRDS,
        ClusterRoleRule(
            api_groups=("apps", "extensions"),
            resources=(
                "daemonsets",
                "deployments",
                "deployments/finalizers",
                "ingresses",
                "replicasets",
                "statefulsets",
            ),
        ),
        _AUTOSCALERS,
        _SERVICE_MONITORS,
        _DISRUPTION_BUDGETS,
        _RBAC,
        ClusterRoleRule(
            api_groups=("",),
            resources=(
                "configmaps",
                "endpoints",
                "events",
                "namespaces",
                "pods",
                "persistentvolumeclaims",
                "secrets",
                "services",
                "serviceaccounts",
            ),
        ),
    ),
    command=("operator", "server"),
    revision_history_limit=None,
    pod_annotations={},
    image_pull_policy="IfNotPresent",
    run_as_user=1337,
    run_as_group=1337,
    service_port_protocol=None,
    operator_namespace_labels=_OPERATOR_NAMESPACE_LABELS,
    # What Istio 1.7's own static operator manifests (operator/deploy/namespace.yaml) and
    # `istioctl operator init` gave istio-system. With 1.7's default injection webhook (it selects
    # only `istio-injection: enabled` namespaces) the label changes nothing but states the intent.
    watched_namespace_labels={"istio-injection": "disabled"},
)

ISTIO_1_23_6 = IstioRelease(
    version="1.23.6",
    cluster_role_rules=(
        *(
            ClusterRoleRule(api_groups=(group,), resources=_ALL)
            for group in (*_ISTIO_API_GROUPS_1_7, "telemetry.istio.io", "extensions.istio.io")
        ),
        _WEBHOOKS,
        _CRDS,
        ClusterRoleRule(
            api_groups=("apps", "extensions"),
            resources=("daemonsets", "deployments", "deployments/finalizers", "replicasets"),
        ),
        _AUTOSCALERS,
        _SERVICE_MONITORS,
        _DISRUPTION_BUDGETS,
        _RBAC,
        # Leader election holds a Lease in the operator namespace.
        ClusterRoleRule(
            api_groups=("coordination.k8s.io",),
            resources=("leases",),
            verbs=("get", "create", "update"),
        ),
        ClusterRoleRule(
            api_groups=("",),
            resources=(
                "configmaps",
                "endpoints",
                "events",
                "namespaces",
                "pods",
                "pods/proxy",
                "pods/portforward",
                "persistentvolumeclaims",
                "secrets",
                "services",
                "serviceaccounts",
                "resourcequotas",
            ),
        ),
    ),
    # Metrics moved to 127.0.0.1:15014 (1.17); the chart's Service still targets 8383, where
    # nothing listens any more. We reproduce the chart rather than repair it.
    command=("operator", "server", "--monitoring-host=127.0.0.1", "--monitoring-port=15014"),
    revision_history_limit=10,
    pod_annotations={"prometheus.io/port": "15014", "prometheus.io/scrape": "true"},
    image_pull_policy=None,
    # Dropped in 1.20 for OpenShift; runAsNonRoot is met by the image's numeric USER 1337.
    run_as_user=None,
    run_as_group=None,
    service_port_protocol="TCP",
    operator_namespace_labels=_OPERATOR_NAMESPACE_LABELS,
    # The 1.23 operator creates a missing istio-system with no labels, and an
    # `istio-injection: disabled` label there would keep injected gateways out of it (the
    # object-selector webhook only matches namespaces without the label).
    watched_namespace_labels={},
)

RELEASES: Mapping[str, IstioRelease] = {r.version: r for r in (ISTIO_1_7_3, ISTIO_1_23_6)}


# --- What each release's operator accepts in an IstioOperator, and the files for it -------------
@dataclass(frozen=True)
class OperatorApi:
    """What one Istio release's operator accepts in an IstioOperator, as far as we write it.

    `accepted_paths` is deliberately small: the leaf paths our template may produce, each checked
    against that release's operator.proto / values_types.proto / MeshConfig (see shared FACTS (b)
    and (g)). A template edit that needs another path adds it here, after checking the source.
    List items are written `[]`.
    """

    template: str
    crd: str
    tracers: frozenset[str]
    accepted_paths: frozenset[str]


_COMMON_PATHS = frozenset(
    {
        "apiVersion",
        "kind",
        "metadata.name",
        "metadata.namespace",
        "spec.profile",
        "spec.meshConfig.enableTracing",
        "spec.components.pilot.k8s.resources.requests.cpu",
        "spec.components.pilot.k8s.resources.requests.memory",
        "spec.components.pilot.k8s.resources.limits.cpu",
        "spec.components.pilot.k8s.resources.limits.memory",
        "spec.values.global.proxy.tracer",
        "spec.values.global.proxy.lifecycle.postStart.exec.command[]",
        "spec.values.global.proxy.lifecycle.preStop.exec.command[]",
    }
)

OPERATOR_APIS: dict[str, OperatorApi] = {
    "1.7.3": OperatorApi(
        template="1.7.3/istio-operator.yaml.j2",
        crd="1.7.3/crd-operator.yaml",
        tracers=frozenset({"zipkin", "lightstep", "datadog", "stackdriver"}),
        accepted_paths=_COMMON_PATHS
        | {
            "spec.values.pilot.traceSampling",
            "spec.values.global.tracer.datadog.address",
            "spec.values.global.proxy.holdApplicationUntilProxyStarts",
        },
    ),
    "1.23.6": OperatorApi(
        template="1.23.6/istio-operator.yaml.j2",
        crd="1.23.6/crd-operator.yaml",
        tracers=frozenset(
            {"zipkin", "lightstep", "datadog", "stackdriver", "openCensusAgent", "none"}
        ),
        # 1.23.6 still accepts values.pilot.traceSampling and
        # values.global.proxy.holdApplicationUntilProxyStarts, but the meshConfig forms outrank
        # them; leaving the old paths out stops a template from setting both and disagreeing.
        accepted_paths=_COMMON_PATHS
        | {
            "spec.meshConfig.defaultConfig.holdApplicationUntilProxyStarts",
            "spec.meshConfig.defaultConfig.tracing.sampling",
            "spec.meshConfig.defaultConfig.tracing.datadog.address",
        },
    ),
}


# --- Engines: which program installs each supported Istio version -------------------------------
class Engine(StrEnum):
    """How a workspace's Istio is installed, chosen by its `istio_version`."""

    # The in-cluster Istio Operator and an IstioOperator resource (removed in Istio 1.24).
    ISTIO_OPERATOR = "istio-operator"
    # The Sail Operator (istio-ecosystem/sail-operator) and a cluster-scoped `Istio` resource.
    SAIL_OPERATOR = "sail-operator"


@dataclass(frozen=True, kw_only=True)
class SupportedVersion:
    engine: Engine
    # The Kubernetes minors Istio supports for this release (istio.io supported releases).
    kubernetes: tuple[str, str]


VERSIONS: Mapping[str, SupportedVersion] = {
    "1.7.3": SupportedVersion(engine=Engine.ISTIO_OPERATOR, kubernetes=("1.16", "1.18")),
    "1.23.6": SupportedVersion(engine=Engine.ISTIO_OPERATOR, kubernetes=("1.27", "1.30")),
    "1.29.6": SupportedVersion(engine=Engine.SAIL_OPERATOR, kubernetes=("1.31", "1.35")),
    "1.30.3": SupportedVersion(engine=Engine.SAIL_OPERATOR, kubernetes=("1.32", "1.36")),
}


# --- What the Sail Operator engine needs per Istio version --------------------------------------
@dataclass(frozen=True, kw_only=True)
class SailApi:
    """One Istio version installed through the Sail Operator, and the files for it.

    `crd_files` are applied together, server-side, in this order; the CRD each file defines is
    `<plural>.<group>`, from the file name `<group>_<plural>.yaml` (tests check it against each
    file). `schemas` names, per kind the template renders, the CRD file whose openAPIV3Schema
    every rendered resource is validated against at synth. `config_paths` maps a rendered field
    back to the config key it came from, so a schema failure names the line a user wrote.
    """

    sail_release: str  # key of SAIL_OPERATOR_RELEASES: the operator that installs this version
    spec_version: str  # the Istio resource's spec.version, pinned (the CRD default drifts)
    default_operator_image: str  # the chart's `image`
    crd_dir: str
    crd_files: tuple[str, ...]
    template: str
    schemas: Mapping[str, str]
    config_paths: tuple[tuple[str, str], ...]

    def crd_names(self) -> tuple[str, ...]:
        names = []
        for file in self.crd_files:
            group, plural = file.removesuffix(".yaml").split("_", 1)
            names.append(f"{plural}.{group}")
        return tuple(names)


# chart/crds of the Sail Operator 1.30.3 tag: the 5 sailoperator.io CRDs and Istio's own 15,
# which the operator does not install itself.
_SAIL_1_30_3_CRDS = (
    "sailoperator.io_istios.yaml",
    "sailoperator.io_istiorevisions.yaml",
    "sailoperator.io_istiorevisiontags.yaml",
    "sailoperator.io_istiocnis.yaml",
    "sailoperator.io_ztunnels.yaml",
    "extensions.istio.io_trafficextensions.yaml",
    "extensions.istio.io_wasmplugins.yaml",
    "networking.istio.io_destinationrules.yaml",
    "networking.istio.io_envoyfilters.yaml",
    "networking.istio.io_gateways.yaml",
    "networking.istio.io_proxyconfigs.yaml",
    "networking.istio.io_serviceentries.yaml",
    "networking.istio.io_sidecars.yaml",
    "networking.istio.io_virtualservices.yaml",
    "networking.istio.io_workloadentries.yaml",
    "networking.istio.io_workloadgroups.yaml",
    "security.istio.io_authorizationpolicies.yaml",
    "security.istio.io_peerauthentications.yaml",
    "security.istio.io_requestauthentications.yaml",
    "telemetry.istio.io_telemetries.yaml",
)

# Rendered field -> config key; the longest matching prefix wins and the rest (a list index)
# is kept. Fields not listed come from the template itself.
_SAIL_CONFIG_PATHS = (
    ("metadata.name", "control_plane.name"),
    ("spec.version", "istio_version"),
    ("spec.namespace", "control_plane.namespace"),
    ("spec.profile", "control_plane.profile"),
    ("spec.targetRef.name", "control_plane.name"),
    ("spec.values.pilot.resources", "pilot.resources"),
    ("spec.values.pilot.env.ENABLE_NATIVE_SIDECARS", "proxy.native_sidecars"),
    ("spec.values.global.proxy.tracer", "tracing.tracer"),
    ("spec.values.global.proxy.lifecycle.postStart.exec.command", "proxy.post_start_command"),
    ("spec.values.global.proxy.lifecycle.preStop.exec.command", "proxy.pre_stop_command"),
    ("spec.values.meshConfig.enableTracing", "tracing.enabled"),
    (
        "spec.values.meshConfig.defaultConfig.holdApplicationUntilProxyStarts",
        "proxy.hold_application_until_proxy_starts",
    ),
    ("spec.values.meshConfig.defaultConfig.tracing.sampling", "tracing.sampling_percent"),
    ("spec.values.meshConfig.defaultConfig.tracing.datadog.address", "tracing.datadog_address"),
)


def _sail_1_30_3(istio: str) -> SailApi:
    return SailApi(
        sail_release="1.30.3",
        spec_version=f"v{istio}",
        default_operator_image="quay.io/sail-dev/sail-operator:1.30.3",
        crd_dir="sail-1.30.3/crds",
        crd_files=_SAIL_1_30_3_CRDS,
        template="sail-1.30.3/istio.yaml.j2",
        schemas={
            "Istio": "sail-1.30.3/crds/sailoperator.io_istios.yaml",
            "IstioRevisionTag": "sail-1.30.3/crds/sailoperator.io_istiorevisiontags.yaml",
        },
        config_paths=_SAIL_CONFIG_PATHS,
    )


# Sail 1.30.3 installs Istio 1.28.0-1.30.3; we offer the newest patch of each supported minor.
SAIL_APIS: Mapping[str, SailApi] = {v: _sail_1_30_3(v) for v in ("1.29.6", "1.30.3")}
