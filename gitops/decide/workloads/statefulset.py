"""The StatefulSet planner: pods NAME-0 … NAME-(n-1), each with its own claims, made, removed
and updated as Kubernetes' StatefulSet controller does.

Pure. OrderedReady: the lowest missing ordinal is made once every lower one is Ready; nothing
else happens while one is not; scale-down takes the highest ordinal first, one at a time.
Parallel: every missing ordinal at once, every surplus one at once. RollingUpdate: once all
are Ready, the highest ordinal at or above ``partition`` that runs an older template goes, and
is made again (same name, same claims) in a following pass, at most ``maxUnavailable`` at a
time; OnDelete: a pod takes the new template only once something else removed it. A broken
pod, or one on a node with a NoExecute taint it does not tolerate, is removed and made again.
Claims of ordinals scaled away go only when ``whenScaled: Delete`` says so, once their pod is
gone.
"""

from __future__ import annotations

from collections import Counter

from gitops.decide.actions import Remove, Why
from gitops.decide.desired import DesiredDeployment
from gitops.decide.stateful import Stateful, claim_ordinal, ordinal_of, ordinal_template
from gitops.decide.workloads.base import Context, Part, is_complete, place, restarts
from gitops.decide.workloads.rollout import scaled_value
from gitops.model.live import PodInfo


def plan(sts: DesiredDeployment, pods: list[PodInfo], ctx: Context) -> Part:
    st = sts.stateful or Stateful()
    template = sts.template
    by_ordinal: dict[int, PodInfo] = {}
    strays: list[PodInfo] = []  # not NAME-i, or a second pod of an ordinal
    for p in sorted(pods, key=lambda p: p.created):
        o = ordinal_of(sts.name, p.name)
        if o is None or o in by_ordinal:
            strays.append(p)
        else:
            by_ordinal[o] = p
    want = range(st.start, st.start + sts.replicas)
    remove = [Remove(p, Why.SURPLUS) for p in strays if ctx.reachable(p)]
    for _, p in sorted(by_ordinal.items()):
        current = p.template_hash == template.template_hash
        if ctx.tainted(p, template):
            remove.append(Remove(p, Why.TAINTED))
        elif current and not is_complete(p, template) and ctx.reachable(p):
            remove.append(Remove(p, Why.BROKEN))
    gone = {r.pod.name for r in remove}
    live = {o: p for o, p in by_ordinal.items() if p.name not in gone}

    def ready(o: int) -> bool:
        p = live.get(o)
        r = ctx.readiness.get(p.name) if p is not None else None
        return r is not None and r.ready and ctx.now - r.since >= sts.min_ready_seconds

    surplus = sorted((o for o in live if o not in want), reverse=True)
    missing = [o for o in want if o not in by_ordinal or by_ordinal[o].name in gone]
    all_ready = all(ready(o) for o in live)
    create_ordinals: list[int] = []
    if st.ordered:
        if all_ready:
            if missing:
                create_ordinals = missing[:1]
            elif surplus:
                remove.append(Remove(live[surplus[0]], Why.SURPLUS))
    else:
        create_ordinals = missing
        remove += [Remove(live[o], Why.SURPLUS) for o in surplus]
    waiting = False
    old = [o for o in want if o in live and live[o].template_hash != template.template_hash]
    if old and not st.on_delete and not missing and not surplus:
        limit = max(1, scaled_value(st.max_unavailable, sts.replicas, round_up=False))
        unavailable = sum(1 for o in want if not ready(o))
        budget = limit - unavailable
        for o in sorted((o for o in old if o >= st.partition), reverse=True):
            if budget <= 0:
                break
            if st.ordered and not all_ready:
                break
            remove.append(Remove(live[o], Why.OUTDATED))
            budget -= 1
        waiting = any(o >= st.partition for o in old)
    gone = {r.pod.name for r in remove}
    restart, keep = restarts(list(by_ordinal.values()) + strays, gone, ctx, lambda p: True)
    create = []
    pending = None
    spread = Counter(p.node for p in live.values() if p.name not in gone)
    for o in create_ordinals:
        one = ordinal_template(template, st, o)
        made, pending = place(ctx, one, 1, spread, f"{sts.name}-{o}", _why(old), suffix=False)
        create += made
        if pending is not None:
            break
    drop = _scaled_claims(sts, st, ctx, by_ordinal, want)
    return Part(create, restart, remove, keep, waiting or bool(missing), pending, drop)


def _why(old: list[int]) -> str:
    return Why.OUTDATED if old else Why.MISSING


def _scaled_claims(
    sts: DesiredDeployment, st: Stateful, ctx: Context, by_ordinal: dict[int, PodInfo], want: range
) -> tuple[str, ...]:
    """The claims of ordinals scaled away that ``whenScaled: Delete`` removes: once the
    scale-down is over (no pod of those ordinals is left)."""
    if not st.delete_when_scaled or any(o not in want for o in by_ordinal):
        return ()
    out = []
    for ns, claim in ctx.volumes:
        for c in st.claims:
            o = claim_ordinal(claim, c.name, sts.name) if ns == sts.namespace else None
            if o is not None and o not in want:
                out.append(claim)
    return tuple(sorted(out))
