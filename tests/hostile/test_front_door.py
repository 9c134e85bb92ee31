"""The front door under faults, on the in-memory node with a real git repository: a pass never
ends the process. Whatever it meets (a bug, an adapter's surprise, a state database that cannot
be written) becomes a Failed pass with a named reason, counted, and retried with back-off;
workloads already running keep running."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gitops.config.settings import NodeConfig, Settings
from gitops.decide.actions import counter_suffix
from gitops.errors import Reason
from gitops.nodes.memory import MemoryNode
from gitops.probing.prober import Prober
from gitops.reconciler import MAX_BACKOFF, Reconciler
from gitops.runner import api_app, compose, listener
from gitops.serve.api import App
from gitops.source.git import GitSource
from gitops.source.triggers import Trigger
from gitops.state.database import SqliteDatabase
from gitops.state.history import History
from tests.conftest import GitRemote
from tests.helpers import deployment

IMAGE = "reg/web:v1"


def make(remote: GitRemote, tmp_path: Path, node: MemoryNode) -> Reconciler:
    settings = Settings(
        repo=str(remote.bare), state_dir=tmp_path / "state", nodes=(NodeConfig(node.name),)
    )
    source = GitSource(settings.repo, settings.state_dir / "source")
    return compose(settings, source, [node], History(settings.state_dir), names=counter_suffix())


@contextlib.contextmanager
def api_of(reconciler: Reconciler) -> Iterator[tuple[str, App]]:
    """The API ``gitops run`` serves, over ``reconciler``, on a free port of 127.0.0.1: its URL
    and its application, for the block."""
    app = api_app(reconciler, Trigger())
    http = listener(reconciler, app, "127.0.0.1", 0)
    http.start()
    try:
        yield f"http://127.0.0.1:{http.address[1]}", app
    finally:
        http.stop()


def passes(reconciler: Reconciler, result: str) -> float:
    for family in text_string_to_metric_families(reconciler.metrics.exposition().decode()):
        for sample in family.samples:
            if sample.name == "gitops_reconcile_total" and sample.labels["result"] == result:
                return sample.value
    return 0.0


@pytest.fixture
def app(remote: GitRemote, tmp_path: Path) -> tuple[Reconciler, MemoryNode]:
    node = MemoryNode("local", {IMAGE})
    remote.write("web.yaml", deployment(image=IMAGE, replicas=2))
    remote.push("web")
    reconciler = make(remote, tmp_path, node)
    for _ in range(5):
        if reconciler.reconcile("test").requeue_after is None:
            break
    assert len(node.list_containers()) == 2
    return reconciler, node


def test_an_unexpected_exception_is_a_failed_pass_retried_with_back_off(
    app: tuple[Reconciler, MemoryNode], monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    reconciler, node = app
    running = {c.id for c in node.list_containers()}

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise TypeError("secret-value-in-the-message")

    monkeypatch.setattr("gitops.reconciler.make_plan", broken)
    caplog.set_level(logging.ERROR)
    delays = []
    for _ in range(12):
        outcome = reconciler.reconcile("test")
        assert outcome.status.result == "Failed" and outcome.status.reason == Reason.INTERNAL
        assert outcome.retry and outcome.requeue_after is not None
        delays.append(outcome.requeue_after)
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0] and delays[-1] == MAX_BACKOFF
    # the status and history say what happened, without the exception's text
    assert "TypeError" in outcome.status.message
    assert "secret-value" not in outcome.status.message
    assert all("secret-value" not in r.message for r in reconciler.history.syncs(20))
    assert reconciler.history.syncs(1)[0].reason == Reason.INTERNAL
    # the traceback is logged, once a pass; the workloads are untouched
    assert caplog.text.count("Traceback") == 12
    assert {c.id for c in node.list_containers()} == running
    assert passes(reconciler, "error") == 12
    monkeypatch.undo()
    assert reconciler.reconcile("test").status.result == "Succeeded"


def test_a_state_database_that_cannot_be_written(
    app: tuple[Reconciler, MemoryNode], remote: GitRemote, tmp_path: Path
) -> None:
    """As when the process has no file descriptor left: ``history.record`` raised
    ``sqlite3.OperationalError`` and the process exited."""
    reconciler, node = app
    assert isinstance(reconciler.history.db, SqliteDatabase)
    db = reconciler.history.db.path
    db.unlink()
    db.mkdir()  # sqlite cannot open a directory: every call now fails
    remote.write("web.yaml", deployment(image=IMAGE, replicas=3))
    remote.push("three")
    outcome = reconciler.reconcile("test")
    assert outcome.status.result == "Failed"
    assert outcome.status.reason == Reason.STATE_UNAVAILABLE and outcome.retry
    db.rmdir()
    History(db.parent)  # the schema again, as a restart would make it
    for _ in range(5):
        if reconciler.reconcile("test").requeue_after is None:
            break
    assert len(node.list_containers()) == 3


def test_an_adapter_surprise_fails_its_deployment_only(
    app: tuple[Reconciler, MemoryNode], remote: GitRemote, monkeypatch: pytest.MonkeyPatch
) -> None:
    reconciler, node = app
    real = node.create_pod

    def create(template: Any, pod: str) -> None:
        if template.deployment == "bad":
            raise OverflowError("timeout doesn't fit into C timeval")
        real(template, pod)

    monkeypatch.setattr(node, "create_pod", create)
    remote.write("bad.yaml", deployment(name="bad", image=IMAGE, replicas=5))
    remote.write("other.yaml", deployment(name="other", image=IMAGE, replicas=1))
    remote.push("two more")
    outcome = reconciler.reconcile("test")
    assert outcome.status.result == "Failed" and outcome.status.reason == Reason.INTERNAL
    assert outcome.applied is not None and outcome.applied.created == 1  # "other"
    # slow start: one failed pod of "bad", not five
    assert sum(1 for line in outcome.errors if "Deployment/bad" in line) == 1


def test_the_run_loop_lives_through_a_pass_that_raises(
    app: tuple[Reconciler, MemoryNode], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitops import runner
    from gitops.source.triggers import Poller, Trigger

    reconciler, _ = app
    monkeypatch.setattr(reconciler, "reconcile", lambda *a, **k: 1 / 0)
    poller = Poller(Trigger(), 60.0)
    poller.start()
    try:
        runner._pass(reconciler, poller, {"poll"})  # logged; a retry is scheduled
        job = poller._scheduler.get_job("retry")
        assert job is not None
    finally:
        poller.stop()


def test_a_probe_round_that_raises_does_not_end_the_prober(monkeypatch: pytest.MonkeyPatch) -> None:
    prober = Prober({}, lambda: 0.0)
    ticks = []

    def tick() -> None:
        ticks.append(1)
        raise RuntimeError("boom")

    monkeypatch.setattr(prober, "tick", tick)
    monkeypatch.setattr("gitops.probing.prober.TICK", 0.01)
    stop = threading.Event()
    prober.start(stop)
    try:
        deadline = 200
        while len(ticks) < 3 and deadline:
            threading.Event().wait(0.01)
            deadline -= 1
        assert len(ticks) >= 3
    finally:
        stop.set()


def test_replicas_beyond_what_nodes_hold_are_pending_not_a_flood(
    app: tuple[Reconciler, MemoryNode], remote: GitRemote
) -> None:
    """replicas: 100000 is a valid commit; a node holds maxPods (110) pods, made in slow-start
    batches, and the rest are Pending with the scheduler's reason."""
    reconciler, node = app
    remote.write("web.yaml", deployment(image=IMAGE, replicas=100_000))
    remote.push("a lot")
    outcome = reconciler.reconcile("test")
    assert outcome.applied is not None and outcome.applied.created == 108  # 110 less the 2
    assert len({c.labels["io.gitops.pod"] for c in node.list_containers()}) == 110
    [row] = [r for r in outcome.status.resources if r.kind == "Deployment"]
    assert "99890 pod(s) Pending: 0/1 nodes are available: 1 Too many pods." in row.message
    again = reconciler.reconcile("test")
    assert again.applied is None or again.applied.created == 0


@pytest.mark.parametrize("fail_at", [None, 1, 4, 9])
def test_slow_start_never_starts_more_than_twice_what_started_well_plus_one(
    fail_at: int | None,
) -> None:
    """The ReplicaSet controller's slow start, pipelined: at every start, started <=
    2 x succeeded + 1; after a failure nothing more is submitted for the deployment."""
    from gitops.act.apply import apply_plan
    from gitops.decide.desired import build_desired
    from gitops.decide.plan import make_plan
    from gitops.manifests import parse_manifests
    from gitops.model.live import LiveState
    from tests.helpers import dump

    node = MemoryNode("local", {IMAGE})
    real = node.create_pod
    lock = threading.Lock()
    calls = {"begun": 0, "ok": 0}

    def create(template: Any, pod: str) -> None:
        with lock:
            calls["begun"] += 1
            assert calls["begun"] <= 2 * calls["ok"] + 1
            number = calls["begun"]
        threading.Event().wait(0.01)
        if number == fail_at:
            raise OverflowError("boom")
        real(template, pod)
        with lock:
            calls["ok"] += 1

    node.create_pod = create  # type: ignore[method-assign]
    desired = build_desired(
        parse_manifests({"d.yaml": dump(deployment(image=IMAGE, replicas=40))}), "c" * 40
    )
    plan = make_plan(desired, LiveState((), {}, {}), ["local"], counter_suffix())
    result = apply_plan(plan, {"local": node}, desired, workers=8)
    if fail_at is None:
        assert result.created == 40 and calls["begun"] == 40
    elif fail_at == 1:
        assert result.created == 0 and calls["begun"] == 1  # one attempt, not forty
    else:
        assert result.created == calls["ok"] and calls["begun"] < 40
        assert calls["begun"] <= 2 * calls["ok"] + 1
