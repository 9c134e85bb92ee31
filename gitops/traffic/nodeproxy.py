"""NodePort Services on nodes whose address is not on the reconciler's machine.

Each such node runs its own HAProxy (``Node.ensure_proxy``: a host-network container built on
the node from this machine's binary), listening on the node's address. Its configuration is
rendered by ``gitops.traffic.balancer`` from the same endpoint table the local proxy uses,
pushed only when it changes, and loaded by a seamless reload: connections already open carry on.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import urllib.request
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace

from gitops.decide import endpoints
from gitops.decide.endpoints import PortEndpoints
from gitops.decide.ingress import IngressTable
from gitops.errors import GitopsError
from gitops.nodes.base import Node
from gitops.nodes.proxyimage import ADMIN_SOCKET, CERTS
from gitops.traffic import httpconfig, stats
from gitops.traffic.balancer import Frontend, default_threads, render
from gitops.traffic.slots import Slots

log = logging.getLogger(__name__)
# Connections per node proxy: haproxy needs about 2.5 descriptors each and refuses to start
# when it cannot raise its limit that far; engines commonly give containers 20,000 or more.
MAXCONN = 6_000
DRAIN_SETTLE = 0.5  # seconds


class NodeProxies:
    def __init__(
        self,
        nodes: Mapping[str, Node],
        addresses: Mapping[str, str],
        usable: Callable[[str], bool] = lambda _: True,
        ingress_ports: tuple[int, int] = (80, 443),
        threads: int = 0,  # 0: default_threads of each node's own cores
        stats_port: int = 0,  # where each tells what it served (0: it does not)
    ) -> None:
        self.nodes, self.addresses = nodes, dict(addresses)  # node -> its address
        self.ingress_ports = ingress_ports
        self.threads = threads
        self.stats_port = stats_port
        # The stats page's path: a secret of this process, in the configuration only (0600).
        self._stats_path = "/" + secrets.token_hex(16)
        self._threads: dict[str, int] = {}  # a node's cores are asked once
        self._table: list[PortEndpoints] = []
        self._ingress = IngressTable()
        self._pushed: dict[str, str] = {}
        self._lock = threading.Lock()
        # The cluster's view: a silent node is not waited on each pass; it gets the current
        # configuration once it answers again.
        self.usable = usable

    def update(self, table: list[PortEndpoints], ingress: IngressTable | None = None) -> None:
        with self._lock:
            self._table, self._ingress = table, ingress or IngressTable()
            self._push(table)

    def drop(self, pods: Collection[str]) -> None:
        with self._lock:
            self._table = endpoints.without(self._table, pods)
            pushed = self._push(self._table)
        if pushed:
            # Requests already on their way to the pod through the old worker finish first;
            # the local proxy counts them, a node's own proxy is given this moment.
            time.sleep(DRAIN_SETTLE)

    def _push(self, table: list[PortEndpoints]) -> bool:
        """True when some node's configuration changed (and was reloaded)."""
        changed = False
        fronts = [Frontend.build(t) for t in table if t.node_port is not None and t.endpoints]
        ingress = self._ingress_of(table)
        pools = {p.name: Slots.build(p.name, p.endpoints) for p in ingress.pools}
        files = {c.name: c.pem for c in ingress.certs}
        if ingress.certs:
            files[httpconfig.CERT_LIST] = httpconfig.cert_list(ingress, CERTS).encode()
        for name, address in self.addresses.items():
            if not self.usable(name):
                continue
            site = httpconfig.Site((address,), *self.ingress_ports, CERTS)
            try:
                threads = self._threads_of(name)
                config = render(
                    fronts, [address], ADMIN_SOCKET, MAXCONN, ingress, pools, site, threads
                ) + self._stats_listener(address)
                # The certificates' bytes count as a change too; only their digest is kept.
                pushed = config + "".join(f"{c.name}:{hash(c.pem)}" for c in ingress.certs)
                if self._pushed.get(name) == pushed:
                    continue
                self.nodes[name].ensure_proxy(config.encode(), files)
            except GitopsError as exc:  # that node's NodePorts lag; the others are served
                log.warning("node proxy on %s: %s", name, exc)
                self._pushed.pop(name, None)
                continue
            self._pushed[name] = pushed
            changed = True
        return changed

    def _stats_listener(self, address: str) -> str:
        """Its counts as ``show stat`` CSV, on ``stats_port`` behind the secret path; nothing
        else answers there."""
        if not self.stats_port:
            return ""
        return "\n".join([
            "listen gitops-stats",
            "    mode http",
            f"    bind {address}:{self.stats_port}",
            "    timeout client 5s",
            f"    http-request deny unless {{ path_beg {self._stats_path} }}",
            "    stats enable",
            "    stats show-legends",  # the servers' addresses, which say which pod is which
            f"    stats uri {self._stats_path}",
            "",
        ])  # fmt: skip

    def request_totals(self) -> dict[str, int]:
        """What each node's own proxy sent each endpoint (by pod IP), where they tell it
        (``stats_port``); a node that does not answer gives nothing."""
        out: dict[str, int] = {}
        if not self.stats_port:
            return out
        for name, address in self.addresses.items():
            if not self.usable(name) or name not in self._pushed:
                continue
            url = f"http://{address}:{self.stats_port}{self._stats_path};csv"
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    text = resp.read(8 << 20).decode(errors="replace")
            except (OSError, ValueError) as exc:
                log.debug("node proxy on %s: counts not read: %s", name, exc)
                continue
            stats.add(out, stats.served(text))
        return out

    def _threads_of(self, name: str) -> int:
        if self.threads:
            return self.threads
        if name not in self._threads:
            cores = self.nodes[name].capacity().cpu_millis // 1000
            self._threads[name] = default_threads(cores)
        return self._threads[name]

    def _ingress_of(self, table: list[PortEndpoints]) -> IngressTable:
        """The Ingress pools with ``table``'s endpoints (a dropped pod is out of both)."""
        pods = {e.pod for t in table for e in t.endpoints}
        return replace(self._ingress, pools=tuple(
            replace(p, endpoints=tuple(e for e in p.endpoints if e.pod in pods))
            for p in self._ingress.pools
        ))  # fmt: skip
