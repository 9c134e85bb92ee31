"""A namespace's ResourceQuotas, used against hard, and its LimitRanges: what ``gitops describe
namespace`` shows, as ``kubectl describe namespace`` does.

Used: the pods and compute of the pods that run (``gitops.decide.quota``), the objects of the
applied commit for the counts.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from gitops.decide import quota
from gitops.decide.desired import DesiredState
from gitops.manifests import quotas as q
from gitops.model.live import LiveState


def of_namespace(desired: DesiredState, live: LiveState, namespace: str) -> dict[str, Any]:
    templates = desired.templates
    out: dict[str, Any] = {"quotas": [], "limitRanges": []}
    for e in desired.manifests.of(q.ResourceQuota):
        if e.namespace != namespace:
            continue
        hard = e.resource.hard()
        scope = e.resource.spec.scopes[0] if e.resource.spec.scopes else ""
        compute = quota.Quota(namespace, e.name, {k: v for k, v in hard.items() if k in q.COMPUTE},
                              scope)  # fmt: skip
        used = quota.used(compute, live.pods, templates)
        rows = []
        for key, limit in sorted(hard.items()):
            if key in used:
                now = used[key]
            else:
                found = q.counted(desired.manifests, namespace, key)
                now = sum((n for _, n in found), Decimal(0))
            rows.append({"resource": key, "used": quota.shown(key, now),
                         "hard": quota.shown(key, limit)})  # fmt: skip
        out["quotas"].append({"name": e.name, "scopes": e.resource.spec.scopes, "resources": rows})
    for lr in desired.manifests.of(q.LimitRange):
        if lr.namespace != namespace:
            continue
        for item in lr.resource.spec.limits:
            keys = sorted({*item.min, *item.max, *item.default, *item.default_request,
                           *item.max_limit_request_ratio})  # fmt: skip
            for k in keys:
                out["limitRanges"].append({
                    "name": lr.name, "type": item.type, "resource": k,
                    "min": str(item.min.get(k, "-")), "max": str(item.max.get(k, "-")),
                    "defaultRequest": str(item.default_request.get(k, "-")),
                    "defaultLimit": str(item.default.get(k, "-")),
                    "maxLimitRequestRatio": str(item.max_limit_request_ratio.get(k, "-")),
                })  # fmt: skip
    return out
