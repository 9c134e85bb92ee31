"""A backend's fixed server slots, changed one at a time through HAProxy's runtime API.

Pure; shared by the NodePort frontends (``gitops.traffic.balancer``) and the Ingress pools
(``gitops.traffic.httpconfig``). Freed slots are reused oldest-freed first, so a slot still
draining its last connections is the last to get a new address.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from gitops.decide.endpoints import Endpoint

MIN_SLOTS = 8
PLACEHOLDER = "127.0.0.1:1"  # a free slot's address; the slot is in maintenance, never used


def slots_for(count: int) -> int:
    """Room for the endpoints twice over (a rolling update surges), as a power of two."""
    n = MIN_SLOTS
    while n < 2 * count:
        n *= 2
    return n


@dataclass
class Slots:
    """A backend's fixed server slots: the endpoint address in each (None: free)."""

    backend: str
    slots: list[str | None]
    pods: dict[str, str] = field(default_factory=dict)  # address -> pod
    free: deque[int] = field(default_factory=deque)

    @classmethod
    def build(cls, backend: str, endpoints: Sequence[Endpoint]) -> Slots:
        addrs = [f"{e.ip}:{e.port}" for e in endpoints]
        size = slots_for(len(addrs))
        return cls(
            backend,
            [*addrs, *([None] * (size - len(addrs)))],
            {f"{e.ip}:{e.port}": e.pod for e in endpoints},
            deque(range(len(addrs), size)),
        )

    def active(self) -> dict[str, int]:
        return {a: i for i, a in enumerate(self.slots) if a is not None}

    def fits(self, endpoints: Sequence[Endpoint]) -> bool:
        addrs = {f"{e.ip}:{e.port}" for e in endpoints}
        return len(addrs - self.active().keys()) <= len(self.free)

    def follow(self, endpoints: Sequence[Endpoint]) -> tuple[list[str], list[str]]:
        """(commands adding, commands removing) that make the slots hold ``endpoints``."""
        addrs = {f"{e.ip}:{e.port}": e.pod for e in endpoints}
        active = self.active()
        adds: list[str] = []
        for addr in sorted(addrs.keys() - active.keys()):
            slot = self.free.popleft()
            self.slots[slot] = addr
            ip, _, p = addr.rpartition(":")
            adds += [
                f"set server {self.backend}/s{slot} addr {ip} port {p}",
                f"set server {self.backend}/s{slot} state ready",
            ]
        removes = self.release(active.keys() - addrs.keys())
        self.pods = addrs
        return adds, removes

    def release(self, addrs: Collection[str]) -> list[str]:
        commands = []
        for addr in sorted(addrs):
            slot = self.active()[addr]
            self.slots[slot] = None
            self.free.append(slot)
            commands.append(f"set server {self.backend}/s{slot} state maint")
        return commands

    def leaving(self, pods: Collection[str]) -> set[str]:
        return {a for a in self.active() if self.pods.get(a) in pods}

    def servers(self) -> list[str]:
        return [
            f"    server s{i} {PLACEHOLDER} disabled" if addr is None else f"    server s{i} {addr}"
            for i, addr in enumerate(self.slots)
        ]
