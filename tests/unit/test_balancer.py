"""The service proxy's decisions, on plain data: what changes by runtime command, what reloads.

A small model of HAProxy (servers per backend, from the rendered configuration, then changed by
the runtime commands) checks that whatever sequence of endpoint tables comes, the servers in use
are exactly the ready endpoints, and a port with none refuses.
"""

from __future__ import annotations

import re
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from gitops.decide.endpoints import Endpoint, PortEndpoints
from gitops.traffic.balancer import (
    MIN_SLOTS,
    Balancer,
    Change,
    default_threads,
    render,
    slots_for,
)


def table(port: int, *ips: str, affinity: str = "None") -> PortEndpoints:
    eps = tuple(Endpoint(pod=f"pod-{ip}", node="n1", ip=ip, port=8080) for ip in ips)
    return PortEndpoints("ns", "web", "http", 80, port, affinity, eps)


class FakeHaproxy:
    """Servers and frontends as HAProxy would hold them after a reload and commands."""

    def __init__(self) -> None:
        self.servers: dict[str, dict[str, tuple[str, bool]]] = {}  # backend -> slot -> state
        self.enabled: dict[str, bool] = {}

    def load(self, config: str) -> None:
        self.servers, self.enabled, backend = {}, {}, ""
        for line in config.splitlines():
            if m := re.match(r"frontend (\S+)", line):
                self.enabled[m.group(1)] = True
            elif m := re.match(r"backend (\S+)", line):
                backend = m.group(1)
                self.servers[backend] = {}
            elif m := re.match(r"\s+server (\S+) (\S+)( disabled)?$", line):
                self.servers[backend][m.group(1)] = (m.group(2), not m.group(3))

    def run(self, command: str) -> None:
        if m := re.fullmatch(r"set server (\S+)/(\S+) addr (\S+) port (\d+)", command):
            _, ready = self.servers[m.group(1)][m.group(2)]
            self.servers[m.group(1)][m.group(2)] = (f"{m.group(3)}:{m.group(4)}", ready)
        elif m := re.fullmatch(r"set server (\S+)/(\S+) state (ready|maint)", command):
            addr, _ = self.servers[m.group(1)][m.group(2)]
            self.servers[m.group(1)][m.group(2)] = (addr, m.group(3) == "ready")
        elif m := re.fullmatch(r"(enable|disable) frontend (\S+)", command):
            assert m.group(2) in self.enabled, "a frontend must exist to be toggled"
            self.enabled[m.group(2)] = m.group(1) == "enable"
        else:
            raise AssertionError(f"unknown command {command!r}")

    def apply(self, balancer: Balancer, change: Change) -> None:
        if change.reload:
            self.load(render(balancer.frontends.values(), ["127.0.0.1"], "/x.sock", 1000))
        for c in change.commands:
            self.run(c)

    def in_use(self, port: int) -> set[str] | None:
        """Addresses a new connection to ``port`` may reach; None when nothing listens."""
        if not self.enabled.get(f"f{port}", False):
            return None
        return {a for a, ready in self.servers[f"b{port}"].values() if ready}


def test_first_table_reloads_and_the_configuration_lists_every_endpoint() -> None:
    b = Balancer()
    change = b.update([table(30080, "10.0.0.1", "10.0.0.2")])
    assert change.reload
    config = render(b.frontends.values(), ["127.0.0.1", "127.0.0.2"], "/run/admin.sock", 1000)
    assert "bind 127.0.0.1:30080\n    bind 127.0.0.2:30080" in config
    assert "server s0 10.0.0.1:8080\n" in config and "server s1 10.0.0.2:8080\n" in config
    assert config.count(" disabled\n") == MIN_SLOTS - 2
    assert "balance roundrobin" in config and "stats socket /run/admin.sock" in config


def test_a_new_endpoint_goes_in_before_an_old_one_leaves_without_a_reload() -> None:
    b = Balancer()
    b.update([table(30080, "10.0.0.1", "10.0.0.2")])
    change = b.update([table(30080, "10.0.0.2", "10.0.0.3")])
    assert not change.reload
    assert change.commands == (
        "set server b30080/s2 addr 10.0.0.3 port 8080",
        "set server b30080/s2 state ready",
        "set server b30080/s0 state maint",
    )


def test_freed_slots_are_reused_last_so_a_draining_one_is_left_alone() -> None:
    b = Balancer()
    b.update([table(30080, "10.0.0.1")])
    b.update([table(30080)])  # s0 freed: goes to the back of the queue
    change = b.update([table(30080, "10.0.0.9")])
    assert "set server b30080/s1 addr 10.0.0.9 port 8080" in change.commands


def test_no_endpoint_disables_the_frontend_and_the_first_one_back_enables_it() -> None:
    b = Balancer()
    b.update([table(30080, "10.0.0.1")])
    assert b.update([table(30080)]).commands == (
        "set server b30080/s0 state maint",
        "disable frontend f30080",
    )
    assert b.listening() == []
    back = b.update([table(30080, "10.0.0.1")])
    assert back.commands[-1] == "enable frontend f30080" and not back.reload
    assert b.listening() == [30080]


def test_drop_takes_a_pod_out_of_every_port_and_names_its_addresses() -> None:
    b = Balancer()
    b.update([table(30080, "10.0.0.1", "10.0.0.2"), table(30081, "10.0.0.1")])
    change, addrs = b.drop({"pod-10.0.0.1"})
    assert addrs == {"10.0.0.1:8080"}
    assert change.commands == (
        "set server b30080/s0 state maint",
        "set server b30081/s0 state maint",
        "disable frontend f30081",
    )


def test_shape_changes_reload() -> None:
    b = Balancer()
    b.update([table(30080, "10.0.0.1")])
    assert b.update([table(30080, "10.0.0.1", affinity="ClientIP")]).reload
    assert "balance source" in render(b.frontends.values(), ["127.0.0.1"], "/s", 10)
    many = [f"10.0.1.{i}" for i in range(MIN_SLOTS + 1)]
    assert b.update([table(30080, *many)]).reload
    assert len(b.frontends[30080].slots) == slots_for(len(many)) >= 2 * len(many)
    assert b.update([]).reload  # a port removed stops listening for good
    assert b.frontends == {}


def test_a_new_port_without_endpoints_waits_for_its_first() -> None:
    b = Balancer()
    assert b.update([table(30080)]).empty
    assert b.update([table(30080, "10.0.0.1")]).reload


addresses = st.sets(st.sampled_from([f"10.0.0.{i}" for i in range(1, 25)]), max_size=20)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(addresses, addresses, st.booleans()), min_size=1, max_size=12))
def test_any_sequence_of_tables_leaves_exactly_the_ready_endpoints_in_use(
    steps: list[tuple[set[str], set[str], bool]],
) -> None:
    b, proxy = Balancer(), FakeHaproxy()
    for first, second, affinity in steps:
        tables = [
            table(30080, *sorted(first), affinity="ClientIP" if affinity else "None"),
            table(30081, *sorted(second)),
        ]
        proxy.apply(b, b.update(tables))
        for port, ips in ((30080, first), (30081, second)):
            want = {f"{ip}:8080" for ip in ips}
            assert proxy.in_use(port) == (want or None)
        if first:
            victim = sorted(first)[0]
            change, gone = b.drop({f"pod-{victim}"})
            proxy.apply(b, change)
            assert gone == {f"{victim}:8080"}
            assert proxy.in_use(30080) == ({f"{ip}:8080" for ip in first - {victim}} or None)
            # The next pass's table no longer has the dropped pod: it stays out.
            first.discard(victim)
            proxy.apply(b, b.update([table(30080, *sorted(first)), table(30081, *sorted(second))]))
            assert proxy.in_use(30080) == ({f"{ip}:8080" for ip in first} or None)


def test_the_proxy_leaves_half_the_cores_to_the_pods() -> None:
    assert [default_threads(n) for n in (None, 0, 1, 2, 3, 8)] == [1, 1, 1, 1, 1, 4]
    b = Balancer()
    b.update([table(30080, "10.0.0.1")])
    assert "    nbthread 3\n" in render(b.frontends.values(), ["127.0.0.1"], "/s", 10, threads=3)
    # None: HAProxy's own default (a thread per core), so no line at all
    assert "nbthread" not in render(b.frontends.values(), ["127.0.0.1"], "/s", 10)


def test_a_bad_thread_count_is_refused_before_anything_starts() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "gitops", "run", "--repo", "x", "--proxy-threads", "many"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2 and "'many' is not a thread count from 0 to 64" in run.stderr
    assert "Traceback" not in run.stderr
