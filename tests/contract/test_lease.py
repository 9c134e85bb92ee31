"""Leader election and fencing on the real PostgreSQL server (``gitops.state.lease``).

Two leases of one name, as two processes would hold them, each with its own clock: one leads,
the other follows; a holder whose clock ran past the renew deadline (a SIGSTOP, a paused VM)
may not act, its state writes are refused by the database, its engine calls by the fenced
node, and a candidate takes over once the lease expired, ending the frozen holder's session."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops.errors import NotLeader
from gitops.nodes.base import Node
from gitops.nodes.fenced import CHANGES, READS, fenced
from gitops.nodes.memory import MemoryNode
from gitops.state.database import open_database
from gitops.state.history import History
from gitops.state.lease import Lease, Timing
from gitops.state.postgres import PostgresDatabase

FAST = Timing(duration=1.0, renew_deadline=0.7, retry=0.1)


class Clock:
    def __init__(self) -> None:
        self.frozen_for = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.frozen_for


@pytest.fixture
def pair(postgres_url: str) -> Iterator[tuple[History, Lease, Clock, History, Lease, Clock]]:
    made = []
    for who in ("a", "b"):
        db = open_database(postgres_url, Path("/nonexistent"))
        assert isinstance(db, PostgresDatabase)
        history = History(db)
        clock = Clock()
        lease = Lease(db, "gitops-test", who, f"http://{who}.test:8080", FAST, clock)
        db.fence = lease.fence
        made.append((history, lease, clock))
    (ha, la, ca), (hb, lb, cb) = made
    yield ha, la, ca, hb, lb, cb
    for lease in (la, lb):
        lease.release()
        lease.db.close()


def test_one_leads_the_other_follows_and_writes_only_the_leaders(
    pair: tuple[History, Lease, Clock, History, Lease, Clock],
) -> None:
    ha, a, _, hb, b, _ = pair
    assert a.step() is True and a.term == 1
    assert b.step() is False and b.term == 0
    assert b.leader is not None and (b.leader.holder, b.leader.address) == (
        "a", "http://a.test:8080")  # fmt: skip
    ha.put("cordons", '["n1"]')  # the leader writes
    with pytest.raises(NotLeader, match="held by a"):
        hb.put("cordons", "[]")  # a follower's write is refused
    assert hb.get("cordons") == '["n1"]'  # reads are anyone's
    for _ in range(5):  # renewals keep it
        time.sleep(FAST.retry)
        assert a.step() is True and b.step() is False
    assert a.term == 1


def test_a_frozen_leader_is_fenced_and_a_candidate_takes_over(
    pair: tuple[History, Lease, Clock, History, Lease, Clock],
) -> None:
    ha, a, clock_a, hb, b, _ = pair
    assert a.step() is True
    node = MemoryNode("n1", {"img"})
    guarded = fenced(node, a.check)
    guarded.ensure_network("demo")  # while it leads, changes go through
    assert "demo" in node.list_networks()

    clock_a.frozen_for = 5.0  # a's clock ran on while the process was stopped
    time.sleep(FAST.duration + 0.1)  # and nobody renewed: the lease expired
    with pytest.raises(NotLeader):
        guarded.remove_network("demo")  # no engine change after waking up
    assert "demo" in node.list_networks()
    with pytest.raises(NotLeader):
        ha.put("pins", "{}")  # nor a state write
    assert guarded.list_networks()  # reads still go through

    assert b.step() is True and b.term == 2  # b took over: a's session was ended
    hb.put("pins", '{"b": 1}')
    clock_a.frozen_for = 0.0  # even with a sane clock again, a's term is over
    a._renewed = time.monotonic()  # as if its last renewal were recent: the database says no
    with pytest.raises(NotLeader, match="term 1 is over"):
        ha.put("pins", "{}")
    assert a.step() is False and a.term == 0  # its renewal matches nothing: it steps down
    assert hb.get("pins") == '{"b": 1}'


def test_a_released_lease_is_taken_at_the_next_try(
    pair: tuple[History, Lease, Clock, History, Lease, Clock],
) -> None:
    _, a, _, _, b, _ = pair
    assert a.step() is True and b.step() is False
    a.release()  # a clean stop
    assert b.step() is True and b.term == 2 and a.leading is False


def test_every_node_method_is_classified_as_a_change_or_a_read() -> None:
    """A method added to the Node interface must say whether the fence guards it."""
    methods = {m for m in vars(Node) if not m.startswith("_")}
    assert methods <= CHANGES | READS, methods - CHANGES - READS
    assert not CHANGES & READS
