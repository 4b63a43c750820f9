"""One Terraform stack per workspace: providers, backend, and the Istio constructs."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from cdktf import CloudBackend, LocalBackend, NamedCloudWorkspace, TerraformStack
from cdktf_cdktf_provider_kubernetes.provider import KubernetesProvider
from cdktf_cdktf_provider_null.provider import NullProvider

from constructs import Construct
from constructs.control_plane import ControlPlane, ControlPlaneProps
from constructs.injection_namespaces import InjectionNamespaces, InjectionNamespacesProps
from constructs.istio_operator import IstioOperatorInstall, IstioOperatorInstallProps
from constructs.istio_operator_manifest import RenderedManifest, render
from constructs.istio_releases import RELEASES, SAIL_APIS, Engine
from constructs.kubectl import Kubectl
from constructs.operator_crd import OperatorCrd, OperatorCrdProps
from constructs.sail_control_plane import (
    SailControlPlane,
    SailControlPlaneProps,
    control_plane_namespace,
)
from constructs.sail_crds import SailCrds, SailCrdsProps
from constructs.sail_operator import SailOperatorInstall, SailOperatorInstallProps
from constructs.workspace_config import WorkspaceConfig

# Local state lives beside the project, not in cdktf.out, so a new synth never loses it. The path
# is relative to the stack's working directory (cdktf.out/stacks/<workspace>).
LOCAL_STATE_DIR = "state"
# The apply/removal pairs use Terraform's built-in terraform_data resource, new in 1.4. An older
# Terraform (a pinned Terraform Cloud workspace, say) then stops at init with this constraint
# instead of failing on an unknown resource type.
REQUIRED_TERRAFORM = ">= 1.4.0"


def local_state_path(workspace: str) -> str:
    return f"../../../{LOCAL_STATE_DIR}/{workspace}/terraform.tfstate"


class WorkspaceStack(TerraformStack):
    """The whole install for one workspace, named after its config file."""

    def __init__(
        self,
        scope: Construct,
        config: WorkspaceConfig,
        manifest: RenderedManifest | None = None,
    ) -> None:
        """`manifest`: the workspace's IstioOperator as validated already; rendered if None."""
        super().__init__(scope, config.name)
        self.config = config
        self.add_override("terraform.required_version", REQUIRED_TERRAFORM)
        self._configure_backend()
        self._configure_providers()
        kubectl = Kubectl(
            self, "kubectl", cluster=config.spec.cluster, settings=config.spec.kubectl
        )
        # The engine's operator install, whose `dependables` the control plane waits for.
        self.operator = _ENGINES[config.engine](self, config, manifest or render(config), kubectl)
        spec = config.spec
        InjectionNamespaces(
            self,
            "injection_namespaces",
            InjectionNamespacesProps(
                names=spec.injection_namespaces,
                labels=spec.namespace_labels,
                existing=spec.existing_namespaces,
            ),
        )

    def _configure_backend(self) -> None:
        cloud = self.config.spec.backend.cloud
        if cloud is None:
            LocalBackend(self, path=local_state_path(self.config.name))
            return
        CloudBackend(
            self,
            organization=cloud.organization,
            hostname=cloud.hostname,
            workspaces=NamedCloudWorkspace(cloud.workspace, cloud.project),
        )

    def _configure_providers(self) -> None:
        cluster = self.config.spec.cluster
        # Only where to look goes into the JSON: a path and a context name, or nothing at all
        # (the provider then reads KUBE_* from the environment). Never a token or certificate.
        if cluster.credentials == "kubeconfig":
            KubernetesProvider(
                self,
                "kubernetes",
                config_path=cluster.kubeconfig,
                config_context=cluster.context,
            )
        else:
            KubernetesProvider(self, "kubernetes")
        NullProvider(self, "null")


def _istio_operator(
    stack: WorkspaceStack, config: WorkspaceConfig, manifest: RenderedManifest, kubectl: Kubectl
) -> IstioOperatorInstall:
    """Istio 1.23.6 and older: the in-cluster Istio Operator and an IstioOperator."""
    spec = config.spec
    # Install order, which destroy reverses: the CRD, then the operator, then the
    # IstioOperator. The operator must be running to remove the control plane it made.
    crd = OperatorCrd(
        stack,
        "operator_crd",
        OperatorCrdProps(istio_version=spec.istio_version, cluster=spec.cluster, kubectl=kubectl),
    )
    operator = spec.operator
    operator_install = IstioOperatorInstall(
        stack,
        "istio_operator",
        IstioOperatorInstallProps(
            release=RELEASES[spec.istio_version],
            hub=operator.hub,
            tag=config.operator_tag,
            namespace=operator.namespace,
            watched_namespaces=operator.watched_namespaces,
            resource_requests=operator.resources.requests.as_dict(),
            resource_limits=operator.resources.limits.as_dict(),
            depends_on=[crd.applied],
            existing_namespaces=spec.existing_namespaces,
        ),
    )
    ControlPlane(
        stack,
        "control_plane",
        ControlPlaneProps(
            manifest=manifest,
            cluster=spec.cluster,
            kubectl=kubectl,
            delete_timeout_seconds=spec.control_plane.delete_timeout_seconds,
            depends_on=[crd.applied, *operator_install.dependables],
        ),
    )
    return operator_install


def _sail_operator(
    stack: WorkspaceStack, config: WorkspaceConfig, manifest: RenderedManifest, kubectl: Kubectl
) -> SailOperatorInstall:
    """Istio 1.29 and later: the Sail Operator and a cluster-scoped Istio.

    Install order, which destroy reverses: the control plane's namespace, the CRDs (after the
    migration guard), the operator, the Istio. So destroy deletes the Istio and waits until
    istiod is uninstalled, then removes the operator, then the CRDs, then the namespaces.
    """
    spec = config.spec
    name = spec.control_plane.namespace
    namespace = control_plane_namespace(stack, name, existing=name in spec.existing_namespaces)
    after_namespace = [namespace] if namespace is not None else []
    crds = SailCrds(
        stack,
        "sail_crds",
        SailCrdsProps(
            api=SAIL_APIS[spec.istio_version],
            cluster=spec.cluster,
            kubectl=kubectl,
            depends_on=after_namespace,
        ),
    )
    requests, limits = config.sail_operator_resources()
    operator = SailOperatorInstall(
        stack,
        "sail_operator",
        SailOperatorInstallProps(
            release=config.sail_operator_release,
            image=config.sail_operator_image,
            namespace=spec.sail_operator.namespace,
            resource_requests=requests,
            resource_limits=limits,
            depends_on=[crds.applied],
        ),
    )
    SailControlPlane(
        stack,
        "control_plane",
        SailControlPlaneProps(
            manifest=manifest,
            cluster=spec.cluster,
            kubectl=kubectl,
            delete_timeout_seconds=spec.control_plane.delete_timeout_seconds,
            depends_on=[*after_namespace, crds.applied, *operator.dependables],
        ),
    )
    return operator


# One function per engine: the stack never branches on a version.
_ENGINES: Mapping[
    Engine,
    Callable[
        [WorkspaceStack, WorkspaceConfig, RenderedManifest, Kubectl],
        IstioOperatorInstall | SailOperatorInstall,
    ],
] = {Engine.ISTIO_OPERATOR: _istio_operator, Engine.SAIL_OPERATOR: _sail_operator}
