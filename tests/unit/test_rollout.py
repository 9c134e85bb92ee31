"""Rollout arithmetic and its invariants, on plain data with an injected clock."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitops.decide.desired import DesiredDeployment, build_desired
from gitops.decide.health import PodReadiness
from gitops.decide.workloads.rollout import fenceposts, scaled_value, step
from gitops.manifests import parse_manifests
from gitops.model.live import PodInfo
from tests.helpers import deployment, dump


def dep(
    replicas: int, surge: int | str = "25%", unavailable: int | str = "25%", **kw: Any
) -> DesiredDeployment:
    d = build_desired(
        parse_manifests({"a.yaml": dump(deployment(replicas=replicas))}), "c"
    ).deployments[0]
    return dataclasses.replace(d, max_surge=surge, max_unavailable=unavailable, **kw)


def pod(name: str, template: str, created: float = 0.0) -> PodInfo:
    return PodInfo("n", "demo", "web", name, template, "c", (), True)


@pytest.mark.parametrize(
    ("replicas", "surge", "unavailable", "expected"),
    [
        (3, "25%", "25%", (1, 0)),  # surge rounds up, unavailable rounds down
        (4, "25%", "25%", (1, 1)),
        (10, "25%", "25%", (3, 2)),
        (10, 0, 0, (0, 1)),  # both zero: unavailable becomes 1
        (10, "0%", "0%", (0, 1)),
        (5, 2, "50%", (2, 2)),
        (1, "25%", "25%", (1, 0)),
    ],
)
def test_fenceposts_round_as_kubernetes(
    replicas: int, surge: int | str, unavailable: int | str, expected: tuple[int, int]
) -> None:
    assert fenceposts(dep(replicas, surge, unavailable)) == expected


def test_scaled_value() -> None:
    assert scaled_value(3, 10, True) == 3
    assert scaled_value("33%", 10, True) == 4
    assert scaled_value("33%", 10, False) == 3


def test_min_ready_seconds_delays_availability() -> None:
    d = dep(2, surge=1, unavailable=0, min_ready_seconds=10)
    new = [pod("new", "h2")]
    old = [pod("old1", "h1"), pod("old2", "h1")]
    ready = {p.name: PodReadiness(True, 100.0) for p in new + old}
    early = step(d, new, old, ready, now=105.0)
    assert early.remove == ()  # the new pod is ready but not yet for 10 s
    later = step(d, new, old, ready, now=110.0)
    assert [p.name for p, _ in later.remove] == ["old2"]


def test_unavailable_old_pods_go_first() -> None:
    d = dep(3, surge=1, unavailable=0)
    old = [pod("a", "h1"), pod("b", "h1"), pod("c", "h1")]
    ready = {"a": PodReadiness(True), "b": PodReadiness(False), "c": PodReadiness(True)}
    first = step(d, [], old, ready, now=1.0)
    assert first.remove == () and first.create == 1  # as Kubernetes: nothing to spare yet
    new = [pod("n", "h2")]
    ready["n"] = PodReadiness(True)
    second = step(d, new, old, ready, now=2.0)
    assert [p.name for p, _ in second.remove] == ["b"]  # the unavailable old pod goes first


@settings(max_examples=300, deadline=None)
@given(
    replicas=st.integers(0, 12),
    old_count=st.integers(0, 12),
    surge=st.one_of(st.integers(0, 4), st.sampled_from(["0%", "25%", "50%", "100%"])),
    unavailable=st.one_of(st.integers(0, 4), st.sampled_from(["0%", "25%", "50%", "100%"])),
    delays=st.lists(st.integers(0, 3), min_size=40, max_size=40),
)
def test_rolling_update_respects_bounds_and_completes(
    replicas: int,
    old_count: int,
    surge: int | str,
    unavailable: int | str,
    delays: list[int],
) -> None:
    """Simulate passes: new pods become ready after a random number of passes."""
    d = dep(replicas, surge, unavailable)
    max_surge, max_unavailable = fenceposts(d)
    old = [pod(f"old{i}", "h1") for i in range(old_count)]
    current: list[PodInfo] = []
    ready_at: dict[str, int] = {}
    ceiling = max(replicas + max_surge, old_count)
    floor = replicas - max_unavailable
    for t in range(200):
        readiness = {p.name: PodReadiness(True) for p in old}
        readiness.update({p.name: PodReadiness(ready_at[p.name] <= t) for p in current})
        s = step(d, current, old, readiness, now=float(t))
        gone = {p.name for p, _ in s.remove}
        available_before = sum(1 for r in readiness.values() if r.ready)
        removed_available = sum(1 for name in gone if readiness[name].ready)
        # never below replicas - maxUnavailable because of us (unless already below)
        assert available_before - removed_available >= min(floor, available_before)
        old = [p for p in old if p.name not in gone]
        current = [p for p in current if p.name not in gone]
        for i in range(s.create):
            p = pod(f"new{t}-{i}", "h2")
            current.append(p)
            ready_at[p.name] = t + delays[(t + i) % len(delays)]
        assert len(old) + len(current) <= ceiling  # never more than replicas + maxSurge
        if not old and len(current) == replicas and not s.create and not s.remove:
            break
    assert not old and len(current) == replicas
