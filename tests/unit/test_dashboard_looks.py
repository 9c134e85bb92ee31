"""Which look at the nodes the dashboard's pages read (``gitops.serve.dashboard.looks``), on a
fake read model and an injected clock: the reconciler's last look while recent, else one of its
own shared for ``MAX_AGE`` (``WATCHED_MAX_AGE`` while every node's changes are told), never one
older than a move (a step carried out, a change an engine told) or a pass ended after it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from gitops.decide.status import SyncStatus
from gitops.model.live import LiveState
from gitops.serve.dashboard.looks import MAX_AGE, WATCHED_MAX_AGE, Looks
from gitops.serve.readmodel import ReadModel
from gitops.state.moves import Moves


@dataclass
class Model:
    last_look: tuple[float, LiveState, int] | None = None
    status: SyncStatus = field(default_factory=SyncStatus)
    moves: Moves = field(default_factory=Moves)
    looks: int = 0

    def look(self) -> LiveState:
        self.looks += 1
        return LiveState((), {f"look{self.looks}": frozenset()}, {})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def made(model: Model, clock: Clock) -> Looks:
    return Looks(cast(ReadModel, cast(Any, model)), clock)


def test_the_reconcilers_recent_look_is_read_and_the_engines_are_not_asked() -> None:
    clock, passes = Clock(), LiveState((), {"pass": frozenset()}, {})
    model = Model(last_look=(clock.now - 0.5, passes, 0))
    assert made(model, clock).get() == (clock.now - 0.5, passes)
    assert model.looks == 0


def test_without_a_recent_one_a_look_of_its_own_serves_every_page_for_a_while() -> None:
    clock = Clock()
    model = Model(last_look=(clock.now - MAX_AGE - 1, LiveState((), {}, {}), 0))
    looks = made(model, clock)
    first = looks.get()
    clock.now += MAX_AGE / 2
    assert looks.get()[1] is first[1] and model.looks == 1  # many tabs, one look
    clock.now += MAX_AGE
    assert looks.get()[1] is not first[1] and model.looks == 2


def test_a_step_carried_out_after_a_look_puts_it_out_of_date() -> None:
    clock = Clock()
    model = Model(last_look=(clock.now, LiveState((), {}, {}), 0))
    looks = made(model, clock)
    looks.get()
    assert model.looks == 0
    model.moves.moved()  # a long pass made a pod: neither its look nor the last one shows it
    clock.now += 0.1
    looks.get()
    assert model.looks == 1
    looks.get()  # and that one serves until the next step
    assert model.looks == 1


def test_a_pass_that_ended_after_its_own_look_makes_it_look_again() -> None:
    clock = Clock()
    model = Model()  # the last pass changed something: it offers no look
    looks = made(model, clock)
    looks.get()
    clock.now += 0.1
    model.status = SyncStatus(time=clock.now)  # a pass ended, and may have moved pods
    clock.now += 0.1
    looks.get()
    assert model.looks == 2


def test_an_open_page_keeps_the_look_warm_one_look_for_every_tab() -> None:
    clock = Clock()
    model = Model()
    looks = made(model, clock)
    looks.keep_warm()
    assert model.looks == 1  # none was there: it looks
    for _ in range(5):  # five tabs' streams, while the look is young: nothing more
        looks.keep_warm()
    assert model.looks == 1
    clock.now += MAX_AGE - 0.5  # close to expiring: the next stream's call looks again
    looks.keep_warm()
    assert model.looks == 2
    looks.get()  # the page drawn then waits on no engine
    assert model.looks == 2


def test_while_every_nodes_changes_are_told_a_look_serves_until_one_is() -> None:
    clock, model = Clock(), Model()
    model.moves.expect(frozenset({"node1", "node2"}))
    model.moves.stream("node1", True)
    looks = made(model, clock)
    looks.get()
    clock.now += MAX_AGE + 1  # node2's stream is not open: what changed there is not told
    looks.get()
    assert model.looks == 2
    model.moves.stream("node2", True)  # both open now (and a look before that is out of date)
    looks.get()
    assert model.looks == 3
    clock.now += WATCHED_MAX_AGE - 1  # nothing told: the look is as good as a new one
    looks.get()
    assert model.looks == 3
    model.moves.moved()  # an engine told of a container started
    looks.get()
    assert model.looks == 4
    clock.now += WATCHED_MAX_AGE + 1  # the safety net: no look older than that
    looks.get()
    assert model.looks == 5
    model.moves.stream("node2", False)  # a stream ended: back to the short age
    looks.get()
    clock.now += MAX_AGE + 1
    looks.get()
    assert model.looks == 7


def test_moves_are_waited_on_not_polled() -> None:
    import threading

    moves = Moves()
    assert not moves.wait(0, 0.01)
    threading.Timer(0.05, moves.moved).start()
    assert moves.wait(0, 5.0) and moves.count == 1
