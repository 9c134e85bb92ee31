"""What the service proxy holds, and the least change that gets it there.

Pure; the HAProxy adapter (``gitops.traffic.proxy``) carries out what this decides. Each NodePort is
one frontend and one backend of fixed server slots. An endpoint that comes or goes changes one
slot through the runtime API (no reload, no new process, open connections untouched). Only a
change of shape (a port added or removed, another affinity, more endpoints than slots) rewrites
the configuration for a seamless reload, which hands the listening sockets over.

A port with no ready endpoint has its frontend disabled: the listener is closed, so a client is
refused at once instead of hanging. The Ingress routes (``gitops.traffic.httpconfig``) are one
HTTP frontend beside them, their pools' endpoints changed the same way; a rotated certificate
is loaded by runtime commands too, so no connection is closed for it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from gitops.decide.endpoints import PortEndpoints
from gitops.decide.ingress import CertFile, IngressTable
from gitops.traffic import httpconfig
from gitops.traffic.slots import MIN_SLOTS, Slots, slots_for

__all__ = ["MIN_SLOTS", "Balancer", "Change", "Frontend", "render", "slots_for"]


@dataclass
class Frontend:
    """One NodePort as the running proxy has it."""

    port: int
    affinity: str
    label: str  # namespace/service:port, for people reading the configuration
    pool: Slots
    enabled: bool = True

    @classmethod
    def build(cls, t: PortEndpoints) -> Frontend:
        port = t.node_port or 0
        return cls(
            port=port,
            affinity=t.affinity,
            label=f"{t.namespace}/{t.service}:{t.port_name or t.port}",
            pool=Slots.build(f"b{port}", t.endpoints),
        )

    @property
    def slots(self) -> list[str | None]:
        return self.pool.slots

    @property
    def backend(self) -> str:
        return self.pool.backend

    @property
    def name(self) -> str:
        return f"f{self.port}"


@dataclass(frozen=True)
class Change:
    """Either a reload with the new configuration, or runtime commands, in order; and the
    certificates whose content changed (loaded by runtime commands of their own)."""

    reload: bool = False
    commands: tuple[str, ...] = ()
    certs: tuple[CertFile, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.reload and not self.commands and not self.certs


class Balancer:
    """The running proxy's frontends and Ingress pools, kept in step with each table."""

    def __init__(self) -> None:
        self.frontends: dict[int, Frontend] = {}
        self.ingress = IngressTable()
        self.pools: dict[str, Slots] = {}  # the Ingress pools' slots

    def update(self, table: Iterable[PortEndpoints], ingress: IngressTable | None = None) -> Change:
        ingress = ingress or IngressTable()
        wanted = {t.node_port: t for t in table if t.node_port is not None}
        if self._reshaped(wanted) or self._reshaped_ingress(ingress):
            self.frontends = {p: Frontend.build(t) for p, t in wanted.items() if t.endpoints}
            self.ingress = ingress
            self.pools = {p.name: Slots.build(p.name, p.endpoints) for p in ingress.pools}
            return Change(reload=True)
        adds: list[str] = []
        removes: list[str] = []
        for port, fe in self.frontends.items():
            t = wanted[port]
            more, fewer = fe.pool.follow(t.endpoints)
            adds += more
            removes += fewer
            if t.endpoints and not fe.enabled:
                adds.append(f"enable frontend {fe.name}")
                fe.enabled = True
            elif not t.endpoints and fe.enabled:
                removes.append(f"disable frontend {fe.name}")
                fe.enabled = False
        for pool in ingress.pools:
            more, fewer = self.pools[pool.name].follow(pool.endpoints)
            adds += more
            removes += fewer
        before = {c.name: c.pem for c in self.ingress.certs}
        rotated = tuple(c for c in ingress.certs if before.get(c.name) != c.pem)
        self.ingress = ingress
        # New endpoints first: traffic always has somewhere to go while old ones leave.
        return Change(commands=(*adds, *removes), certs=rotated)

    def drop(self, pods: Collection[str]) -> tuple[Change, set[str]]:
        """Take ``pods`` out of every frontend and pool now. Returns the change and their
        addresses."""
        commands: list[str] = []
        gone: set[str] = set()
        for fe in self.frontends.values():
            addrs = fe.pool.leaving(pods)
            gone |= addrs
            commands += fe.pool.release(addrs)
            if addrs and not fe.pool.active() and fe.enabled:
                commands.append(f"disable frontend {fe.name}")
                fe.enabled = False
        for slots in self.pools.values():
            addrs = slots.leaving(pods)
            gone |= addrs
            commands += slots.release(addrs)
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
            if t.affinity != fe.affinity or not fe.pool.fits(t.endpoints):
                return True
        return False

    def _reshaped_ingress(self, ingress: IngressTable) -> bool:
        if ingress.shape() != self.ingress.shape():
            return True
        return any(not self.pools[p.name].fits(p.endpoints) for p in ingress.pools)


def default_threads(cpus: int | None) -> int:
    """HAProxy's threads when none are asked for: half the cores, at least one.

    HAProxy's own default is a thread per core, but here the proxy shares the machine with
    the pods it forwards to and with the reconciler: on 2 cores one thread served 10-15 %
    more requests a second than two (bench/ingress.py, docs/benchmarks.md section 11),
    because two threads contend with the backends for the same cores.
    """
    return max(1, (cpus or 1) // 2)


def render(
    frontends: Iterable[Frontend],
    addresses: Sequence[str],
    admin_socket: str,
    maxconn: int,
    ingress: IngressTable | None = None,
    pools: Mapping[str, Slots] | None = None,
    site: httpconfig.Site | None = None,
    threads: int | None = None,
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
        *([f"    nbthread {threads}"] if threads else []),  # None: HAProxy's, one per core
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
        lines += fe.pool.servers()
    if site is not None:
        lines += httpconfig.render(ingress or IngressTable(), pools or {}, site)
    return "\n".join(lines) + "\n"
