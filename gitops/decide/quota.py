"""The pods a namespace's ResourceQuotas let a pass create: Kubernetes' quota admission
(``plugin/pkg/admission/resourcequota``), applied to the plan's new pods.

Pure. In: the plan's creates in their order, the pods that run (less those the plan removes:
a pod being replaced frees its share as it goes), and each namespace's quotas. Out: the
creates admitted, and for the rest a ``Pending`` with Kubernetes' message (``exceeded quota:
NAME, requested: ..., used: ..., limited: ...``). A pod counts ``pods`` and its containers'
requests and limits (``requests.cpu``, ``limits.memory``, ...); a quota scoped ``BestEffort``
counts only pods with no requests or limits at all, ``NotBestEffort`` only the others. A quota
on ``requests.cpu`` refuses a pod whose containers set none, as Kubernetes does ("must
specify requests.cpu").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from gitops.decide.actions import Create, Pending
from gitops.decide.desired import DesiredState
from gitops.manifests.quotas import COMPUTE, ResourceQuota
from gitops.model.live import PodInfo
from gitops.model.templates import PodTemplate


@dataclass(frozen=True)
class Quota:
    namespace: str
    name: str
    hard: Mapping[str, Decimal]  # compute keys and pods only
    scope: str = ""  # BestEffort, NotBestEffort, or "" (every pod)


def quotas_of(desired: DesiredState) -> tuple[Quota, ...]:
    out = []
    for e in desired.manifests.of(ResourceQuota):
        hard = {k: v for k, v in e.resource.hard().items() if k in COMPUTE}
        if hard:
            scopes = e.resource.spec.scopes
            out.append(Quota(e.namespace, e.name, hard, scopes[0] if scopes else ""))
    return tuple(out)


def usage(template: PodTemplate) -> dict[str, Decimal]:
    """What one pod of ``template`` counts against a quota (CPU in cores, memory in bytes)."""
    apps = template.containers
    out = {"pods": Decimal(1)}
    for key, values in (
        ("requests.cpu", [c.cpu_request_millis for c in apps]),
        ("limits.cpu", [c.cpu_limit_millis for c in apps]),
        ("requests.memory", [c.memory_request for c in apps]),
        ("limits.memory", [c.memory_limit for c in apps]),
    ):
        if all(v is not None for v in values):
            scale = Decimal(1000) if key.endswith("cpu") else Decimal(1)
            out[key] = sum((Decimal(v or 0) for v in values), Decimal(0)) / scale
    return out


def best_effort(template: PodTemplate) -> bool:
    return all(c.cpu_request_millis is None and c.memory_request is None
               and c.cpu_limit_millis is None and c.memory_limit is None
               for c in template.containers)  # fmt: skip


def admit(
    creates: Sequence[Create],
    running: Sequence[PodInfo],
    templates: Mapping[tuple[str, str, str], PodTemplate],
    quotas: Sequence[Quota],
) -> tuple[list[Create], list[Pending]]:
    """``templates``: (namespace, workload, template hash) -> its template, to count the running
    pods' requests (a pod of a template no longer in git counts its pods only)."""
    if not quotas:
        return list(creates), []
    so_far = {(q.namespace, q.name): used(q, running, templates) for q in quotas}
    admitted: list[Create] = []
    refused: dict[tuple[str, str], tuple[int, str]] = {}
    for c in creates:
        t = c.template
        mine = [q for q in quotas if q.namespace == t.namespace and _counts(q, t)]
        wanted = usage(t)
        found = (_exceeds(q, wanted, so_far[(q.namespace, q.name)]) for q in mine)
        why = next((m for m in found if m), None)
        if why is not None:
            key = (t.namespace, t.deployment)
            count, _ = refused.get(key, (0, ""))
            refused[key] = (count + 1, f'pods "{c.pod}" is forbidden: {why}')
            continue
        for q in mine:
            for k in q.hard:
                so_far[(q.namespace, q.name)][k] += wanted.get(k, Decimal(0))
        admitted.append(c)
    pending = [Pending(ns, name, count, why, refused=True)
               for (ns, name), (count, why) in refused.items()]  # fmt: skip
    return admitted, pending


def used(
    q: Quota, running: Sequence[PodInfo], templates: Mapping[tuple[str, str, str], PodTemplate]
) -> dict[str, Decimal]:
    """What the running pods of its namespace count against ``q``."""
    total = dict.fromkeys(q.hard, Decimal(0))
    each: dict[int, dict[str, Decimal]] = {}  # a template's pod, counted once, not each pod
    for p in running:
        template = templates.get((p.namespace, p.deployment, p.template_hash))
        if p.namespace != q.namespace or p.finished or not _counts(q, template):
            continue
        if template is None:
            counted = {"pods": Decimal(1)}
        else:
            if id(template) not in each:
                each[id(template)] = usage(template)
            counted = each[id(template)]
        for k in total:
            total[k] += counted.get(k, Decimal(0))
    return total


def _counts(q: Quota, template: PodTemplate | None) -> bool:
    if not q.scope or template is None:
        return not q.scope
    return best_effort(template) == (q.scope == "BestEffort")


def _exceeds(q: Quota, wanted: Mapping[str, Decimal], used: Mapping[str, Decimal]) -> str | None:
    missing = [k for k in q.hard if k not in wanted]
    if missing:
        return f"failed quota: {q.name}: must specify {','.join(sorted(missing))}"
    over = [k for k in sorted(q.hard) if used[k] + wanted[k] > q.hard[k]]
    if not over:
        return None

    def listed(values: Mapping[str, Decimal]) -> str:
        return ",".join(f"{k}={shown(k, values[k])}" for k in over)

    return (f"exceeded quota: {q.name}, requested: {listed(wanted)}, used: {listed(used)}, "
            f"limited: {listed(q.hard)}")  # fmt: skip


def shown(key: str, value: Decimal) -> str:
    """As Kubernetes prints a quantity: millicores below a core, memory in Mi/Gi when whole."""
    if key.endswith("cpu"):
        return f"{value:f}".rstrip("0").rstrip(".") if value >= 1 else f"{int(value * 1000)}m"
    if key.endswith("memory"):
        for unit, size in (("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
            if value and value % size == 0:
                return f"{int(value // size)}{unit}"
    return f"{value:f}".rstrip("0").rstrip(".") if "." in f"{value:f}" else f"{value:f}"


def room(
    quotas: Sequence[Quota],
    running: Sequence[PodInfo],
    templates: Mapping[tuple[str, str, str], PodTemplate],
    workload: tuple[str, str],
    template: PodTemplate,
) -> tuple[int, str] | None:
    """How many pods of ``workload`` (of ``template``) its namespace's quotas allow in all,
    with the first quota that bounds it; None when none does. What the other workloads' pods
    use is taken; this workload's own are what the count is of."""
    namespace = workload[0]
    mine = [q for q in quotas if q.namespace == namespace and _counts(q, template)]
    wanted = usage(template)
    best: tuple[int, str] | None = None
    for q in mine:
        others = [p for p in running if (p.namespace, p.deployment) != workload]
        taken_by = used(q, others, templates)
        fits = None
        for k, limit in q.hard.items():
            if k not in wanted:
                fits = 0
                break
            taken = taken_by[k]
            if wanted[k] > 0:
                n = int((limit - taken) // wanted[k])
                fits = n if fits is None else min(fits, n)
        if fits is not None and (best is None or fits < best[0]):
            best = (max(0, fits), q.name)
    return best
