"""HorizontalPodAutoscalers through the front door, on in-memory nodes whose containers' CPU a
test sets, and an injected clock: the autoscaler owns the target's replicas while it is in git
(a rollout keeps its scale, a restart resumes at it), scales up at once and down after its
stabilization window, and leaving git returns the workload to the manifest's count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitops.cli.main import _autoscaled
from gitops.runner import compose
from gitops.source.git import GitSource
from gitops.state.history import History
from tests.harness.harness import Harness
from tests.helpers import deployment

CPU = {"resources": {"requests": {"cpu": "100m"}}}


def web(image: str = "reg/web:v1", replicas: int = 1) -> dict[str, Any]:
    return deployment(image=image, replicas=replicas, container=CPU)


def hpa(high: int = 4) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": high,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": 50}}}],
        },
    }  # fmt: skip


def load(h: Harness, millicores: int) -> None:
    """Every pod of web uses ``millicores``, as the engines' stats would say."""
    for p in h.pods():
        for c in p.app_containers():
            h.nodes[p.node].used[c.id] = (millicores, 10 << 20)


def sample(h: Harness, seconds: float = 15.0) -> bool:
    """The sampler's next round, ``seconds`` on; the nodes pinged meanwhile, as they are."""
    h.clock.advance(seconds)
    h.rec.cluster.check()
    return h.rec.autoscale()


def test_scale_up_at_once_down_after_the_window_and_back_to_the_manifest(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.push("app.yaml", web(), hpa())
    h.run()
    assert len(h.pods()) == 1
    load(h, 40)  # 40 % of the request against a 50 % target: nothing to do
    assert sample(h)  # its first conditions: a pass puts them in status
    assert not sample(h) and len(h.pods()) == 1  # nothing changed
    h.run()
    scaler = {r.kind: r for r in h.rec.status.resources}["HorizontalPodAutoscaler"]
    assert scaler.message == "Deployment/web: 1 replica(s) (1 to 4); cpu: 40%/50%"
    load(h, 200)  # 200 %: four times the target
    assert sample(h)
    h.run()
    assert len(h.pods()) == 4
    events = [e for e in h.rec.events.list("demo") if e.reason == "SuccessfulRescale"]  # type: ignore[union-attr]
    assert [e.message for e in events] == [
        "New size: 4; reason: cpu resource utilization (percentage of request) above target"
    ]
    (found,) = h.rec.scales.found().values()
    assert (found.current, found.desired, found.metrics[0].current) == (1, 4, "200%")
    # gitops diff: the autoscaler's count is no difference, and said so beside the diff
    assert h.rec.reconcile("diff", dry_run=True).plan.empty  # type: ignore[union-attr]
    assert _autoscaled(h.rec) == [{"namespace": "demo", "name": "web", "autoscaler": "web",
                                   "replicas": 4, "manifest": 1}]  # fmt: skip

    h.push("app.yaml", web("reg/web:v2"), hpa())  # a rollout keeps the autoscaler's scale
    h.run()
    assert len(h.pods()) == 4 and h.images() == {"reg/web:v2"}

    load(h, 10)  # the load stopped: 10 %
    sample(h)  # the default scale-down window: 300 s of lower recommendations
    sample(h, 200)
    h.run()
    assert len(h.pods()) == 4
    assert sample(h, 120)  # past the window since the last high recommendation
    h.run()
    assert len(h.pods()) == 1

    load(h, 200)
    assert sample(h)
    h.run()
    assert len(h.pods()) == 4
    restarted = compose(h.settings, GitSource(h.settings.repo, h.settings.state_dir / "source"),
                        list(h.nodes.values()), History(h.settings.state_dir), clock=h.clock)  # fmt: skip
    restarted.reconcile("test")
    assert len([p for p in restarted.look().pods if p.deployment == "web"]) == 4  # resumed

    h.push("app.yaml", web())  # the autoscaler leaves git: the manifest's count again
    h.run()
    assert len(h.pods()) == 1 and not h.rec.scales.found()


def test_the_scale_stops_at_max_replicas_and_says_so(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.push("app.yaml", web(), hpa(high=3))
    h.run()
    load(h, 1000)  # 1000 %: twenty times the target
    assert sample(h)
    (found,) = h.rec.scales.found().values()
    limited = {c.type: c for c in found.conditions}["ScalingLimited"]
    assert found.desired == 3 and limited.status and limited.reason == "TooManyReplicas"


def test_without_a_cpu_request_the_autoscaler_says_why_and_keeps_the_scale(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.push("app.yaml", deployment(replicas=2), hpa())
    h.run()
    load(h, 500)
    sample(h)
    (found,) = h.rec.scales.found().values()
    active = {c.type: c for c in found.conditions}["ScalingActive"]
    assert not active.status and "missing request" in active.message
    h.run()
    assert len(h.pods()) == 2
    scaler = {r.kind: r for r in h.rec.status.resources}["HorizontalPodAutoscaler"]
    assert scaler.health == "Degraded" and "missing request" in scaler.message
    warned = [e for e in h.rec.events.list("demo") if e.reason == "FailedGetResourceMetric"]  # type: ignore[union-attr]
    assert warned and warned[0].type == "Warning"
