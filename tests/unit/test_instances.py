"""Where a container's instances begin in its log (``gitops.nodes.instances``), on plain
engine states: boundaries the node wrote down, and the engine's times for a container it
knows nothing of."""

from __future__ import annotations

from gitops.nodes.instances import MAX_CONTAINERS, NOTHING, START_MARGIN, Instances

NEVER = "0001-01-01T00:00:00Z"


def state(started: str, finished: str = NEVER, running: bool = False) -> dict[str, object]:
    return {"StartedAt": started, "FinishedAt": finished, "Running": running}


T0_S = 1796292000.0  # 2026-12-03T10:00:00Z


def at(seconds: float) -> str:
    return f"2026-12-03T10:00:{seconds:09.6f}Z"


def test_a_container_made_here_and_never_restarted_has_its_whole_log_and_no_previous() -> None:
    i = Instances()
    i.created("c")
    exited = state(at(5), at(9))  # its first lines came long before the recorded start
    assert i.span("c", exited, previous=False) == (None, None)
    assert i.span("c", exited, previous=True) == NOTHING


def test_each_restart_here_moves_the_boundary_to_the_previous_instances_end() -> None:
    i = Instances()
    i.created("c")
    i.stopped(state(at(5), at(9)), "c")  # read while stopped, before the start: it ended at 9
    assert i.span("c", state(at(10), at(20)), previous=False) == (T0_S + 9, None)
    assert i.span("c", state(at(10), at(20)), previous=True) == (None, T0_S + 9)
    i.stopped(state(at(10), at(20)), "c")
    assert i.span("c", state(at(30), at(40)), previous=True) == (T0_S + 9, T0_S + 20)
    assert i.span("c", state(at(30), at(40)), previous=False) == (T0_S + 20, None)


def test_a_first_start_is_no_boundary_nor_is_a_look_at_a_running_one() -> None:
    i = Instances()
    i.created("c")
    i.stopped(state(NEVER), "c")  # an app container started after init: it never ran before
    assert i.span("c", state(at(1), at(2)), previous=True) == NOTHING
    i.stopped(state(at(1), at(0.5), running=True), "c")  # not stopped after all: no boundary
    assert i.span("c", state(at(1), at(2)), previous=True) == NOTHING


def test_a_container_unknown_here_falls_back_to_the_engines_times() -> None:
    i = Instances()
    running = state(at(10), at(9))  # restarted: its previous instance finished at 9
    assert i.span("x", running, previous=False) == (T0_S + 9, None)
    assert i.span("x", running, previous=True) == (None, T0_S + 9)
    exited = state(at(10), at(12))
    assert i.span("x", exited, previous=False) == (T0_S + 10 - START_MARGIN, None)
    assert i.span("x", {"StartedAt": "garbage"}, previous=False) == (None, None)


def test_an_unknown_container_restarted_here_has_no_earlier_bound_for_previous() -> None:
    i = Instances()
    i.stopped(state(at(5), at(9)), "x")
    assert i.span("x", state(at(10), at(11)), previous=True) == (None, T0_S + 9)


def test_memory_is_bounded_least_recently_used_first() -> None:
    i = Instances()
    i.created("old")
    for n in range(MAX_CONTAINERS):
        if n == 10:
            i.span("old", state(at(1)), previous=True)  # a read keeps it
        i.created(f"c{n}")
    assert i.span("old", state(at(1), at(2)), previous=True) == NOTHING
    assert i.span("c0", state(at(5), at(6)), previous=False) != (None, None)  # forgotten
