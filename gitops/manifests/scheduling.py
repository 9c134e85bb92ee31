"""Where a pod may and would rather run: ``affinity`` (node, pod and pod anti-affinity),
``tolerations`` and ``topologySpreadConstraints``, as Kubernetes spells them.

Stage: manifests. Shapes and single-field rules only; ``gitops.decide.placement`` turns them
into the scheduler's plain terms, and ``gitops.decide.schedule`` filters and scores nodes with
them (a node's labels, plus ``kubernetes.io/hostname``: its name).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from gitops.manifests.fields import Labels, Spec

Weight = Annotated[int, Field(ge=1, le=100)]


class NodeSelectorRequirement(Spec):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]
    values: list[str] = Field(default_factory=list)


class NodeSelectorTerm(Spec):
    match_expressions: list[NodeSelectorRequirement] = Field(default_factory=list)
    match_fields: list[NodeSelectorRequirement] = Field(default_factory=list)


class NodeSelector(Spec):
    node_selector_terms: list[NodeSelectorTerm] = Field(min_length=1)


class PreferredSchedulingTerm(Spec):
    weight: Weight
    preference: NodeSelectorTerm


class NodeAffinity(Spec):
    required_during_scheduling_ignored_during_execution: NodeSelector | None = None
    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] = Field(
        default_factory=list
    )


class LabelSelectorRequirement(Spec):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list)


class PodSelector(Spec):
    """A label selector that may be empty (then it matches every pod)."""

    match_labels: Labels = Field(default_factory=dict)
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list)


class PodAffinityTerm(Spec):
    label_selector: PodSelector | None = None
    namespaces: list[str] = Field(default_factory=list)
    topology_key: str


class WeightedPodAffinityTerm(Spec):
    weight: Weight
    pod_affinity_term: PodAffinityTerm


class PodAffinity(Spec):
    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] = Field(
        default_factory=list
    )
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] = Field(
        default_factory=list
    )


class Affinity(Spec):
    node_affinity: NodeAffinity | None = None
    pod_affinity: PodAffinity | None = None
    pod_anti_affinity: PodAffinity | None = None


class Toleration(Spec):
    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


class TopologySpreadConstraint(Spec):
    max_skew: Annotated[int, Field(ge=1)]
    topology_key: str
    when_unsatisfiable: Literal["DoNotSchedule", "ScheduleAnyway"]
    label_selector: PodSelector | None = None
    min_domains: Annotated[int, Field(ge=1)] | None = None
