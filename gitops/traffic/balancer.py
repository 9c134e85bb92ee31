"""What the service proxy holds, and the least change that gets it there.

Pure; the HAProxy adapter (``gitops.traffic.proxy``) carries out what this decides. Each NodePort is
one frontend and one backend of fixed server slots. An endpoint that comes or goes changes one
slot through the runtime API (no reload, no new process, open connections untouched). Only a
change of shape (a port added or removed, another affinity, more endpoints than slots) rewrites
the configuration for a seamless reload, which hands the listening sockets over.

A port with no ready endpoint has its frontend disabled: the listener is closed, so a client is
refused at once instead of hanging. Freed slots are reused oldest-freed first, so a slot still
draining its last connections is the last to get a new address.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from gitops.decide.endpoints import PortEndpoints

MIN_SLOTS = 8
PLACEHOLDER = "127.0.0.1:1"  # a free slot's address; the slot is in maintenance, never used


def slots_for(count: int) -> int:
    """Room for the endpoints twice over (a rolling update surges), as a power of two."""
    n = MIN_SLOTS
    while n < 2 * count:
        n *= 2
    return n


@dataclass
class Frontend:
    """One NodePort as the running proxy has it."""

    port: int
    affinity: str
    label: str  # namespace/service:port, for people reading the configuration
    slots: list[str | None]  # endpoint address ("ip:port") per slot; None: free
    pods: dict[str, str] = field(default_factory=dict)  # address -> pod
    free: deque[int] = field(default_factory=deque)
    enabled: bool = True

    @classmethod
    def build(cls, t: PortEndpoints) -> Frontend:
        addrs = [f"{e.ip}:{e.port}" for e in t.endpoints]
        size = slots_for(len(addrs))
        slots: list[str | None] = [*addrs, *([None] * (size - len(addrs)))]
        return cls(
            port=t.node_port or 0,
            affinity=t.affinity,
            label=f"{t.namespace}/{t.service}:{t.port_name or t.port}",
            slots=slots,
            pods={f"{e.ip}:{e.port}": e.pod for e in t.endpoints},
            free=deque(range(len(addrs), size)),
        )

    def active(self) -> dict[str, int]:
        return {a: i for i, a in enumerate(self.slots) if a is not None}

    @property
    def backend(self) -> str:
        return f"b{self.port}"

    @property
    def name(self) -> str:
        return f"f{self.port}"


@dataclass(frozen=True)
class Change:
    """Either a reload with the new configuration, or runtime commands, in order."""

    reload: bool = False
    commands: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.reload and not self.commands


class Balancer:
    """The running proxy's frontends, kept in step with each endpoint table."""

    def __init__(self) -> None:
        self.frontends: dict[int, Frontend] = {}

    def update(self, table: Iterable[PortEndpoints]) -> Change:
        wanted = {t.node_port: t for t in table if t.node_port is not None}
        if self._reshaped(wanted):
            self.frontends = {p: Frontend.build(t) for p, t in wanted.items() if t.endpoints}
            return Change(reload=True)
        adds: list[str] = []
        removes: list[str] = []
        for port, fe in self.frontends.items():
            t = wanted[port]
            addrs = {f"{e.ip}:{e.port}": e.pod for e in t.endpoints}
            active = fe.active()
            for addr in sorted(addrs.keys() - active.keys()):
                slot = fe.free.popleft()
                fe.slots[slot] = addr
                ip, _, p = addr.rpartition(":")
                adds += [
                    f"set server {fe.backend}/s{slot} addr {ip} port {p}",
                    f"set server {fe.backend}/s{slot} state ready",
                ]
            removes += self._release(fe, active.keys() - addrs.keys())
            fe.pods = addrs
            if addrs and not fe.enabled:
                adds.append(f"enable frontend {fe.name}")
                fe.enabled = True
            elif not addrs and fe.enabled:
                removes.append(f"disable frontend {fe.name}")
                fe.enabled = False
        # New endpoints first: traffic always has somewhere to go while old ones leave.
        return Change(commands=(*adds, *removes))

    def drop(self, pods: Collection[str]) -> tuple[Change, set[str]]:
        """Take ``pods`` out of every frontend now. Returns the change and their addresses."""
        commands: list[str] = []
        gone: set[str] = set()
        for fe in self.frontends.values():
            addrs = {a for a in fe.active() if fe.pods.get(a) in pods}
            gone |= addrs
            commands += self._release(fe, addrs)
            if addrs and not fe.active() and fe.enabled:
                commands.append(f"disable frontend {fe.name}")
                fe.enabled = False
        return Change(commands=tuple(commands)), gone

    def listening(self) -> list[int]:
        return sorted(p for p, fe in self.frontends.items() if fe.enabled)

    def _reshaped(self, wanted: dict[int, PortEndpoints]) -> bool:
        # A new port needs a listener; one with no endpoint yet can wait for its first.
        if any(wanted[p].endpoints for p in wanted.keys() - self.frontends.keys()):
            return True
        if self.frontends.keys() - wanted.keys():
            return True  # a removed port must stop listening for good
        for port, fe in self.frontends.items():
            t = wanted[port]
            if t.affinity != fe.affinity:
                return True
            addrs = {f"{e.ip}:{e.port}" for e in t.endpoints}
            if len(addrs - fe.active().keys()) > len(fe.free):
                return True
        return False

    @staticmethod
    def _release(fe: Frontend, addrs: Collection[str]) -> list[str]:
        commands = []
        for addr in sorted(addrs):
            slot = fe.active()[addr]
            fe.slots[slot] = None
            fe.free.append(slot)
            commands.append(f"set server {fe.backend}/s{slot} state maint")
        return commands


def render(
    frontends: Iterable[Frontend], addresses: Sequence[str], admin_socket: str, maxconn: int
) -> str:
    """HAProxy's configuration for these frontends. TCP mode, so any protocol passes through.

    A connection refused by an endpoint (a pod that just died) is retried on another one before
    any byte is exchanged. Idle timeouts are a day: like kube-proxy, the proxy does not cut
    long-lived connections.
    """
    lines = [
        "# Written by gitops; rewritten on every change of shape. Do not edit.",
        "global",
        f"    stats socket {admin_socket} level admin expose-fd listeners",
        f"    maxconn {maxconn}",
        "defaults",
        "    mode tcp",
        "    timeout connect 1s",
        "    timeout client 24h",
        "    timeout server 24h",
        "    timeout client-fin 30s",
        "    timeout server-fin 30s",
        "    retries 3",
        "    option redispatch 1",
        "    option splice-auto",
    ]
    for fe in sorted(frontends, key=lambda f: f.port):
        lines += [
            f"frontend {fe.name}  # {fe.label}",
            *(f"    bind {a}:{fe.port}" for a in addresses),
            f"    default_backend {fe.backend}",
            f"backend {fe.backend}",
        ]
        if fe.affinity == "ClientIP":
            lines += ["    balance source", "    hash-type consistent"]
        else:
            lines += ["    balance roundrobin"]
        for i, addr in enumerate(fe.slots):
            if addr is None:
                lines.append(f"    server s{i} {PLACEHOLDER} disabled")
            else:
                lines.append(f"    server s{i} {addr}")
    return "\n".join(lines) + "\n"
