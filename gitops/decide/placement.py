"""A pod template's ``affinity``, ``tolerations`` and ``topologySpreadConstraints`` as the
scheduler's plain terms (``gitops.model.templates.Placement``).

Pure. ``matchLabels`` become ``In`` requirements; a node's name is its
``kubernetes.io/hostname`` label and its ``metadata.name`` field.
"""

from __future__ import annotations

from gitops.manifests import pod as pm
from gitops.manifests import scheduling as ms
from gitops.model.templates import Placement, PodTerm, Requirement, Spread


def _requirements(
    exprs: list[ms.NodeSelectorRequirement] | list[ms.LabelSelectorRequirement],
) -> tuple[Requirement, ...]:
    return tuple(Requirement(e.key, e.operator, tuple(e.values)) for e in exprs)


def _node_term(term: ms.NodeSelectorTerm) -> tuple[Requirement, ...]:
    fields = tuple(  # metadata.name, the only field Kubernetes selects nodes by
        Requirement("kubernetes.io/hostname", e.operator, tuple(e.values))
        for e in term.match_fields
    )
    return _requirements(term.match_expressions) + fields


def selector(sel: ms.PodSelector | None) -> tuple[Requirement, ...]:
    if sel is None:
        return (Requirement("", "Never"),)  # no selector: matches no pod, as in Kubernetes
    labels = tuple(Requirement(k, "In", (v,)) for k, v in sorted(sel.match_labels.items()))
    return labels + _requirements(sel.match_expressions)


def _pod_term(term: ms.PodAffinityTerm, weight: int = 0) -> PodTerm:
    return PodTerm(selector(term.label_selector), term.topology_key, tuple(term.namespaces), weight)


def _required(terms: ms.PodAffinity | None) -> list[ms.PodAffinityTerm]:
    return terms.required_during_scheduling_ignored_during_execution if terms else []


def _preferred(terms: ms.PodAffinity | None) -> list[ms.WeightedPodAffinityTerm]:
    return terms.preferred_during_scheduling_ignored_during_execution if terms else []


def placement(pod: pm.PodSpec) -> Placement | None:
    aff = pod.affinity
    if aff is None and not pod.tolerations and not pod.topology_spread_constraints:
        return None
    node = aff.node_affinity if aff else None
    required = node.required_during_scheduling_ignored_during_execution if node else None
    preferred = node.preferred_during_scheduling_ignored_during_execution if node else []
    pa = aff.pod_affinity if aff else None
    anti = aff.pod_anti_affinity if aff else None
    return Placement(
        required_nodes=tuple(_node_term(t) for t in required.node_selector_terms)
        if required
        else (),
        preferred_nodes=tuple((p.weight, _node_term(p.preference)) for p in preferred),
        affinity=tuple(_pod_term(t) for t in _required(pa)),
        anti_affinity=tuple(_pod_term(t) for t in _required(anti)),
        preferred_affinity=tuple(_pod_term(w.pod_affinity_term, w.weight) for w in _preferred(pa)),
        preferred_anti_affinity=tuple(
            _pod_term(w.pod_affinity_term, w.weight) for w in _preferred(anti)
        ),
        tolerations=tuple(
            (t.key or "", t.operator, t.value or "", t.effect or "") for t in pod.tolerations
        ),
        spread=tuple(
            Spread(
                c.max_skew,
                c.topology_key,
                c.when_unsatisfiable == "DoNotSchedule",
                selector(c.label_selector),
            )
            for c in pod.topology_spread_constraints
        ),
    )
