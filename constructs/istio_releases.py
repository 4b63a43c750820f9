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
