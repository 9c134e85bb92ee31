"""The rules of Kubernetes' inter-pod and node affinity, taints and topology spread, on plain
data: does a selector match labels, does a toleration tolerate a taint, which topology domain a
node is in, and what a placement would do to each rule.

Pure. Used by ``gitops.decide.schedule`` in its filter (required rules) and its score
(preferred ones). A node's labels include ``kubernetes.io/hostname``, its name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gitops.model.templates import PodTerm, Requirement, Spread

HOSTNAME = "kubernetes.io/hostname"
Taint = tuple[str, str, str]  # key, value, effect


@dataclass(frozen=True)
class Placed:
    """A pod the scheduler counts: where it is, its namespace and labels."""

    node: str
    namespace: str
    labels: Mapping[str, str]


def _one(req: Requirement, labels: Mapping[str, str]) -> bool:
    value = labels.get(req.key)
    if req.operator == "In":
        return value is not None and value in req.values
    if req.operator == "NotIn":
        return value is None or value not in req.values
    if req.operator == "Exists":
        return req.key in labels
    if req.operator == "DoesNotExist":
        return req.key not in labels
    if req.operator in ("Gt", "Lt") and value is not None and req.values:
        try:
            have, want = int(value), int(req.values[0])
        except ValueError:
            return False
        return have > want if req.operator == "Gt" else have < want
    return False  # "Never": a term without a selector matches no pod


def matches(reqs: Iterable[Requirement], labels: Mapping[str, str]) -> bool:
    return all(_one(r, labels) for r in reqs)


def tolerated(taint: Taint, tolerations: Iterable[tuple[str, str, str, str]]) -> bool:
    key, value, effect = taint
    for t_key, op, t_value, t_effect in tolerations:
        if t_effect and t_effect != effect:
            continue
        if op == "Exists" and (not t_key or t_key == key):
            return True
        if op == "Equal" and t_key == key and t_value == value:
            return True
    return False


def untolerated(
    taints: Iterable[Taint], tolerations: Iterable[tuple[str, str, str, str]], effects: set[str]
) -> list[Taint]:
    return [t for t in taints if t[2] in effects and not tolerated(t, tolerations)]


def in_domain(
    term: PodTerm, namespace: str, domain: str, node_labels: Mapping[str, Mapping[str, str]],
    placed: Sequence[Placed],
) -> int:  # fmt: skip
    """Pods matching ``term`` on nodes whose ``term.topology_key`` label is ``domain``."""
    spaces = set(term.namespaces) or {namespace}
    return sum(
        1
        for p in placed
        if p.namespace in spaces
        and node_labels.get(p.node, {}).get(term.topology_key) == domain
        and matches(term.selector, p.labels)
    )


def skew_after(
    rule: Spread, node: str, namespace: str, node_labels: Mapping[str, Mapping[str, str]],
    placed: Sequence[Placed],
) -> int | None:  # fmt: skip
    """The rule's skew if one more pod went to ``node`` (None: the node has no such domain)."""
    domain = node_labels.get(node, {}).get(rule.topology_key)
    if domain is None:
        return None
    counts: Counter[str] = Counter(
        {v[rule.topology_key]: 0 for v in node_labels.values() if rule.topology_key in v}
    )
    for p in placed:
        value = node_labels.get(p.node, {}).get(rule.topology_key)
        if value is not None and p.namespace == namespace and matches(rule.selector, p.labels):
            counts[value] += 1
    counts[domain] += 1
    return counts[domain] - min(counts.values())
