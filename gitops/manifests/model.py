"""Typed, immutable specs for the Kubernetes kinds gitops manages.

Stage: manifests. In: one YAML document as a dict. Out: a frozen model, or pydantic errors
whose locations are the manifest's own (camelCase) field paths. Only shapes, types and
single-field rules live here; rules that relate fields or resources to each other live in
``gitops.manifests.validate``. Field names and defaults are Kubernetes', so the same files
``kubectl apply`` unchanged.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from gitops.manifests.fields import (
    Annotations,
    ConfigData,
    DnsLabel,
    IntOrString,
    Labels,
    NonNegative,
    PortName,
    PortNumber,
    Positive,
    Quantity,
    Spec,
)
from gitops.manifests.pod import LabelSelector, PodTemplateSpec, TemplateMeta
from gitops.manifests.scheduling import PodSelector


class ObjectMeta(Spec):
    name: str
    namespace: DnsLabel | None = None
    labels: Labels = Field(default_factory=dict)
    annotations: Annotations = Field(default_factory=dict)
    # Written by exports of live objects and by generators; the API server owns them, so they
    # are accepted and reported as ignored (``gitops.manifests.ignored``).
    generate_name: str | None = None
    creation_timestamp: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    self_link: str | None = None
    managed_fields: list[dict[str, Any]] | None = None
    owner_references: list[dict[str, Any]] | None = None
    finalizers: list[str] | None = None


class RollingUpdateDeployment(Spec):
    max_surge: IntOrString = "25%"
    max_unavailable: IntOrString = "25%"


class DeploymentStrategy(Spec):
    type: Literal["RollingUpdate", "Recreate"] = "RollingUpdate"
    rolling_update: RollingUpdateDeployment | None = None


class DeploymentSpec(Spec):
    replicas: NonNegative = 1
    selector: LabelSelector
    template: PodTemplateSpec
    strategy: DeploymentStrategy = Field(default_factory=DeploymentStrategy)
    min_ready_seconds: NonNegative = 0
    progress_deadline_seconds: Positive = 600
    revision_history_limit: NonNegative = 10
    paused: bool = False


class ServicePort(Spec):
    name: PortName | None = None
    port: PortNumber
    target_port: IntOrString | None = None
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"  # only TCP is served (checks say why)
    node_port: Annotated[int, Field(ge=30000, le=32767)] | None = None
    # A hint for layer-7 implementations; kube-proxy ignores it as gitops' TCP proxy does.
    app_protocol: str | None = None


class ServiceSpec(Spec):
    selector: Labels = Field(default_factory=dict)
    ports: list[ServicePort] = Field(default_factory=list)
    type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"
    session_affinity: Literal["None", "ClientIP"] = "None"
    cluster_ip: str | None = Field(default=None, alias="clusterIP")
    cluster_ips: list[str] | None = Field(default=None, alias="clusterIPs")
    # Honoured: not-ready pods are endpoints too.
    publish_not_ready_addresses: bool = False
    # Accepted; what gitops does differently is a warning (``gitops.manifests.ignored``).
    external_traffic_policy: Literal["Cluster", "Local"] | None = None
    internal_traffic_policy: Literal["Cluster", "Local"] | None = None
    ip_families: list[Literal["IPv4", "IPv6"]] | None = None
    ip_family_policy: Literal["SingleStack", "PreferDualStack", "RequireDualStack"] | None = None


class Resource(Spec):
    """Fields every top-level kind has."""

    api_version: str
    kind: str
    metadata: ObjectMeta
    status: dict[str, Any] | None = None  # written by controllers; ignored (said so) in git


class Skipped(Resource):
    """A document of a kind gitops does not run, checked against Kubernetes' schema and kept
    so that status and ``get all`` list it, with the reason."""

    reason: str = ""
    cluster_scoped: bool = False


class Namespace(Resource):
    api_version: Literal["v1"]
    kind: Literal["Namespace"]


class ConfigMap(Resource):
    api_version: Literal["v1"]
    kind: Literal["ConfigMap"]
    data: ConfigData = Field(default_factory=dict)
    binary_data: ConfigData = Field(default_factory=dict)
    immutable: bool = False


class Secret(Resource):
    api_version: Literal["v1"]
    kind: Literal["Secret"]
    type: str = "Opaque"
    data: ConfigData = Field(default_factory=dict)
    string_data: ConfigData = Field(default_factory=dict)
    immutable: bool = False


class Service(Resource):
    api_version: Literal["v1"]
    kind: Literal["Service"]
    spec: ServiceSpec = Field(default_factory=ServiceSpec)


class Deployment(Resource):
    api_version: Literal["apps/v1"]
    kind: Literal["Deployment"]
    spec: DeploymentSpec


class ReplicaSetSpec(Spec):
    replicas: NonNegative = 1
    selector: LabelSelector
    template: PodTemplateSpec
    min_ready_seconds: NonNegative = 0


class ReplicaSet(Resource):
    """A fixed set of replicas: healed and scaled, never rolled (a changed template is used
    only by the pods made from then on, as Kubernetes' ReplicaSet controller does)."""

    api_version: Literal["apps/v1"]
    kind: Literal["ReplicaSet"]
    spec: ReplicaSetSpec


class ReplicationControllerSpec(Spec):
    replicas: NonNegative = 1
    # Equality-based only; Kubernetes defaults it to the template's labels.
    selector: Labels = Field(default_factory=dict)
    template: PodTemplateSpec
    min_ready_seconds: NonNegative = 0


class ReplicationController(Resource):
    """The ReplicaSet's predecessor, still in older examples (Kubernetes' guestbook-go)."""

    api_version: Literal["v1"]
    kind: Literal["ReplicationController"]
    spec: ReplicationControllerSpec


AccessMode = Literal["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"]


class VolumeResources(Spec):
    requests: dict[Literal["storage"], Quantity] = Field(default_factory=dict)
    limits: dict[Literal["storage"], Quantity] = Field(default_factory=dict)


class PersistentVolumeClaimSpec(Spec):
    access_modes: list[AccessMode] = Field(min_length=1)
    resources: VolumeResources = Field(default_factory=VolumeResources)
    storage_class_name: str | None = None  # None: the default class, "local"
    volume_mode: Literal["Filesystem", "Block"] = "Filesystem"  # Block is refused (checks)
    # A claim binds to a Docker volume gitops makes, never to a PersistentVolume by name or
    # label: accepted, warned about (``gitops.manifests.ignored``).
    volume_name: str | None = None
    selector: PodSelector | None = None
    data_source: dict[str, Any] | None = None  # refused: gitops copies no volume
    data_source_ref: dict[str, Any] | None = None
    volume_attributes_class_name: str | None = None


class PersistentVolumeClaim(Resource):
    """A Docker named volume on one node, made when a pod first uses it; its data outlives
    every pod, and is removed only by ``gitops delete pvc`` (never by a prune)."""

    api_version: Literal["v1"]
    kind: Literal["PersistentVolumeClaim"]
    spec: PersistentVolumeClaimSpec


class ClaimTemplateMeta(Spec):
    name: DnsLabel
    labels: Labels = Field(default_factory=dict)
    annotations: Annotations = Field(default_factory=dict)


class PersistentVolumeClaimTemplate(Spec):
    """One of a StatefulSet's ``volumeClaimTemplates``: claim NAME-SET-ORDINAL per pod."""

    metadata: ClaimTemplateMeta
    spec: PersistentVolumeClaimSpec


class RollingUpdateStatefulSet(Spec):
    partition: NonNegative = 0
    max_unavailable: IntOrString = 1


class StatefulSetUpdateStrategy(Spec):
    type: Literal["RollingUpdate", "OnDelete"] = "RollingUpdate"
    rolling_update: RollingUpdateStatefulSet | None = None


class ClaimRetention(Spec):
    when_deleted: Literal["Retain", "Delete"] = "Retain"
    when_scaled: Literal["Retain", "Delete"] = "Retain"


class StatefulSetOrdinals(Spec):
    start: NonNegative = 0


class StatefulSetSpec(Spec):
    replicas: NonNegative = 1
    selector: LabelSelector
    template: PodTemplateSpec
    service_name: str | None = None
    volume_claim_templates: list[PersistentVolumeClaimTemplate] = Field(default_factory=list)
    pod_management_policy: Literal["OrderedReady", "Parallel"] = "OrderedReady"
    update_strategy: StatefulSetUpdateStrategy = Field(default_factory=StatefulSetUpdateStrategy)
    persistent_volume_claim_retention_policy: ClaimRetention = Field(default_factory=ClaimRetention)
    min_ready_seconds: NonNegative = 0
    revision_history_limit: NonNegative = 10
    ordinals: StatefulSetOrdinals = Field(default_factory=StatefulSetOrdinals)


class StatefulSet(Resource):
    """Pods with an identity: NAME-0 … NAME-(n-1), each with its own claims, made in order and
    updated from the highest ordinal down."""

    api_version: Literal["apps/v1"]
    kind: Literal["StatefulSet"]
    spec: StatefulSetSpec


class PodDisruptionBudgetSpec(Spec):
    min_available: IntOrString | None = None
    max_unavailable: IntOrString | None = None
    selector: PodSelector | None = None  # absent: no pod (policy/v1); empty: every pod
    unhealthy_pod_eviction_policy: Literal["IfHealthyBudget", "AlwaysAllow"] = "IfHealthyBudget"


class PodDisruptionBudget(Resource):
    """How many of some pods a voluntary disruption (``gitops drain``) may take at once."""

    api_version: Literal["policy/v1"]
    kind: Literal["PodDisruptionBudget"]
    spec: PodDisruptionBudgetSpec = Field(default_factory=PodDisruptionBudgetSpec)


class RollingUpdateDaemonSet(Spec):
    max_unavailable: IntOrString = 1
    max_surge: IntOrString = 0


class DaemonSetUpdateStrategy(Spec):
    type: Literal["RollingUpdate", "OnDelete"] = "RollingUpdate"
    rolling_update: RollingUpdateDaemonSet | None = None


class DaemonSetSpec(Spec):
    selector: LabelSelector
    template: PodTemplateSpec
    update_strategy: DaemonSetUpdateStrategy = Field(default_factory=DaemonSetUpdateStrategy)
    min_ready_seconds: NonNegative = 0
    revision_history_limit: NonNegative | None = None

    @property
    def replicas(self) -> int:
        """Not a field: one pod a node that can take it, counted when planning (0 here)."""
        return 0


class DaemonSet(Resource):
    """One pod on every Ready node its template's nodeSelector, affinity and tolerations
    admit (a log shipper, node-exporter); drains and cordons leave it."""

    api_version: Literal["apps/v1"]
    kind: Literal["DaemonSet"]
    spec: DaemonSetSpec


class PodFailurePolicyOnExitCodes(Spec):
    container_name: str | None = None
    operator: Literal["In", "NotIn"]
    values: list[Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]] = Field(
        min_length=1, max_length=255
    )


class PodFailurePolicyOnPodCondition(Spec):
    type: str
    status: Literal["True", "False", "Unknown"] = "True"


class PodFailurePolicyRule(Spec):
    action: Literal["FailJob", "Ignore", "Count", "FailIndex"]
    on_exit_codes: PodFailurePolicyOnExitCodes | None = None
    on_pod_conditions: list[PodFailurePolicyOnPodCondition] = Field(default_factory=list)


class PodFailurePolicy(Spec):
    rules: list[PodFailurePolicyRule] = Field(max_length=20)


class JobSpec(Spec):
    template: PodTemplateSpec
    completions: NonNegative | None = None
    parallelism: NonNegative = 1
    completion_mode: Literal["NonIndexed", "Indexed"] = "NonIndexed"
    backoff_limit: NonNegative = 6
    active_deadline_seconds: Positive | None = None
    ttl_seconds_after_finished: NonNegative | None = None
    pod_failure_policy: PodFailurePolicy | None = None
    suspend: bool = False
    # The API server's: a Job's pods are its own by construction (accepted, not needed).
    selector: LabelSelector | None = None
    manual_selector: bool | None = None

    @property
    def replicas(self) -> int:
        """Not a field: the completions it wants (one, or the work queue's parallelism)."""
        return self.completions if self.completions is not None else 1

    @property
    def min_ready_seconds(self) -> int:
        return 0


class Job(Resource):
    """Pods run to completion: ``completions`` successes, ``parallelism`` at a time, retried
    up to ``backoffLimit``; once per distinct template (the completion is remembered)."""

    api_version: Literal["batch/v1"]
    kind: Literal["Job"]
    spec: JobSpec


class JobTemplateSpec(Spec):
    metadata: TemplateMeta = Field(default_factory=TemplateMeta)
    spec: JobSpec


class CronJobSpec(Spec):
    schedule: str = Field(min_length=1)
    time_zone: str | None = None
    job_template: JobTemplateSpec
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] = "Allow"
    starting_deadline_seconds: Annotated[int, Field(ge=0)] | None = None
    suspend: bool = False
    successful_jobs_history_limit: NonNegative = 3
    failed_jobs_history_limit: NonNegative = 1

    @property
    def template(self) -> PodTemplateSpec:
        return self.job_template.spec.template

    @property
    def replicas(self) -> int:
        return self.job_template.spec.replicas

    @property
    def min_ready_seconds(self) -> int:
        return 0


class CronJob(Resource):
    """A Job made on a cron schedule (in ``timeZone``), with Kubernetes' concurrency policy,
    starting deadline and history limits."""

    api_version: Literal["batch/v1"]
    kind: Literal["CronJob"]
    spec: CronJobSpec


class ServiceBackendPort(Spec):
    name: PortName | None = None
    number: PortNumber | None = None


class IngressServiceBackend(Spec):
    name: str
    port: ServiceBackendPort


class IngressBackend(Spec):
    service: IngressServiceBackend | None = None
    # A TypedLocalObjectReference (a storage bucket, say): refused, gitops routes to Services.
    resource: dict[str, Any] | None = None


class HTTPIngressPath(Spec):
    path: str | None = None
    path_type: Literal["Exact", "Prefix", "ImplementationSpecific"]
    backend: IngressBackend


class HTTPIngressRuleValue(Spec):
    paths: list[HTTPIngressPath]


class IngressRule(Spec):
    host: str | None = None
    http: HTTPIngressRuleValue | None = None


class IngressTLS(Spec):
    hosts: list[str] = Field(default_factory=list)
    secret_name: str | None = None


class IngressSpec(Spec):
    ingress_class_name: str | None = None
    default_backend: IngressBackend | None = None
    rules: list[IngressRule] = Field(default_factory=list)
    tls: list[IngressTLS] = Field(default_factory=list)


class Ingress(Resource):
    """HTTP(S) routes by host and path to Services, served by the nodes' proxy
    (``gitops.decide.ingress``)."""

    api_version: Literal["networking.k8s.io/v1"]
    kind: Literal["Ingress"]
    spec: IngressSpec = Field(default_factory=IngressSpec)


class IngressClassSpec(Spec):
    controller: str | None = None
    parameters: dict[str, Any] | None = None


class IngressClass(Resource):
    """Read for which Ingresses are gitops' (``gitops.manifests.ingress.served``)."""

    api_version: Literal["networking.k8s.io/v1"]
    kind: Literal["IngressClass"]
    spec: IngressClassSpec = Field(default_factory=IngressClassSpec)


# The kinds whose pods gitops runs. Pods are keyed by (namespace, workload name), so two of
# them may not share a name in one namespace (``gitops.manifests.checks`` says so).
Workload = Deployment | ReplicaSet | ReplicationController | StatefulSet | DaemonSet | Job | CronJob
WORKLOADS: tuple[
    type[Deployment],
    type[ReplicaSet],
    type[ReplicationController],
    type[StatefulSet],
    type[DaemonSet],
    type[Job],
    type[CronJob],
] = (Deployment, ReplicaSet, ReplicationController, StatefulSet, DaemonSet, Job, CronJob)
WORKLOAD_KINDS: frozenset[str] = frozenset(k.__name__ for k in WORKLOADS)


def selector_labels(res: Workload) -> dict[str, str]:
    """The labels a workload's selector asks its template for."""
    if isinstance(res, ReplicationController):
        return res.spec.selector or dict(res.spec.template.metadata.labels)
    if isinstance(res, Job | CronJob):  # its pods are its own: the labels gitops gives them
        return {}
    return dict(res.spec.selector.match_labels)


KINDS: dict[str, tuple[str, type[Resource]]] = {
    "Namespace": ("v1", Namespace),
    "ConfigMap": ("v1", ConfigMap),
    "Secret": ("v1", Secret),
    "Service": ("v1", Service),
    "Deployment": ("apps/v1", Deployment),
    "ReplicaSet": ("apps/v1", ReplicaSet),
    "ReplicationController": ("v1", ReplicationController),
    "PodDisruptionBudget": ("policy/v1", PodDisruptionBudget),
    "PersistentVolumeClaim": ("v1", PersistentVolumeClaim),
    "StatefulSet": ("apps/v1", StatefulSet),
    "DaemonSet": ("apps/v1", DaemonSet),
    "Job": ("batch/v1", Job),
    "CronJob": ("batch/v1", CronJob),
    "Ingress": ("networking.k8s.io/v1", Ingress),
    "IngressClass": ("networking.k8s.io/v1", IngressClass),
}
