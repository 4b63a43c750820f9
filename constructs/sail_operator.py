"""`SailOperatorInstall`: what the Sail Operator chart installs, plus the namespace it needs.

The 10 objects follow `helm template sail-operator chart -n <namespace>` of the chosen Sail
Operator release with default values, field by field (names, labels, rules and args in order);
every value comes from `constructs.istio_releases.SailOperatorRelease`. Only the image and the
container resources follow the config. Two things are added on purpose: the namespace (the chart
renders none; helm would need --create-namespace) and `automountServiceAccountToken: true` on the
pod, which the operator needs to reach the API server and to find its own namespace.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cdktf import ITerraformDependable
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
    DeploymentV1SpecTemplateSpecAffinity,
    DeploymentV1SpecTemplateSpecAffinityNodeAffinity,
    DeploymentV1SpecTemplateSpecAffinityNodeAffinityRequiredDuringSchedulingIgnoredDuringExecution,
    DeploymentV1SpecTemplateSpecAffinityNodeAffinityRequiredDuringSchedulingIgnoredDuringExecutionNodeSelectorTerm,
    DeploymentV1SpecTemplateSpecAffinityNodeAffinityRequiredDuringSchedulingIgnoredDuringExecutionNodeSelectorTermMatchExpressions,
    DeploymentV1SpecTemplateSpecContainer,
    DeploymentV1SpecTemplateSpecContainerLivenessProbe,
    DeploymentV1SpecTemplateSpecContainerLivenessProbeHttpGet,
    DeploymentV1SpecTemplateSpecContainerReadinessProbe,
    DeploymentV1SpecTemplateSpecContainerReadinessProbeHttpGet,
    DeploymentV1SpecTemplateSpecContainerResources,
    DeploymentV1SpecTemplateSpecContainerSecurityContext,
    DeploymentV1SpecTemplateSpecContainerSecurityContextCapabilities,
    DeploymentV1SpecTemplateSpecContainerVolumeMount,
    DeploymentV1SpecTemplateSpecSecurityContext,
    DeploymentV1SpecTemplateSpecVolume,
    DeploymentV1SpecTemplateSpecVolumeDownwardApi,
    DeploymentV1SpecTemplateSpecVolumeDownwardApiItems,
    DeploymentV1SpecTemplateSpecVolumeDownwardApiItemsFieldRef,
)
from cdktf_cdktf_provider_kubernetes.namespace_v1 import NamespaceV1, NamespaceV1Metadata
from cdktf_cdktf_provider_kubernetes.role_binding_v1 import (
    RoleBindingV1,
    RoleBindingV1Metadata,
    RoleBindingV1RoleRef,
    RoleBindingV1Subject,
)
from cdktf_cdktf_provider_kubernetes.role_v1 import RoleV1, RoleV1Metadata, RoleV1Rule
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
from constructs.istio_releases import SailOperatorRelease
from constructs.namespaces import namespace_logical_id

# The Terraform name of the operator's own objects: `kubernetes_deployment_v1.sail_operator`.
# Cluster roles and bindings take theirs from the release data's keys.
LOGICAL_ID = "sail_operator"
RBAC_API_GROUP = "rbac.authorization.k8s.io"
DEFAULT_NAMESPACE = "sail-operator"


@dataclass(frozen=True, kw_only=True)
class SailOperatorInstallProps:
    release: SailOperatorRelease
    # The full image reference; the config's, else `release.image`.
    image: str
    namespace: str = DEFAULT_NAMESPACE
    # Container resources, e.g. {"cpu": "10m", "memory": "64Mi"}; empty: not set. The caller
    # passes the release's defaults when the config gives none, as the chart would.
    resource_requests: Mapping[str, str]
    resource_limits: Mapping[str, str]
    # Created after these (the CRDs), and so destroyed before them.
    depends_on: Sequence[ITerraformDependable] = ()


class SailOperatorInstall(Construct):
    """The operator's namespace, RBAC, metrics Service and Deployment.

    An `Istio` resource must be applied after everything in `dependables`, and removed before
    them: the operator has to be running, with its permissions, to uninstall the istiod it made
    (the IstioRevision's finalizer).
    """

    def __init__(self, scope: Construct, id: str, props: SailOperatorInstallProps) -> None:
        super().__init__(scope, id)
        release = props.release
        namespace = props.namespace
        # Only the objects that depend on nothing else here need the outside dependency.
        after = list(props.depends_on) or None

        self.namespace = NamespaceV1(
            self,
            "namespace",
            metadata=NamespaceV1Metadata(name=namespace, labels=dict(release.namespace_labels)),
            depends_on=after,
        )
        self.service_account = ServiceAccountV1(
            self,
            "service_account",
            metadata=ServiceAccountV1Metadata(
                name=release.service_account_name,
                namespace=namespace,
                labels=dict(release.service_account_labels),
            ),
            depends_on=[self.namespace],
        )
        self.cluster_roles: dict[str, ClusterRoleV1] = {
            key: ClusterRoleV1(
                self,
                f"cluster_role_{key}",
                metadata=ClusterRoleV1Metadata(
                    name=role.name, labels=None if role.labels is None else dict(role.labels)
                ),
                rule=[
                    ClusterRoleV1Rule(
                        api_groups=_optional_list(rule.api_groups),
                        resources=_optional_list(rule.resources),
                        resource_names=_optional_list(rule.resource_names),
                        non_resource_urls=_optional_list(rule.non_resource_urls),
                        verbs=list(rule.verbs),
                    )
                    for rule in role.rules
                ],
                depends_on=after,
            )
            for key, role in release.cluster_roles.items()
        }
        roles_by_name = {
            role.name: self.cluster_roles[key] for key, role in release.cluster_roles.items()
        }
        self.cluster_role_bindings: dict[str, ClusterRoleBindingV1] = {
            key: ClusterRoleBindingV1(
                self,
                f"cluster_role_binding_{key}",
                metadata=ClusterRoleBindingV1Metadata(
                    name=binding.name, labels=dict(binding.labels)
                ),
                role_ref=ClusterRoleBindingV1RoleRef(
                    api_group=RBAC_API_GROUP, kind="ClusterRole", name=binding.role
                ),
                subject=[
                    ClusterRoleBindingV1Subject(
                        kind="ServiceAccount", name=binding.service_account, namespace=namespace
                    )
                ],
                depends_on=[roles_by_name[binding.role], self.service_account],
            )
            for key, binding in release.cluster_role_bindings.items()
        }
        role = release.leader_election_role
        self.leader_election_role = RoleV1(
            self,
            "leader_election_role",
            metadata=RoleV1Metadata(
                name=role.name,
                namespace=namespace,
                labels=None if role.labels is None else dict(role.labels),
            ),
            rule=[
                RoleV1Rule(
                    api_groups=list(rule.api_groups),
                    resources=list(rule.resources),
                    resource_names=_optional_list(rule.resource_names),
                    verbs=list(rule.verbs),
                )
                for rule in role.rules
            ],
            depends_on=[self.namespace],
        )
        binding = release.leader_election_role_binding
        self.leader_election_role_binding = RoleBindingV1(
            self,
            "leader_election_role_binding",
            metadata=RoleBindingV1Metadata(
                name=binding.name, namespace=namespace, labels=dict(binding.labels)
            ),
            role_ref=RoleBindingV1RoleRef(api_group=RBAC_API_GROUP, kind="Role", name=binding.role),
            subject=[
                RoleBindingV1Subject(
                    kind="ServiceAccount", name=binding.service_account, namespace=namespace
                )
            ],
            depends_on=[self.leader_election_role, self.service_account],
        )
        self.metrics_service = ServiceV1(
            self,
            "metrics_service",
            metadata=ServiceV1Metadata(
                name=release.metrics_service_name,
                namespace=namespace,
                labels=dict(release.labels),
            ),
            spec=ServiceV1Spec(
                ip_family_policy=release.metrics_service_ip_family_policy,
                port=[
                    ServiceV1SpecPort(
                        name=port.name,
                        port=port.port,
                        protocol=port.protocol,
                        target_port=str(port.target_port),
                    )
                    for port in release.metrics_service_ports
                ],
                selector=dict(release.metrics_service_selector),
            ),
            depends_on=[self.namespace],
        )
        self.deployment = DeploymentV1(
            self,
            "deployment",
            metadata=DeploymentV1Metadata(
                name=release.deployment_name, namespace=namespace, labels=dict(release.labels)
            ),
            spec=DeploymentV1Spec(
                replicas=str(release.replicas),
                revision_history_limit=release.revision_history_limit,
                selector=DeploymentV1SpecSelector(match_labels=dict(release.selector_labels)),
                template=DeploymentV1SpecTemplate(
                    metadata=DeploymentV1SpecTemplateMetadata(
                        labels=dict(release.pod_labels),
                        annotations=dict(release.pod_annotations),
                    ),
                    spec=self._pod_spec(props),
                ),
            ),
            # Started with its permissions in place, so its first reconcile does not fail; and
            # `terraform apply` returns only once it runs, which is what an Istio resource needs.
            wait_for_rollout=True,
            depends_on=[
                self.service_account,
                *self.cluster_role_bindings.values(),
                self.leader_election_role_binding,
            ],
        )

        # Plain Terraform addresses (`kubernetes_deployment_v1.sail_operator`,
        # `kubernetes_cluster_role_v1.sail_operator_proxy`) instead of construct-path hashes, so a
        # plan reads like the chart; distinct from the Istio Operator's (`istio_operator`).
        for resource in (
            self.service_account,
            self.leader_election_role,
            self.leader_election_role_binding,
            self.metrics_service,
            self.deployment,
        ):
            resource.override_logical_id(LOGICAL_ID)
        for key, cluster_role in self.cluster_roles.items():
            cluster_role.override_logical_id(key)
        for key, cluster_role_binding in self.cluster_role_bindings.items():
            cluster_role_binding.override_logical_id(key)
        # Named after the namespace, as the Istio Operator's namespaces are: the default is
        # `kubernetes_namespace_v1.sail_operator`.
        self.namespace.override_logical_id(namespace_logical_id(namespace))

        self.dependables: list[ITerraformDependable] = [
            self.deployment,
            *self.cluster_roles.values(),
            *self.cluster_role_bindings.values(),
            self.leader_election_role,
            self.leader_election_role_binding,
            self.service_account,
            self.namespace,
        ]

    @staticmethod
    def _pod_spec(props: SailOperatorInstallProps) -> DeploymentV1SpecTemplateSpec:
        release = props.release
        liveness, readiness = release.liveness_probe, release.readiness_probe
        container = DeploymentV1SpecTemplateSpecContainer(
            name=release.container_name,
            image=props.image,
            command=list(release.command),
            args=list(release.args),
            liveness_probe=DeploymentV1SpecTemplateSpecContainerLivenessProbe(
                http_get=DeploymentV1SpecTemplateSpecContainerLivenessProbeHttpGet(
                    path=liveness.path, port=str(liveness.port)
                ),
                initial_delay_seconds=liveness.initial_delay_seconds,
                period_seconds=liveness.period_seconds,
            ),
            readiness_probe=DeploymentV1SpecTemplateSpecContainerReadinessProbe(
                http_get=DeploymentV1SpecTemplateSpecContainerReadinessProbeHttpGet(
                    path=readiness.path, port=str(readiness.port)
                ),
                initial_delay_seconds=readiness.initial_delay_seconds,
                period_seconds=readiness.period_seconds,
            ),
            resources=DeploymentV1SpecTemplateSpecContainerResources(
                requests=dict(props.resource_requests) or None,
                limits=dict(props.resource_limits) or None,
            )
            if props.resource_requests or props.resource_limits
            else None,
            security_context=DeploymentV1SpecTemplateSpecContainerSecurityContext(
                allow_privilege_escalation=release.allow_privilege_escalation,
                capabilities=DeploymentV1SpecTemplateSpecContainerSecurityContextCapabilities(
                    drop=list(release.drop_capabilities)
                ),
                read_only_root_filesystem=release.read_only_root_filesystem,
            ),
            volume_mount=[
                DeploymentV1SpecTemplateSpecContainerVolumeMount(
                    name=release.config_volume_name,
                    mount_path=release.config_mount_path,
                    read_only=True,
                )
            ],
        )
        return DeploymentV1SpecTemplateSpec(
            affinity=DeploymentV1SpecTemplateSpecAffinity(
                node_affinity=DeploymentV1SpecTemplateSpecAffinityNodeAffinity(
                    required_during_scheduling_ignored_during_execution=DeploymentV1SpecTemplateSpecAffinityNodeAffinityRequiredDuringSchedulingIgnoredDuringExecution(
                        node_selector_term=[
                            DeploymentV1SpecTemplateSpecAffinityNodeAffinityRequiredDuringSchedulingIgnoredDuringExecutionNodeSelectorTerm(
                                match_expressions=[
                                    DeploymentV1SpecTemplateSpecAffinityNodeAffinityRequiredDuringSchedulingIgnoredDuringExecutionNodeSelectorTermMatchExpressions(
                                        key=key, operator="In", values=list(values)
                                    )
                                    for key, values in release.node_affinity
                                ]
                            )
                        ]
                    )
                )
            ),
            # The provider's default is true as well; the operator cannot start without the
            # token, so it is never left implicit (as for the Istio Operator).
            automount_service_account_token=True,
            container=[container],
            security_context=DeploymentV1SpecTemplateSpecSecurityContext(
                run_as_non_root=release.run_as_non_root
            ),
            service_account_name=release.service_account_name,
            termination_grace_period_seconds=release.termination_grace_period_seconds,
            volume=[
                DeploymentV1SpecTemplateSpecVolume(
                    name=release.config_volume_name,
                    downward_api=DeploymentV1SpecTemplateSpecVolumeDownwardApi(
                        # The provider takes the file mode as an octal string.
                        default_mode=f"0{release.config_file_mode:o}",
                        items=[
                            DeploymentV1SpecTemplateSpecVolumeDownwardApiItems(
                                path=release.config_file,
                                field_ref=DeploymentV1SpecTemplateSpecVolumeDownwardApiItemsFieldRef(
                                    field_path="metadata.annotations"
                                ),
                            )
                        ],
                    ),
                )
            ],
        )


def _optional_list(values: tuple[str, ...]) -> list[str] | None:
    """An empty tuple is a key the chart does not write."""
    return list(values) or None
