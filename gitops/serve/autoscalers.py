"""The HorizontalPodAutoscalers as ``kubectl get hpa`` shows them, and their status.

Reads the applied commit (``DesiredState``) and what each autoscaler last found
(``gitops.state.scales.Found``): its target, bounds, each metric's current value against its
target (kubectl's TARGETS), the scale, when it last changed and why, and its conditions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gitops.decide.autoscalers import Found, autoscalers_of
from gitops.decide.desired import DesiredState


def rows(
    desired: DesiredState | None,
    found: Mapping[tuple[str, str], Found],
    namespace: str | None,
) -> list[dict[str, Any]]:
    if desired is None:
        return []
    out = []
    for s in autoscalers_of(desired):
        if namespace and s.namespace != namespace:
            continue
        workload = desired.deployment(*s.target_key)
        starting = workload.replicas if workload is not None else 0
        f = found.get(s.key)
        metrics = [
            {"name": r.name, "type": r.type, "targetType": r.target_type,
             "current": r.current, "target": r.target, "value": r.value,
             "goal": r.goal}
            for r in (f.metrics if f else ())
        ]  # fmt: skip
        out.append(
            {
                "namespace": s.namespace,
                "name": s.name,
                "reference": f"{s.target_kind}/{s.target}",
                "targets": [f"{m['name']}: {m['current']}/{m['target']}" for m in metrics]
                or ["<unknown>"],
                "minPods": s.low,
                "maxPods": s.high,
                "replicas": f.current if f else starting,
                "desired": f.desired if f else starting,
                "manifestReplicas": starting,  # the starting point, not a drift to correct
                "lastScaleTime": (f.last_scale or None) if f else None,
                "reason": f.reason if f else "",
                "sampled": f.sampled if f else None,
                "metrics": metrics,
                "conditions": [
                    {
                        "type": c.type,
                        "status": "True" if c.status else "False",
                        "reason": c.reason,
                        "message": c.message,
                    }
                    for c in (f.conditions if f else ())
                ],
                "source": s.origin,
            }
        )
    return out
