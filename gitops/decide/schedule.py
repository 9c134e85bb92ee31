"""Where a new pod goes: Kubernetes' filter-then-score, on plain data.

Pure and deterministic. Filter: the node is Ready and not cordoned, its labels match the pod's
``nodeSelector``, it allows privileged containers if the pod has one, it holds fewer than
``maxPods`` pods (the kubelet's limit, 110 by default), and the pod's requests fit in what is
left of its allocatable cpu and memory.
The pod's own rules filter too (``gitops.decide.affinity``): untolerated NoSchedule/NoExecute
taints, required node affinity, pod affinity and anti-affinity, DoNotSchedule topology spread.
Score: its preferred rules first (node and pod affinity weights, less anti-affinity weights,
PreferNoSchedule taints and ScheduleAnyway skew), then fewest replicas of the same Deployment
(spread), then least requested (the mean of the cpu and memory fractions in use, as
kube-scheduler's LeastAllocated), then the name. A pod that fits nowhere gets the reason in
Kubernetes' words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from gitops.decide.affinity import (
    HOSTNAME,
    Placed,
    Taint,
    in_domain,
    matches,
    skew_after,
    untolerated,
)
from gitops.manifests.volumes import host_path_allowed
from gitops.model.live import PodInfo
from gitops.model.templates import (
    DEFAULT_MAX_PODS,
    HostPort,
    Placement,
    PodTemplate,
    Requirement,
    ports_clash,
)

NOT_READY = "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"
CORDONED = "node(s) were unschedulable"
SELECTOR = "node(s) didn't match node selector"
NO_CPU = "Insufficient cpu"
NO_MEMORY = "Insufficient memory"
NO_GPU = "Insufficient nvidia.com/gpu"
TOO_MANY_PODS = "Too many pods"
NO_PRIVILEGED = "node(s) do not allow privileged containers (allowPrivileged)"
NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
POD_AFFINITY = "node(s) didn't match pod affinity rules"
POD_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
SPREAD = "node(s) didn't match pod topology spread constraints"
VOLUME_ELSEWHERE = "node(s) had volume node affinity conflict"
NO_HOST_PATH = "node(s) do not allow its hostPath volumes (hostPaths)"
NO_FREE_PORTS = "node(s) didn't have free ports for the requested pod ports"


@dataclass(frozen=True)
class NodeView:
    """A node as the scheduler sees it. ``cpu_millis``/``memory`` are allocatable (capacity
    less the reserve); None when the engine did not say (then they never run out)."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ready: bool = True
    cordoned: bool = False
    draining: bool = False  # its pods are moved elsewhere with the rolling rules
    cpu_millis: int | None = None
    memory: int | None = None
    max_pods: int = DEFAULT_MAX_PODS
    allow_privileged: bool = False
    taints: tuple[Taint, ...] = ()  # (key, value, effect), from the node configuration
    gpus: int = 0  # nvidia.com/gpu the node's configuration declares
    host_paths: tuple[str, ...] = ()  # hostPath volumes may bind these and below them

    @property
    def all_labels(self) -> dict[str, str]:
        return {**self.labels, HOSTNAME: self.name}

    @property
    def schedulable(self) -> bool:
        return self.ready and not self.cordoned


@dataclass(frozen=True)
class Unschedulable:
    reason: str  # "0/3 nodes are available: 2 Insufficient memory, 1 node(s) ..."


class Scheduler:
    """Places pods one at a time, counting what each placement takes."""

    def __init__(
        self,
        nodes: Sequence[NodeView],
        pods: Iterable[PodInfo] = (),
        volumes: Mapping[tuple[str, str], str] | None = None,
        unknown: Iterable[str] = (),
    ) -> None:
        """``volumes``: the node holding each PersistentVolumeClaim's volume, by (namespace,
        claim); ``unknown``: nodes that do not answer, which may hold a claim not seen."""
        self.nodes = sorted(nodes, key=lambda n: n.name)
        self.volumes = dict(volumes or {})
        self.unknown = sorted(unknown)
        self.users: dict[tuple[str, str], list[str]] = {}  # claim -> pods that use it
        self.labels = {n.name: n.all_labels for n in self.nodes}
        self.cpu: Counter[str] = Counter()
        self.memory: Counter[str] = Counter()
        self.pods: Counter[str] = Counter()
        self.gpus: Counter[str] = Counter()
        self.placed: list[Placed] = []  # for affinity and spread: every pod, new ones too
        self.host_ports: dict[str, list[HostPort]] = {}  # node -> the ports its pods publish
        for p in pods:
            self.add(p.node, p.requests, Placed(p.node, p.namespace, p.labels()), p.gpus)
            self.host_ports.setdefault(p.node, []).extend(p.host_ports)
            for claim in p.claims:
                self.users.setdefault((p.namespace, claim), []).append(p.name)

    def add(
        self, node: str, requests: tuple[int, int], placed: Placed | None = None, gpus: int = 0
    ) -> None:
        self.cpu[node] += requests[0]
        self.memory[node] += requests[1]
        self.gpus[node] += gpus
        self.pods[node] += 1
        if placed is not None:
            self.placed.append(placed)

    def remove(self, node: str, requests: tuple[int, int], gpus: int = 0) -> None:
        self.cpu[node] -= requests[0]
        self.memory[node] -= requests[1]
        self.gpus[node] -= gpus
        self.pods[node] -= 1

    def place(self, template: PodTemplate, spread: Mapping[str, int]) -> str | Unschedulable:
        """The best node for one more pod of ``template`` (``spread``: its Deployment's pods
        per node so far), which is then counted as taken; or why there is none."""
        fits: list[NodeView] = []
        why: Counter[str] = Counter()
        for node in self.nodes:
            reasons = self._filter(node, template)
            if reasons:
                why.update(reasons)
            else:
                fits.append(node)
        if not fits:
            listed = sorted(why.items(), key=lambda kv: (-kv[1], kv[0]))
            detail = ", ".join(f"{n} {r}" for r, n in listed)
            said = self._claim_problem(template)
            return Unschedulable(
                f"{said + '; ' if said else ''}0/{len(self.nodes)} nodes are available: {detail}."
            )
        best = min(
            fits,
            key=lambda n: (
                -self._preference(n, template),
                spread.get(n.name, 0),
                self._used(n),
                self.pods[n.name],
                n.name,
            ),
        )
        self._take(best.name, template)
        return best.name

    def place_on(self, template: PodTemplate, name: str) -> str:
        """Whether one more pod of ``template`` fits on node ``name`` (then counted as taken):
        "" if so, else why not. For a DaemonSet: its pods tolerate a cordon, as Kubernetes'
        daemon pods tolerate ``node.kubernetes.io/unschedulable``."""
        node = next((n for n in self.nodes if n.name == name), None)
        if node is None:
            return f"node {name} is not a node"
        reasons = self._filter(replace(node, cordoned=False), template)
        if reasons:
            return reasons[0]
        self._take(name, template)
        return ""

    def selects(self, name: str, template: PodTemplate) -> bool:
        """Whether node ``name`` still matches what ``template`` asks of a node (its
        nodeSelector and required node affinity): a DaemonSet's pod elsewhere goes."""
        labels = self.labels.get(name)
        required = template.placement.required_nodes if template.placement else ()
        return labels is not None and _selected(labels, template) and _affine(labels, required)

    def _take(self, name: str, template: PodTemplate) -> None:
        self.add(
            name,
            template.requests,
            Placed(name, template.namespace, dict(template.labels)),
            template.gpus,
        )
        self.host_ports.setdefault(name, []).extend(template.host_ports)
        for claim in template.claims:  # the claim's volume is made there: later pods follow
            key = (template.namespace, claim.name)
            if not claim.shared:  # a shared one is reached from every node alike
                self.volumes.setdefault(key, name)
            self.users.setdefault(key, []).append("(new)")

    def _claim_problem(self, template: PodTemplate) -> str:
        """Why a claim keeps the pod from every node, in a sentence, or ""."""
        ready = {n.name for n in self.nodes if n.schedulable}
        for claim in template.claims:
            key = (template.namespace, claim.name)
            at = None if claim.shared else self.volumes.get(key)
            what = f"PersistentVolumeClaim {key[0]}/{key[1]}"
            if at is None and self.unknown and not claim.shared:
                silent = ", ".join(self.unknown)
                return f"{what} may have its volume on {silent}, which does not answer"
            if at is not None and at not in ready:
                known = any(n.name == at for n in self.nodes)
                state = "is not ready or is cordoned" if known else "is not a node any more"
                return f"{what} has its volume on node {at}, which {state}"
            users = self.users.get(key, [])
            if claim.once_pod and users:
                return f"{what} is ReadWriteOncePod and used by pod {users[0]}"
        return ""

    def _filter(self, node: NodeView, template: PodTemplate) -> list[str]:
        if not node.ready:
            return [NOT_READY]
        if node.cordoned:
            return [CORDONED]
        if not _selected(self.labels[node.name], template):
            return [SELECTOR]
        if template.privileged and not node.allow_privileged:
            return [NO_PRIVILEGED]
        if any(not host_path_allowed(p, node.host_paths) for p in template.host_paths):
            return [NO_HOST_PATH]
        taken = self.host_ports.get(node.name, ())
        if any(ports_clash(want, had) for want in template.host_ports for had in taken):
            return [NO_FREE_PORTS]
        for claim in template.claims:
            ckey = (template.namespace, claim.name)
            at = self.volumes.get(ckey)
            if not claim.shared and (
                (at is None and self.unknown) or (at is not None and at != node.name)
            ):
                return [VOLUME_ELSEWHERE]
            if claim.once_pod and self.users.get(ckey):
                return [f"PersistentVolumeClaim {ckey[0]}/{ckey[1]} is ReadWriteOncePod and in use"]
        placement = template.placement or Placement()
        taints = untolerated(node.taints, placement.tolerations, {"NoSchedule", "NoExecute"})
        if taints:
            key, value, _ = taints[0]
            return [f"node(s) had untolerated taint {{{key}: {value}}}"]
        if template.placement is not None:
            why = self._rules(node, template, placement)
            if why:
                return [why]
        cpu, memory = template.requests
        out = []
        if self.pods[node.name] >= node.max_pods:
            out.append(TOO_MANY_PODS)
        if node.cpu_millis is not None and self.cpu[node.name] + cpu > node.cpu_millis:
            out.append(NO_CPU)
        if node.memory is not None and self.memory[node.name] + memory > node.memory:
            out.append(NO_MEMORY)
        if template.gpus and self.gpus[node.name] + template.gpus > node.gpus:
            out.append(NO_GPU)
        return out

    def _rules(self, node: NodeView, template: PodTemplate, rules: Placement) -> str:
        """The first required rule ``node`` breaks for one more pod of ``template``, or ""."""
        labels = self.labels[node.name]
        if not _affine(labels, rules.required_nodes):
            return NODE_AFFINITY
        ns, own = template.namespace, dict(template.labels)
        for term in rules.affinity:
            domain = labels.get(term.topology_key)
            domains = {v[term.topology_key] for v in self.labels.values() if term.topology_key in v}
            anywhere = any(in_domain(term, ns, d, self.labels, self.placed) for d in domains)
            # The first pod of a group that is affine to itself may go anywhere (Kubernetes).
            if domain is None or (
                not in_domain(term, ns, domain, self.labels, self.placed)
                and (anywhere or not matches(term.selector, own))
            ):
                return POD_AFFINITY
        for term in rules.anti_affinity:
            domain = labels.get(term.topology_key)
            if domain is not None and in_domain(term, ns, domain, self.labels, self.placed):
                return POD_ANTI_AFFINITY
        for rule in rules.spread:
            if rule.hard:
                skew = skew_after(rule, node.name, ns, self.labels, self.placed)
                if skew is None or skew > rule.max_skew:
                    return SPREAD
        return ""

    def _preference(self, node: NodeView, template: PodTemplate) -> int:
        """Preferred rules as one score (higher is better): node affinity and pod affinity
        weights, less anti-affinity weights, untolerated PreferNoSchedule taints and soft
        spread skew."""
        rules = template.placement or Placement()
        labels, ns = self.labels[node.name], template.namespace
        score = sum(w for w, term in rules.preferred_nodes if matches(term, labels))
        for term in rules.preferred_affinity + rules.preferred_anti_affinity:
            domain = labels.get(term.topology_key)
            if domain is not None and in_domain(term, ns, domain, self.labels, self.placed):
                score += term.weight if term in rules.preferred_affinity else -term.weight
        score -= 100 * len(untolerated(node.taints, rules.tolerations, {"PreferNoSchedule"}))
        for rule in rules.spread:
            if not rule.hard:
                skew = skew_after(rule, node.name, ns, self.labels, self.placed)
                score -= 10 * (skew if skew is not None else 10)
        return score

    def _used(self, node: NodeView) -> float:
        parts = []
        if node.cpu_millis:
            parts.append(self.cpu[node.name] / node.cpu_millis)
        if node.memory:
            parts.append(self.memory[node.name] / node.memory)
        return sum(parts) / len(parts) if parts else 0.0  # unknown: then fewest pods decides


def _selected(labels: Mapping[str, str], template: PodTemplate) -> bool:
    """The node's labels match the pod's nodeSelector."""
    return all(labels.get(k) == v for k, v in template.node_selector)


def _affine(labels: Mapping[str, str], required: Sequence[tuple[Requirement, ...]]) -> bool:
    """The node's labels match one of the pod's required node affinity terms, if it has any."""
    return not required or any(matches(t, labels) for t in required)
