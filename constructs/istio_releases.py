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
    crd_dir: str
    crd_files: tuple[str, ...]
    template: str
    schemas: Mapping[str, str]
    config_paths: tuple[tuple[str, str], ...]

    def crd_names(self) -> tuple[str, ...]:
        return tuple(crd_name(file) for file in self.crd_files)


def crd_name(file: str) -> str:
    """`sailoperator.io_istios.yaml` defines `istios.sailoperator.io`."""
    group, plural = file.removesuffix(".yaml").split("_", 1)
    return f"{plural}.{group}"


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


# --- What the Sail Operator chart installs, per Sail Operator release ----------------------------
# Istio 1.24 removed the in-cluster operator; newer Istio versions are installed by the Sail
# Operator (github.com/istio-ecosystem/sail-operator), whose chart is described here the same way
# as above: one frozen `SailOperatorRelease` per chart version holds every value its templates
# render with default values (`chart/templates/` and `chart/values.yaml` at the release tag), so
# `constructs/sail_operator.py` never branches on a version and the next release is a data change.


@dataclass(frozen=True, kw_only=True)
class PolicyRule:
    """One `rules` entry of a Role or ClusterRole, every list as the chart orders it."""

    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    verbs: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ChartRole:
    """A Role or ClusterRole of the chart."""

    name: str
    # None: the template writes no `labels` key (the main ClusterRole has none).
    labels: Mapping[str, str] | None
    rules: tuple[PolicyRule, ...]


@dataclass(frozen=True, kw_only=True)
class ChartRoleBinding:
    """A RoleBinding or ClusterRoleBinding granting `role` to one ServiceAccount."""

    name: str
    labels: Mapping[str, str]
    role: str
    # The chart's main ClusterRoleBinding names its subject after `deployment.name` and the others
    # after `serviceAccountName`; both are `sail-operator`, and kept apart here as in the chart.
    service_account: str


@dataclass(frozen=True, kw_only=True)
class HttpProbe:
    path: str
    port: int
    initial_delay_seconds: int
    period_seconds: int


@dataclass(frozen=True, kw_only=True)
class ServicePort:
    name: str
    port: int
    target_port: int
    protocol: str


@dataclass(frozen=True, kw_only=True)
class SailOperatorRelease:
    """The Sail Operator chart of one release, rendered with its default values."""

    chart_version: str
    # The Istio versions this operator installs, newest first (`pkg/istioversion/versions.yaml`
    # without end-of-life entries and aliases).
    istio_versions: tuple[str, ...]
    # `image` in values.yaml: the operator image when the config names none.
    image: str
    # Labels of the operator namespace, which the chart does not render (see the data below).
    namespace_labels: Mapping[str, str]
    service_account_name: str
    service_account_labels: Mapping[str, str]
    # In template order: role.yaml, auth_proxy_role.yaml, auth_proxy_client_clusterrole.yaml.
    # Keyed by the Terraform resource name, so an address survives a rename in a later chart.
    cluster_roles: Mapping[str, ChartRole]
    cluster_role_bindings: Mapping[str, ChartRoleBinding]
    leader_election_role: ChartRole
    leader_election_role_binding: ChartRoleBinding
    metrics_service_name: str
    metrics_service_ip_family_policy: str
    metrics_service_ports: tuple[ServicePort, ...]
    metrics_service_selector: Mapping[str, str]
    # Labels of the Service and the Deployment (the same in the chart).
    labels: Mapping[str, str]
    deployment_name: str
    replicas: int
    revision_history_limit: int
    # The Deployment's selector (the metrics Service has its own, narrower one).
    selector_labels: Mapping[str, str]
    pod_labels: Mapping[str, str]
    # All of these are written to /etc/sail-operator/config.properties (the downward-API volume
    # below); the operator reads its per-Istio-version image references from there.
    pod_annotations: Mapping[str, str]
    # requiredDuringScheduling node affinity: `matchExpressions` as (key, values), operator In.
    node_affinity: tuple[tuple[str, tuple[str, ...]], ...]
    container_name: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    liveness_probe: HttpProbe
    readiness_probe: HttpProbe
    default_resource_requests: Mapping[str, str]
    default_resource_limits: Mapping[str, str]
    allow_privilege_escalation: bool
    drop_capabilities: tuple[str, ...]
    read_only_root_filesystem: bool
    run_as_non_root: bool
    termination_grace_period_seconds: int
    # The downward-API volume: pod annotations as `key="value"` lines in mount_path/file. The
    # operator exits at start when that file is missing (cmd/main.go), so it is not optional.
    config_volume_name: str
    config_mount_path: str
    config_file: str
    config_file_mode: int


# Every verb the chart grants on the resources it manages, in its (kubebuilder-sorted) order.
_MANAGE = ("create", "delete", "get", "list", "patch", "update", "watch")
_READ = ("get", "list", "watch")
# Leader election and endpointslices list the same verbs in another order; kept as the chart has.
_MANAGE_UNSORTED = ("get", "list", "watch", "create", "update", "patch", "delete")


def _sail_custom_resource_rules(kind_plural: str) -> tuple[PolicyRule, ...]:
    """The chart's three rules for each sailoperator.io kind: itself, finalizers, status."""
    return (
        PolicyRule(api_groups=("sailoperator.io",), resources=(kind_plural,), verbs=_MANAGE),
        PolicyRule(
            api_groups=("sailoperator.io",),
            resources=(f"{kind_plural}/finalizers",),
            verbs=("update",),
        ),
        PolicyRule(
            api_groups=("sailoperator.io",),
            resources=(f"{kind_plural}/status",),
            verbs=("get", "patch", "update"),
        ),
    )


def _istio_image_annotations(versions: tuple[str, ...]) -> dict[str, str]:
    """`deployment.annotations` of values.yaml: four image references per Istio version."""
    images = {"ztunnel": "ztunnel", "istiod": "pilot", "proxy": "proxyv2", "cni": "install-cni"}
    return {
        f"images.v{version.replace('.', '_')}.{component}": (
            f"registry.istio.io/release/{image}:{version}"
        )
        for version in versions
        for component, image in images.items()
    }


def _rbac_labels(name: str, instance: str, component: str) -> dict[str, str]:
    """The `app.kubernetes.io/*` labels the chart's RBAC templates write."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": "helm",
    }


_SAIL_1_30_3_ISTIO_VERSIONS = (
    *(f"1.30.{patch}" for patch in range(3, -1, -1)),
    *(f"1.29.{patch}" for patch in range(6, -1, -1)),
    *(f"1.28.{patch}" for patch in range(10, -1, -1)),
)
# values.yaml `name` (the cluster-scoped names' prefix) and `deployment.name`.
_SAIL_NAME = "sailoperator"
_SAIL_DEPLOYMENT = "sail-operator"
_SAIL_SELECTOR = {
    "app.kubernetes.io/created-by": _SAIL_NAME,
    "app.kubernetes.io/part-of": _SAIL_NAME,
    "control-plane": _SAIL_DEPLOYMENT,
}

SAIL_OPERATOR_1_30_3 = SailOperatorRelease(
    chart_version="1.30.3",
    istio_versions=_SAIL_1_30_3_ISTIO_VERSIONS,
    image="quay.io/sail-dev/sail-operator:1.30.3",
    # As for the Istio Operator's namespace: the operator that installs the mesh must never wait
    # on the mesh's injection webhook, whatever selectors the installed istiod uses.
    namespace_labels={"istio-injection": "disabled"},
    service_account_name="sail-operator",
    service_account_labels=_rbac_labels("serviceaccount", "sail-operator", "rbac"),
    cluster_roles={
        "sail_operator": ChartRole(
            name=f"{_SAIL_NAME}-role",
            labels=None,
            rules=(
                PolicyRule(
                    api_groups=("",),
                    resources=(
                        "configmaps",
                        "endpoints",
                        "events",
                        "namespaces",
                        "nodes",
                        "persistentvolumeclaims",
                        "pods",
                        "replicationcontrollers",
                        "resourcequotas",
                        "secrets",
                        "serviceaccounts",
                        "services",
                    ),
                    verbs=_MANAGE,
                ),
                PolicyRule(
                    api_groups=("admissionregistration.k8s.io",),
                    resources=(
                        "mutatingwebhookconfigurations",
                        "validatingadmissionpolicies",
                        "validatingadmissionpolicybindings",
                        "validatingwebhookconfigurations",
                    ),
                    verbs=_MANAGE,
                ),
                PolicyRule(
                    api_groups=("apiextensions.k8s.io",),
                    resources=("customresourcedefinitions",),
                    verbs=_READ,
                ),
                PolicyRule(
                    api_groups=("apps",), resources=("daemonsets", "deployments"), verbs=_MANAGE
                ),
                PolicyRule(
                    api_groups=("autoscaling",),
                    resources=("horizontalpodautoscalers",),
                    verbs=_MANAGE,
                ),
                PolicyRule(
                    api_groups=("discovery.k8s.io",),
                    resources=("endpointslices",),
                    verbs=_MANAGE_UNSORTED,
                ),
                PolicyRule(
                    api_groups=("k8s.cni.cncf.io",),
                    resources=("network-attachment-definitions",),
                    verbs=_MANAGE,
                ),
                PolicyRule(
                    api_groups=("networking.istio.io",), resources=("envoyfilters",), verbs=_MANAGE
                ),
                PolicyRule(
                    api_groups=("networking.k8s.io",),
                    resources=("networkpolicies",),
                    verbs=_MANAGE,
                ),
                *_sail_custom_resource_rules("istiorevisions"),
                *_sail_custom_resource_rules("istiorevisiontags"),
                *_sail_custom_resource_rules("istiocnis"),
                *_sail_custom_resource_rules("istios"),
                *_sail_custom_resource_rules("remoteistios"),
                PolicyRule(
                    api_groups=("policy",), resources=("poddisruptionbudgets",), verbs=_MANAGE
                ),
                # istiod's charts create RBAC the operator itself does not hold, hence bind and
                # escalate.
                PolicyRule(
                    api_groups=("rbac.authorization.k8s.io",),
                    resources=("clusterrolebindings", "clusterroles", "rolebindings", "roles"),
                    verbs=(*_MANAGE, "bind", "escalate"),
                ),
                PolicyRule(
                    api_groups=("security.openshift.io",),
                    resource_names=("privileged",),
                    resources=("securitycontextconstraints",),
                    verbs=("use",),
                ),
                PolicyRule(
                    api_groups=("config.openshift.io",), resources=("apiservers",), verbs=_READ
                ),
                *_sail_custom_resource_rules("ztunnels"),
            ),
        ),
        "sail_operator_proxy": ChartRole(
            name=f"{_SAIL_NAME}-proxy-role",
            labels=_rbac_labels("clusterrole", f"{_SAIL_NAME}-proxy-role", "kube-rbac-proxy"),
            rules=(
                PolicyRule(
                    api_groups=("authentication.k8s.io",),
                    resources=("tokenreviews",),
                    verbs=("create",),
                ),
                PolicyRule(
                    api_groups=("authorization.k8s.io",),
                    resources=("subjectaccessreviews",),
                    verbs=("create",),
                ),
            ),
        ),
        "sail_operator_metrics_reader": ChartRole(
            name=f"{_SAIL_NAME}-metrics-reader",
            labels={
                "app.kubernetes.io/created-by": _SAIL_NAME,
                **_rbac_labels("clusterrole", f"{_SAIL_NAME}-metrics-reader", "kube-rbac-proxy"),
                "app.kubernetes.io/part-of": _SAIL_NAME,
            },
            rules=(PolicyRule(non_resource_urls=("/metrics",), verbs=("get",)),),
        ),
    },
    cluster_role_bindings={
        "sail_operator": ChartRoleBinding(
            name=f"{_SAIL_NAME}-rolebinding",
            labels=_rbac_labels("clusterrolebinding", f"{_SAIL_NAME}-rolebinding", "rbac"),
            role=f"{_SAIL_NAME}-role",
            service_account=_SAIL_DEPLOYMENT,
        ),
        "sail_operator_proxy": ChartRoleBinding(
            name=f"{_SAIL_NAME}-proxy-rolebinding",
            labels=_rbac_labels(
                "clusterrolebinding", f"{_SAIL_NAME}-proxy-rolebinding", "kube-rbac-proxy"
            ),
            role=f"{_SAIL_NAME}-proxy-role",
            service_account="sail-operator",
        ),
    },
    leader_election_role=ChartRole(
        name="leader-election-role",
        labels=_rbac_labels("role", "leader-election-role", "rbac"),
        rules=(
            PolicyRule(api_groups=("",), resources=("configmaps",), verbs=_MANAGE_UNSORTED),
            PolicyRule(
                api_groups=("coordination.k8s.io",), resources=("leases",), verbs=_MANAGE_UNSORTED
            ),
            PolicyRule(api_groups=("",), resources=("events",), verbs=("create", "patch")),
        ),
    ),
    leader_election_role_binding=ChartRoleBinding(
        name="leader-election-rolebinding",
        labels=_rbac_labels("rolebinding", "leader-election-rolebinding", "rbac"),
        role="leader-election-role",
        service_account="sail-operator",
    ),
    metrics_service_name=f"{_SAIL_DEPLOYMENT}-metrics-service",
    metrics_service_ip_family_policy="PreferDualStack",
    metrics_service_ports=(ServicePort(name="https", port=8443, target_port=8443, protocol="TCP"),),
    metrics_service_selector={"control-plane": _SAIL_DEPLOYMENT},
    labels={
        "app.kubernetes.io/component": "sail-operator",
        "app.kubernetes.io/created-by": _SAIL_NAME,
        "app.kubernetes.io/instance": _SAIL_DEPLOYMENT,
        "app.kubernetes.io/managed-by": "helm",
        "app.kubernetes.io/name": "deployment",
        "app.kubernetes.io/part-of": _SAIL_NAME,
        "control-plane": _SAIL_DEPLOYMENT,
    },
    deployment_name=_SAIL_DEPLOYMENT,
    replicas=1,
    revision_history_limit=10,
    selector_labels=_SAIL_SELECTOR,
    pod_labels=_SAIL_SELECTOR,
    pod_annotations={
        "kubectl.kubernetes.io/default-container": "sail-operator",
        **_istio_image_annotations(_SAIL_1_30_3_ISTIO_VERSIONS),
    },
    node_affinity=(
        ("kubernetes.io/arch", ("amd64", "arm64", "ppc64le", "s390x")),
        ("kubernetes.io/os", ("linux",)),
    ),
    container_name="sail-operator",
    command=("/sail-operator",),
    # The metrics port is the Service's target; `--leader-elect` is on by default in the binary.
    args=(
        "--health-probe-bind-address=:8081",
        "--metrics-bind-address=:8443",
        "--zap-log-level=info",
    ),
    liveness_probe=HttpProbe(
        path="/healthz", port=8081, initial_delay_seconds=15, period_seconds=20
    ),
    readiness_probe=HttpProbe(
        path="/readyz", port=8081, initial_delay_seconds=5, period_seconds=10
    ),
    default_resource_requests={"cpu": "10m", "memory": "64Mi"},
    default_resource_limits={"cpu": "500m", "memory": "1024Mi"},
    allow_privilege_escalation=False,
    drop_capabilities=("ALL",),
    read_only_root_filesystem=True,
    run_as_non_root=True,
    termination_grace_period_seconds=10,
    config_volume_name="operator-config",
    config_mount_path="/etc/sail-operator",
    config_file="config.properties",
    config_file_mode=0o644,
)

# Keyed by Sail Operator chart version (not by Istio version: one operator installs many).
SAIL_OPERATOR_RELEASES: Mapping[str, SailOperatorRelease] = {
    r.chart_version: r for r in (SAIL_OPERATOR_1_30_3,)
}
