"""The HorizontalPodAutoscaler's arithmetic (``gitops.decide.autoscale``, ``gitops.decide.scaling``)
on plain data, against the worked examples of Kubernetes' documentation ("Horizontal Pod
Autoscaling": algorithm details, and "Configurable scaling behavior") and the cases of its
replica calculator's own tests."""

from __future__ import annotations

from collections.abc import Mapping

from gitops.decide.autoscale import (
    PodSample,
    Proposal,
    average,
    object_average,
    object_value,
    propose,
    utilization,
)
from gitops.decide.scaling import (
    DISABLED,
    MIN,
    PERCENT,
    PODS,
    SCALE_DOWN,
    SCALE_UP,
    Memory,
    Policy,
    Rules,
    decide,
)

NOW = 10_000.0
NOTHING = Memory()


def pods(*values: float | None, request: float = 1000.0, **kw: object) -> list[PodSample]:
    return [PodSample(f"p{i}", v, request, started=NOW - 3600, ready_changed=NOW - 3000,
                      sampled=NOW, **kw)  # type: ignore[arg-type]
            for i, v in enumerate(values)]  # fmt: skip


# -- the documentation's algorithm ----------------------------------------------------------
def test_a_metric_at_twice_its_target_doubles_the_replicas_and_at_half_halves_them() -> None:
    # "if the current metric value is 200m, and the desired value is 100m, the number of
    # replicas will be doubled ... If the current value is instead 50m, you'll halve"
    assert average(pods(200, 200), 100, 2, NOW, cpu=True).replicas == 4
    assert average(pods(50, 50, 50, 50), 100, 4, NOW, cpu=True).replicas == 2


def test_within_the_tolerance_nothing_changes() -> None:
    # "If the ratio is sufficiently close to 1.0 (within a configurable tolerance, 0.1 by
    # default), the control plane skips any scaling action"
    assert utilization(pods(540, 540, 540), 50, 3, NOW).replicas == 3  # 54 %: ratio 1.08
    assert utilization(pods(560, 560, 560), 50, 3, NOW).replicas == 4  # 56 %: ratio 1.12


def test_utilization_is_of_the_summed_requests_in_whole_percent() -> None:
    p = utilization(pods(900, 300, request=1000), 50, 2, NOW)  # 60 % of the requests
    assert (p.replicas, p.utilization, p.value) == (3, 60, 600)


def test_a_pod_without_a_request_makes_utilization_invalid() -> None:
    p = utilization([*pods(500), PodSample("bare", 100, None, started=0)], 50, 2, NOW)
    assert not p.valid and "missing request" in p.error


def test_missing_metrics_count_as_the_target_on_a_scale_down_and_as_nothing_on_a_scale_up() -> None:
    # "assuming those pods were consuming 100% of the desired value in case of a scale down,
    # and 0% in case of a scale up"
    down = utilization(pods(100, 100, None), 50, 3, NOW)  # 10 % measured, one missing
    # with the missing pod at 100 % of its request: (100+100+1000)/3000 = 40 %: ratio 0.8
    assert down.replicas == 3  # ceil(0.8 * 3) = 3: kept
    up = utilization(pods(1000, 1000, None), 50, 3, NOW)  # 100 %: ratio 2
    # the missing pod at 0 %: (1000+1000+0)/3000 = 66 %: ratio 1.33 -> ceil(1.33*3) = 4
    assert up.replicas == 4


def test_unready_pods_count_as_nothing_on_a_scale_up_and_are_left_out_otherwise() -> None:
    unready = PodSample("cold", 900, 1000, ready=False, started=NOW - 10, ready_changed=NOW - 10,
                        sampled=NOW)  # fmt: skip
    up = utilization([*pods(1000, 1000), unready], 50, 3, NOW)
    # its 900 m not counted; at 0: 2000/3000 = 66 % -> ratio 1.33 -> 4
    assert up.replicas == 4
    down = utilization([*pods(200, 200), unready], 50, 3, NOW)  # 20 % of the ready ones
    assert down.replicas == 1  # ceil(0.4 * 2): the unready pod does not count


def test_pending_deleted_and_failed_pods_are_left_out() -> None:
    others = [PodSample("new", None, 1000, phase="Pending"),
              PodSample("old", 5000, 1000, phase="Deleting"),
              PodSample("dead", 5000, 1000, phase="Failed")]  # fmt: skip
    assert utilization([*pods(250, 250), *others], 50, 2, NOW).replicas == 1


def test_a_cpu_sample_taken_before_readiness_settled_is_left_out_while_starting() -> None:
    fresh = PodSample("fresh", 3000, 1000, started=NOW - 20, ready_changed=NOW - 0.5, sampled=NOW)
    assert utilization([*pods(500, 500), fresh], 50, 3, NOW).replicas == 3
    # memory has no such rule: the same sample counts
    assert utilization([*pods(500, 500), fresh], 50, 3, NOW, cpu=False).replicas == 8  # 133 %


def test_no_metrics_at_all_is_an_error_not_a_scale() -> None:
    assert not utilization(pods(None, None), 50, 2, NOW).valid
    assert not average([PodSample("x", None, phase="Pending")], 10, 1, NOW).valid


def test_object_metrics() -> None:
    # Value: 10k requests/s against a 2k target, 3 ready pods -> 15
    assert object_value(10_000, 2_000, 3, 3).replicas == 15
    assert object_value(2_100, 2_000, 3, 3).replicas == 3  # within the tolerance
    # AverageValue: 900 shared by 3 replicas against 100 a pod -> 9, each at 300
    p = object_average(900, 100, 3)
    assert (p.replicas, p.value) == (9, 300)


def test_the_largest_proposal_wins_and_an_unreadable_metric_blocks_a_scale_down() -> None:
    cpu, rps = Proposal(5, 80, 80), Proposal(7, 30)
    assert propose([("cpu", cpu), ("rps", rps)], 4).replicas == 7
    broken = Proposal(4, 0, error="no metrics for any ready pod")
    held = propose([("cpu", Proposal(2, 10, 10)), ("rps", broken)], 4)
    assert held.replicas == 4 and held.errors and not held.invalid
    assert propose([("rps", broken)], 4).invalid


# -- behavior --------------------------------------------------------------------------------
def scaled(desired: int, current: int, *, low: int = 1, high: int = 100,
           up: Rules = SCALE_UP, down: Rules = SCALE_DOWN, memory: Memory = NOTHING,
           now: float = NOW) -> tuple[int, Memory, dict[str, str]]:  # fmt: skip
    s = decide(propose([("cpu resource utilization (percentage of request)",
                         Proposal(desired, 0))], current), current, low, high, up, down,
               memory, now)  # fmt: skip
    return s.replicas, s.memory, {c.type: c.reason for c in s.conditions}


def test_the_default_scale_up_is_4_pods_or_double_every_15_seconds_whichever_is_more() -> None:
    replicas, memory, why = scaled(20, 2)
    assert replicas == 6 and why["ScalingLimited"] == "ScaleUpLimit"  # 2 + 4 > 2 x 2
    again, memory, _ = scaled(20, 6, memory=memory, now=NOW + 5)
    assert again == 6  # within the same 15 s: the period began at 2
    later, _, _ = scaled(20, 6, memory=memory, now=NOW + 16)
    assert later == 12  # a new period: double 6 > 6 + 4


def test_the_default_scale_down_waits_for_300_seconds_of_lower_recommendations() -> None:
    replicas, memory, _ = scaled(5, 5, now=NOW - 1)  # under load: 5 recommended
    for t in range(0, 300, 15):  # the load stopped: every recommendation since is 1
        replicas, memory, why = scaled(1, replicas, memory=memory, now=NOW + t)
        assert replicas == 5 and why["AbleToScale"] == "ScaleDownStabilized", t
    replicas, memory, why = scaled(1, 5, memory=memory, now=NOW + 300)
    assert replicas == 1 and why["AbleToScale"] == "ReadyForNewScale"


def test_a_scale_down_policy_of_4_pods_or_10_percent_uses_the_bigger_change() -> None:
    # "policies: Pods 4 / 60 s, Percent 10 / 60 s ... when the number of pods is more than
    # 40, the percent-based policy will be used for scaling down"
    down = Rules(0, policies=(Policy(PODS, 4, 60), Policy(PERCENT, 10, 60)))
    assert scaled(10, 80, down=down)[0] == 72  # 10 % of 80 = 8 > 4
    assert scaled(10, 30, down=down)[0] == 26  # 4 > 10 % of 30
    assert scaled(10, 30, down=Rules(0, MIN, down.policies))[0] == 27  # selectPolicy: Min


def test_a_disabled_direction_never_scales() -> None:
    off = Rules(0, DISABLED, SCALE_DOWN.policies)
    assert scaled(1, 5, down=off)[0] == 5
    assert scaled(9, 5, up=Rules(0, DISABLED, SCALE_UP.policies))[0] == 5


def test_bounds_min_and_max_and_a_target_scaled_to_zero() -> None:
    replicas, _, why = scaled(500, 50, high=60)
    assert replicas == 60 and why["ScalingLimited"] == "TooManyReplicas"
    replicas, _, why = scaled(1, 3, low=2, down=Rules(0, policies=SCALE_DOWN.policies))
    assert replicas == 2 and why["ScalingLimited"] == "TooFewReplicas"
    assert scaled(5, 120, high=100)[0] == 100  # above max: to max at once
    assert decide(None, 0, 1, 10, SCALE_UP, SCALE_DOWN, Memory(), NOW).replicas == 0


def test_the_rescale_reason_as_kubernetes_events_say_it() -> None:
    metric = "cpu resource utilization (percentage of request)"
    up = decide(propose([(metric, Proposal(4, 90, 90))], 2), 2, 1, 10, SCALE_UP, SCALE_DOWN,
                Memory(), NOW)  # fmt: skip
    assert up.reason == f"{metric} above target"
    down = decide(propose([(metric, Proposal(1, 5, 5))], 2), 2, 1, 10, SCALE_UP,
                  Rules(0, policies=SCALE_DOWN.policies), Memory(), NOW)  # fmt: skip
    assert down.replicas == 1 and down.reason == "All metrics below target"


# -- the proxy's request rate (Pods and Object metrics) -------------------------------------
def test_request_rates_between_two_samples_and_across_a_reset() -> None:
    from gitops.decide.autoscalers import request_rates

    rates, kept = request_rates({}, {"a": 100}, NOW)
    assert rates == {}  # no earlier count: no rate yet
    rates, kept = request_rates(kept, {"a": 250, "b": 7}, NOW + 10)
    assert rates == {"a": 15.0}
    rates, _ = request_rates(kept, {"a": 30, "b": 27}, NOW + 20)  # a's worker was replaced
    assert rates == {"a": 3.0, "b": 2.0}


def _traffic_case(metric: Mapping[str, object], rates: dict[str, float]) -> int:
    """The scale two pods of web ask for under ``metric`` with these request rates."""
    from gitops.act.observe import observe
    from gitops.decide.autoscalers import Sample, autoscalers_of, evaluate, routed
    from gitops.decide.desired import build_desired
    from gitops.decide.endpoints import Endpoint, PortEndpoints
    from gitops.manifests import parse_manifests
    from gitops.nodes.memory import MemoryNode
    from tests.helpers import deployment, dump

    scaler = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
              "metadata": {"name": "web", "namespace": "demo"},
              "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"},
                       "maxReplicas": 10, "metrics": [metric]}}  # fmt: skip
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "demo"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}  # fmt: skip
    desired = build_desired(parse_manifests({"a.yaml": dump(deployment(replicas=2), svc,
                                                            scaler)}), "c1")  # fmt: skip
    node = MemoryNode("n1", {"reg/web:v1"})
    node.ensure_network("demo")
    node.pull("reg/web:v1")
    workload = desired.deployments[0]
    for name in ("web-a", "web-b"):
        node.create_pod(workload.template, name)
    live = observe([node])
    table = [PortEndpoints("demo", "web", "", 80, None, "None",
                           tuple(Endpoint(p.name, "n1", p.ip, 80) for p in live.pods))]  # fmt: skip
    sample = Sample(live.pods, {}, {}, lambda p: True, NOW, frozenset(), rates,
                    routed(desired, table))  # fmt: skip
    (s,) = autoscalers_of(desired)
    scale, reads = evaluate(s, workload, 2, sample, NOTHING, NOW)
    assert reads[0].current != "<unknown>" or scale.replicas == 2
    return scale.replicas


def test_a_pods_metric_is_each_pods_request_rate() -> None:
    rps = {
        "type": "Pods",
        "pods": {
            "metric": {"name": "requests-per-second"},
            "target": {"type": "AverageValue", "averageValue": "10"},
        },
    }
    assert _traffic_case(rps, {"web-a": 30.0, "web-b": 10.0}) == 4  # 20 a pod against 10
    assert _traffic_case(rps, {"web-a": 10.0, "web-b": 10.5}) == 2  # within the tolerance


def test_an_object_metric_is_a_services_pods_together() -> None:
    rps = {
        "type": "Object",
        "object": {
            "describedObject": {"apiVersion": "v1", "kind": "Service", "name": "web"},
            "metric": {"name": "http_requests"},
            "target": {"type": "Value", "value": "50"},
        },
    }
    assert _traffic_case(rps, {"web-a": 60.0, "web-b": 40.0}) == 4  # 100 against 50, 2 ready
    unknown = {
        "type": "Pods",
        "pods": {
            "metric": {"name": "queue-depth"},
            "target": {"type": "AverageValue", "averageValue": "1"},
        },
    }
    assert _traffic_case(unknown, {"web-a": 99.0}) == 2  # not read: the scale holds
