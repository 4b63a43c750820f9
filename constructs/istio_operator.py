"""`IstioOperatorInstall`: what the Istio Operator chart installs, plus the namespaces it needs.

The objects follow `helm template manifests/charts/istio-operator` of the chosen release field
by field (names, labels, rules in order, env in order); what differs between releases comes from
`constructs.istio_releases`. Two things are added on purpose: the namespaces (the operator's own,
which charts after 1.11 no longer render, and every watched one, which no chart ever rendered)
and `automountServiceAccountToken: true` on the pod.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from cdktf import ITerraformDependable, TerraformResource
from cdktf_cdktf_provider_kubernetes.cluster_role_binding_v1 import (
    ClusterRoleBindingV1,
    ClusterRoleBindingV1Metadata,
    ClusterRoleBindingV1RoleRef,
    ClusterRoleBindingV1Subject,
)
from cdktf_cdktf_provider_kubernetes.cluster_role_v1 import (
    ClusterRoleV1,
    ClusterRoleV1Metadata,
    ClusterRoleV1Rule,
)
from cdktf_cdktf_provider_kubernetes.deployment_v1 import (
    DeploymentV1,
    DeploymentV1Metadata,
    DeploymentV1Spec,
    DeploymentV1SpecSelector,
    DeploymentV1SpecTemplate,
    DeploymentV1SpecTemplateMetadata,
    DeploymentV1SpecTemplateSpec,
    DeploymentV1SpecTemplateSpecContainer,
    DeploymentV1SpecTemplateSpecContainerEnv,
    DeploymentV1SpecTemplateSpecContainerEnvValueFrom,
    DeploymentV1SpecTemplateSpecContainerEnvValueFromFieldRef,
    DeploymentV1SpecTemplateSpecContainerResources,
    DeploymentV1SpecTemplateSpecContainerSecurityContext,
    DeploymentV1SpecTemplateSpecContainerSecurityContextCapabilities,
)
from cdktf_cdktf_provider_kubernetes.service_account_v1 import (
    ServiceAccountV1,
    ServiceAccountV1Metadata,
)
from cdktf_cdktf_provider_kubernetes.service_v1 import (
    ServiceV1,
    ServiceV1Metadata,
    ServiceV1Spec,
    ServiceV1SpecPort,
)

from constructs import Construct
from constructs.istio_releases import IstioRelease
from constructs.namespaces import stack_namespace

# Every chart object is named `istio-operator` (no revision suffix: the charts' `revision` is "")
# and the pods are selected by this one label.
NAME = "istio-operator"
POD_LABELS = {"name": NAME}
# controller-runtime's metrics port in the 1.7 operator; the Service keeps it in every release.
METRICS_PORT = 8383
# Chart defaults we do not expose: `waitForResourcesTimeout` and `revision`.
WAIT_FOR_RESOURCES_TIMEOUT = "300s"
REVISION = ""


@dataclass(frozen=True, kw_only=True)
class IstioOperatorInstallProps:
    release: IstioRelease
    # The image is `<hub>/operator:<tag>`, as in the chart.
    hub: str
    tag: str | None = None  # None: the release's version
    namespace: str
    # The operator reconciles IstioOperator resources in these namespaces only.
    watched_namespaces: Sequence[str]
    # Container resources, e.g. {"cpu": "64m", "memory": "256Mi"}; empty: not set.
    resource_requests: Mapping[str, str]
    resource_limits: Mapping[str, str]
    # Created after these (the operator CRD), and so destroyed before them.
    depends_on: Sequence[ITerraformDependable] = ()
    # Namespaces that exist already: labelled only, never created or deleted.
    existing_namespaces: Collection[str] = ()


class IstioOperatorInstall(Construct):
    """The operator's namespace, RBAC, metrics Service and Deployment, and its watched namespaces.

    An IstioOperator resource must be applied after everything in `dependables`, and removed
    before them: the operator has to be running, with its permissions, to act on it.
    """

    def __init__(self, scope: Construct, id: str, props: IstioOperatorInstallProps) -> None:
        super().__init__(scope, id)
        release = props.release
        namespace = props.namespace
        watched = tuple(dict.fromkeys(props.watched_namespaces))  # listed twice: watched once
        # Only the objects that depend on nothing else here need the outside dependency.
        after = list(props.depends_on) or None

        existing = set(props.existing_namespaces)
        # None: an existing namespace the stack has no labels for, so nothing to write or wait on.
        self.namespace = stack_namespace(
            self,
            namespace,
            dict(release.operator_namespace_labels),
            existing=namespace in existing,
            depends_on=after,
        )
        # A watched namespace may be the operator's own; it is then the same object.
        self.watched_namespaces: dict[str, TerraformResource | None] = {
            name: self.namespace
            if name == namespace
            else stack_namespace(
                self,
                name,
                dict(release.watched_namespace_labels) or None,
                existing=name in existing,
                depends_on=after,
            )
            for name in watched
        }
        in_namespace = [self.namespace] if self.namespace else after

        self.service_account = ServiceAccountV1(
            self,
            "service_account",
            metadata=ServiceAccountV1Metadata(name=NAME, namespace=namespace),
            depends_on=in_namespace,
        )
        self.cluster_role = ClusterRoleV1(
            self,
            "cluster_role",
            metadata=ClusterRoleV1Metadata(name=NAME),
            rule=[
                ClusterRoleV1Rule(
                    api_groups=list(rule.api_groups),
                    resources=list(rule.resources),
                    verbs=list(rule.verbs),
                )
                for rule in release.cluster_role_rules
            ],
            depends_on=after,
        )
        self.cluster_role_binding = ClusterRoleBindingV1(
            self,
            "cluster_role_binding",
            metadata=ClusterRoleBindingV1Metadata(name=NAME),
            subject=[
                ClusterRoleBindingV1Subject(kind="ServiceAccount", name=NAME, namespace=namespace)
            ],
            role_ref=ClusterRoleBindingV1RoleRef(
                kind="ClusterRole", name=NAME, api_group="rbac.authorization.k8s.io"
            ),
            depends_on=[self.cluster_role, self.service_account],
        )
        self.service = ServiceV1(
            self,
            "service",
            metadata=ServiceV1Metadata(name=NAME, namespace=namespace, labels=POD_LABELS),
            spec=ServiceV1Spec(
                port=[
                    ServiceV1SpecPort(
                        name="http-metrics",
                        port=METRICS_PORT,
                        target_port=str(METRICS_PORT),
                        protocol=release.service_port_protocol,
                    )
                ],
                selector=POD_LABELS,
            ),
            depends_on=in_namespace,
        )
        self.deployment = DeploymentV1(
            self,
            "deployment",
            metadata=DeploymentV1Metadata(name=NAME, namespace=namespace),
            spec=DeploymentV1Spec(
                replicas="1",
                revision_history_limit=release.revision_history_limit,
                selector=DeploymentV1SpecSelector(match_labels=POD_LABELS),
                template=DeploymentV1SpecTemplate(
                    metadata=DeploymentV1SpecTemplateMetadata(
                        labels=POD_LABELS, annotations=dict(release.pod_annotations) or None
                    ),
                    spec=DeploymentV1SpecTemplateSpec(
                        service_account_name=NAME,
                        # kubernetes provider 1.x defaulted this to false, and without the token
                        # the operator cannot reach the API server; never leave it implicit.
                        automount_service_account_token=True,
                        container=[self._container(props, watched)],
                    ),
                ),
            ),
            # Started with its permissions in place, so its first reconcile does not fail; and
            # `terraform apply` returns only once it runs, which is what dependents wait for.
            wait_for_rollout=True,
            depends_on=[self.service_account, self.cluster_role_binding],
        )
        # Plain Terraform addresses (`kubernetes_deployment_v1.istio_operator`) instead of
        # construct-path hashes, so a plan reads like the chart. Renaming one replaces it.
        for resource in (
            self.service_account,
            self.cluster_role,
            self.cluster_role_binding,
            self.service,
            self.deployment,
        ):
            resource.override_logical_id("istio_operator")
        self.dependables: list[ITerraformDependable] = [
            self.deployment,
            self.cluster_role,
            self.cluster_role_binding,
            self.service_account,
            *dict.fromkeys(n for n in self.watched_namespaces.values() if n is not None),
        ]

    @staticmethod
    def _container(
        props: IstioOperatorInstallProps, watched: Sequence[str]
    ) -> DeploymentV1SpecTemplateSpecContainer:
        release = props.release
        namespace = props.namespace
        env = [
            # The operator splits a comma-separated list into several watched namespaces.
            DeploymentV1SpecTemplateSpecContainerEnv(
                name="WATCH_NAMESPACE", value=",".join(watched)
            ),
            DeploymentV1SpecTemplateSpecContainerEnv(
                name="LEADER_ELECTION_NAMESPACE", value=namespace
            ),
            DeploymentV1SpecTemplateSpecContainerEnv(
                name="POD_NAME",
                value_from=DeploymentV1SpecTemplateSpecContainerEnvValueFrom(
                    field_ref=DeploymentV1SpecTemplateSpecContainerEnvValueFromFieldRef(
                        field_path="metadata.name"
                    )
                ),
            ),
            # The charts fill OPERATOR_NAME with the namespace, not a name; kept as they do.
            DeploymentV1SpecTemplateSpecContainerEnv(name="OPERATOR_NAME", value=namespace),
            DeploymentV1SpecTemplateSpecContainerEnv(
                name="WAIT_FOR_RESOURCES_TIMEOUT", value=WAIT_FOR_RESOURCES_TIMEOUT
            ),
            DeploymentV1SpecTemplateSpecContainerEnv(name="REVISION", value=REVISION),
        ]
        return DeploymentV1SpecTemplateSpecContainer(
            name=NAME,
            image=f"{props.hub}/operator:{props.tag or release.version}",
            command=list(release.command),
            image_pull_policy=release.image_pull_policy,
            security_context=DeploymentV1SpecTemplateSpecContainerSecurityContext(
                allow_privilege_escalation=False,
                capabilities=DeploymentV1SpecTemplateSpecContainerSecurityContextCapabilities(
                    drop=["ALL"]
                ),
                privileged=False,
                read_only_root_filesystem=True,
                run_as_group=_optional_str(release.run_as_group),
                run_as_user=_optional_str(release.run_as_user),
                run_as_non_root=True,
            ),
            resources=DeploymentV1SpecTemplateSpecContainerResources(
                requests=dict(props.resource_requests) or None,
                limits=dict(props.resource_limits) or None,
            ),
            env=env,
        )


def _optional_str(value: int | None) -> str | None:
    return None if value is None else str(value)
