"""Probe bookkeeping and back-off with an injected clock: no sleeping."""

from __future__ import annotations

from gitops.decide.health import Backoff
from gitops.model.labels import INFRA_NAME, L_CONTAINER, L_INFRA, L_PROBES, encode_probes
from gitops.model.live import ContainerInfo, PodInfo
from gitops.model.templates import ContainerSpec, Port, ProbeSpec
from gitops.probing.probes import (
    LIVENESS,
    READINESS,
    STARTUP,
    ProbeResult,
    ProbeTracker,
    exec_result,
    probe_command,
)


def pod_with(
    readiness: ProbeSpec | None = None,
    liveness: ProbeSpec | None = None,
    startup: ProbeSpec | None = None,
) -> PodInfo:
    spec = ContainerSpec(
        "web",
        "img",
        "IfNotPresent",
        ports=(Port(8080, name="http"),),
        readiness=readiness,
        liveness=liveness,
        startup=startup,
    )
    infra = ContainerInfo(
        "n", "pause", "p_POD", {L_INFRA: "true", L_CONTAINER: INFRA_NAME}, "running"
    )
    app = ContainerInfo(
        "n", "app", "p_web", {L_CONTAINER: "web", L_PROBES: encode_probes(spec)}, "running"
    )
    return PodInfo("n", "demo", "web", "p", "h", "c", (infra, app))


def run_due(tracker: ProbeTracker, now: float, ok: bool = True) -> list[str]:
    kinds = []
    for task in tracker.due(now):
        tracker.record(task.container_id, task.kind, ProbeResult(ok, "" if ok else "refused"), now)
        kinds.append(task.kind)
    return kinds


def test_commands_run_in_the_pod_against_its_loopback() -> None:
    http = ProbeSpec("http", 8080, "/healthz", headers=(("X-Probe", "1"),), timeout=2)
    assert probe_command(http) == (
        "infra",
        (
            "timeout",
            "2",
            "wget",
            "-q",
            "-O",
            "/dev/null",
            "--header",
            "X-Probe: 1",
            "http://127.0.0.1:8080/healthz",
        ),
    )
    assert probe_command(ProbeSpec("tcp", 5432)) == (
        "infra",
        ("timeout", "1", "nc", "-w", "1", "127.0.0.1", "5432"),
    )
    assert probe_command(ProbeSpec("exec", command=("cat", "/ready"))) == ("app", ("cat", "/ready"))


def test_named_ports_are_resolved_on_the_label() -> None:
    pod = pod_with(readiness=ProbeSpec("http", "http", "/"))
    tracker = ProbeTracker()
    tracker.sync([pod], 0.0)
    [task] = tracker.due(0.0)
    assert task.target_id == "pause" and task.command[-1] == "http://127.0.0.1:8080/"


def test_readiness_thresholds_delay_and_period() -> None:
    tracker = ProbeTracker()
    tracker.sync(
        [
            pod_with(
                readiness=ProbeSpec(
                    "http",
                    8080,
                    initial_delay=5,
                    period=2,
                    success_threshold=2,
                    failure_threshold=2,
                )
            )
        ],
        0.0,
    )
    assert tracker.ready("app") is False  # not ready until probed
    assert run_due(tracker, 4.0) == []  # initial delay
    assert run_due(tracker, 5.0) == [READINESS]
    assert tracker.ready("app") is False  # one success of two
    assert run_due(tracker, 6.0) == []  # period 2 s
    run_due(tracker, 7.0)
    assert tracker.ready("app") is True
    run_due(tracker, 9.0, ok=False)
    assert tracker.ready("app") is True  # one failure of two
    run_due(tracker, 11.0, ok=False)
    assert tracker.ready("app") is False
    assert tracker.reason("app") == "Readiness probe failed: refused"
    # Each failed run is told once, as the kubelet records an Unhealthy event a failed run.
    assert tracker.take_unhealthy() == {"app": [("Readiness probe failed: refused", 2)]}
    assert tracker.take_unhealthy() == {}


def test_probe_is_never_run_twice_at_once() -> None:
    tracker = ProbeTracker()
    tracker.sync([pod_with(readiness=ProbeSpec("http", 8080, period=1))], 0.0)
    assert len(tracker.due(0.0)) == 1
    assert tracker.due(5.0) == []  # the first has not answered yet


def test_liveness_failure_asks_for_a_restart_and_forget_starts_over() -> None:
    tracker = ProbeTracker()
    tracker.sync([pod_with(liveness=ProbeSpec("http", 8080, failure_threshold=3))], 0.0)
    assert tracker.ready("app") is None  # no readiness probe: the engine decides
    for t in (0.0, 10.0):
        run_due(tracker, t, ok=False)
    assert tracker.failing() == {}
    run_due(tracker, 20.0, ok=False)
    assert tracker.failing() == {"app": "Liveness probe failed: refused"}
    tracker.forget("app")
    assert tracker.failing() == {}


def test_startup_probe_gates_the_others() -> None:
    tracker = ProbeTracker()
    tracker.sync(
        [
            pod_with(
                startup=ProbeSpec("tcp", 8080, period=1, failure_threshold=30),
                readiness=ProbeSpec("http", 8080, period=1),
                liveness=ProbeSpec("http", 8080, period=1),
            )
        ],
        0.0,
    )
    assert run_due(tracker, 0.0, ok=False) == [STARTUP]
    assert tracker.ready("app") is False
    assert run_due(tracker, 1.0) == [STARTUP]
    assert sorted(run_due(tracker, 1.0)) == [LIVENESS, READINESS]
    assert tracker.ready("app") is True


def test_containers_not_running_are_forgotten() -> None:
    tracker = ProbeTracker()
    pod = pod_with(readiness=ProbeSpec("http", 8080))
    tracker.sync([pod], 0.0)
    tracker.sync([], 1.0)
    assert tracker.ready("app") is None and tracker.due(2.0) == []


def test_backoff_doubles_caps_and_resets() -> None:
    b = Backoff(initial=10, maximum=40, reset_after=600)
    assert b.not_before("c", 0.0) == 0.0  # the first restart is immediate
    b.record("c", 0.0)
    assert b.not_before("c", 1.0) == 10.0
    b.record("c", 10.0)
    assert b.not_before("c", 11.0) == 30.0
    b.record("c", 30.0)
    b.record("c", 70.0)
    assert b.not_before("c", 71.0) == 110.0  # capped at 40 s
    assert b.count("c") == 4
    assert b.not_before("c", 70.0 + 600) == 670.0 and b.count("c") == 0  # ran 10 min: reset


def test_readiness_carried_over_a_restart_holds_until_a_probe_says_otherwise() -> None:
    readiness = ProbeSpec("http", 8080, "/healthz", period=10, initial_delay=30)
    startup = ProbeSpec("http", 8080, "/healthz", period=1)
    tracker = ProbeTracker()
    tracker.carry({"app"})
    tracker.sync([pod_with(readiness=readiness, startup=startup)], now=100.0)
    assert tracker.ready("app") is True  # no empty Service while the first probe is pending
    assert tracker.ready_containers() == {"app"}
    assert run_due(tracker, 100.0, ok=False) == [READINESS]  # confirmed at once, not in 30 s
    assert tracker.ready("app") is True  # one failure is below failureThreshold (3)
    for t in (110.0, 120.0):
        run_due(tracker, t, ok=False)
    assert tracker.ready("app") is False

    fresh = ProbeTracker()
    fresh.carry({"app"})
    fresh.sync([], now=0.0)  # not running at the first look: the carried verdict is dropped
    fresh.sync([pod_with(readiness=readiness)], now=1.0)
    assert fresh.ready("app") is False


def test_failed_is_said_only_once_failure_threshold_is_reached() -> None:
    """What a fail-fast rollout acts on: not a probe still undecided, not one failure of three."""
    tracker = ProbeTracker()
    tracker.sync([pod_with(readiness=ProbeSpec("http", 8080, period=1, failure_threshold=3))], 0.0)
    assert tracker.failed("app") == ""  # not probed yet
    run_due(tracker, 1.0, ok=False)  # (after its first period: see the next test)
    run_due(tracker, 2.0, ok=False)
    assert tracker.ready("app") is False and tracker.failed("app") == ""  # 2 of 3
    run_due(tracker, 3.0, ok=False)
    assert tracker.failed("app") == "Readiness probe failed 3 time(s): refused"
    run_due(tracker, 4.0)
    assert tracker.failed("app") == ""  # passing again
    assert tracker.failed("unknown") == ""


def test_a_starting_container_is_probed_again_soon_and_its_failures_do_not_count() -> None:
    """Docker's start interval: in its first period a container still binding its port is
    probed every START_INTERVAL, not failed (failureThreshold 1 would fail it at once)."""
    tracker = ProbeTracker()
    spec = ProbeSpec("http", 8080, initial_delay=0, period=1, failure_threshold=1)
    tracker.sync([pod_with(readiness=spec)], 10.0)
    assert run_due(tracker, 10.0, ok=False) == [READINESS]
    assert tracker.failed("app") == "" and tracker.ready("app") is False
    assert run_due(tracker, 10.05) == []  # the start interval, not yet
    assert run_due(tracker, 10.1) == [READINESS]  # and up: ready 0.1 s after, not 1 s
    assert tracker.ready("app") is True
    run_due(tracker, 11.1, ok=False)  # once it has been ready, failures count as always
    assert tracker.ready("app") is False and "failed 1 time(s)" in tracker.failed("app")
    late = ProbeTracker()  # never up within its first period: failing, as Kubernetes says
    late.sync([pod_with(readiness=spec)], 0.0)
    for t in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        run_due(late, t, ok=False)
    assert late.failed("app") == ""
    run_due(late, 1.0, ok=False)
    assert late.failed("app") == "Readiness probe failed 1 time(s): refused"


def test_an_answered_failure_counts_even_while_the_container_starts() -> None:
    """A server that answers 404 is up and says no: no start interval for it (a fail-fast
    rollout of an image without its health endpoint fails on the first probe)."""
    tracker = ProbeTracker()
    spec = ProbeSpec("http", 8080, initial_delay=0, period=1, failure_threshold=1)
    tracker.sync([pod_with(readiness=spec)], 10.0)
    [task] = tracker.due(10.0)
    assert tracker.record(task.container_id, task.kind, ProbeResult(False, "HTTP 404", True), 10.0)
    assert tracker.failed("app") == "Readiness probe failed 1 time(s): HTTP 404"
    assert tracker.due(10.5) == []  # and the next probe waits its period, as Kubernetes does
    assert [t.kind for t in tracker.due(11.0)] == [READINESS]


def test_what_counts_as_answered_from_a_probe_run_in_the_pod() -> None:
    assert exec_result(0, "") == ProbeResult(True, "")
    refused = "wget: can't connect to remote host (127.0.0.1): Connection refused"
    assert exec_result(1, refused) == ProbeResult(False, refused)
    not_found = "wget: server returned error: HTTP/1.0 404 Not Found"
    assert exec_result(1, not_found) == ProbeResult(False, not_found, answered=True)


def test_a_task_carries_the_spec_and_the_pods_address_for_a_probe_from_here() -> None:
    pod = pod_with(readiness=ProbeSpec("http", "http", "/healthz"))
    infra = ContainerInfo(
        "n", "pause", "p_POD", {L_INFRA: "true", L_CONTAINER: INFRA_NAME}, "running", ip="10.1.0.5"
    )
    pod = PodInfo("n", "demo", "web", "p", "h", "c", (infra, pod.containers[1]))
    tracker = ProbeTracker()
    tracker.sync([pod], 0.0)
    [task] = tracker.due(0.0)
    assert task.ip == "10.1.0.5" and task.spec is not None and task.spec.port == 8080
