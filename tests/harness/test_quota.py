"""ResourceQuota and LimitRange through the front door, on in-memory nodes: a quota of 2 pods
holds a third replica Pending with Kubernetes' message (in status, events and get pods), and
raising the quota in git places it; a quota on requests.cpu refuses pods that set none; the
autoscaler's scale stops at the quota."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.harness.harness import Harness
from tests.harness.test_autoscaler import hpa, load, sample
from tests.helpers import deployment


def quota(pods: int, **more: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": "q", "namespace": "demo"},
            "spec": {"hard": {"pods": str(pods), **more}}}  # fmt: skip


def web(replicas: int = 3, **extra: Any) -> dict[str, Any]:
    return deployment(replicas=replicas, container={"resources": {"requests": {"cpu": "100m"}}},
                      **extra)  # fmt: skip


def test_a_quota_of_two_pods_holds_the_third_and_raising_it_places_it(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.push("app.yaml", web(), quota(2))
    h.run()
    assert len(h.pods()) == 2
    [status] = [r for r in h.rec.status.resources if r.kind == "Deployment"]
    assert 'is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2' in (
        status.message), status.message  # fmt: skip
    pending = [p for p in h.rec.pending if p.deployment == "web"]
    assert pending and pending[0].count == 1
    refused = [e for e in h.rec.events.list("demo") if e.reason == "FailedCreate"]  # type: ignore[union-attr]
    assert refused and refused[0].message.startswith('Error creating: pods "web-')
    h.push("app.yaml", web(), quota(3))
    h.run()
    assert len(h.pods()) == 3 and not h.rec.pending


def test_a_compute_quota_counts_requests_and_refuses_pods_without_them(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.push("app.yaml", web(), quota(10, **{"requests.cpu": "250m"}))
    h.run()
    assert len(h.pods()) == 2  # 2 x 100m fit in 250m; a third would make 300m
    [status] = [r for r in h.rec.status.resources if r.kind == "Deployment"]
    assert "requested: requests.cpu=100m, used: requests.cpu=200m, limited: requests.cpu=250m" in (
        status.message), status.message  # fmt: skip
    h.push("app.yaml", deployment(replicas=1), quota(10, **{"requests.cpu": "250m"}))
    h.run()
    [status] = [r for r in h.rec.status.resources if r.kind == "Deployment"]
    assert "failed quota: q: must specify requests.cpu" in status.message


def test_the_autoscaler_stops_at_the_quota_and_says_so(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.push("app.yaml", web(1), hpa(high=4), quota(2))
    h.run()
    load(h, 500)
    assert sample(h)
    (found,) = h.rec.scales.found().values()
    limited = {c.type: c for c in found.conditions}["ScalingLimited"]
    assert found.desired == 2 and limited.status and limited.reason == "QuotaExceeded"
    h.run()
    assert len(h.pods()) == 2 and not h.rec.pending
