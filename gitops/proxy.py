"""The service proxy (kube-proxy's role): each NodePort accepts connections on the node address
and balances them over the Service's ready endpoints.

An asyncio loop in its own thread. ``update`` installs a new endpoint table (from each pass);
``drop`` takes pods out of every Service at once and waits until their open connections end
(bounded), so a pod is out of the endpoints before it is sent SIGTERM. A Service with no ready
endpoint has no listener at all: a client is refused at once instead of hanging. A backend that
refuses the connection (before any byte is exchanged) is retried on the next endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import itertools
import logging
import threading
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

from gitops.endpoints import Endpoint, PortEndpoints

log = logging.getLogger(__name__)
CONNECT_TIMEOUT = 1.0
BUFFER = 65536


@dataclass
class _Route:
    table: PortEndpoints
    endpoints: list[Endpoint]
    turn: itertools.count[int] = field(default_factory=itertools.count)

    def order(self, client: str) -> list[Endpoint]:
        """Endpoints to try, first choice first: round-robin, or by client address (ClientIP)."""
        eps = self.endpoints
        if not eps:
            return []
        if self.table.affinity == "ClientIP":
            start = int(hashlib.sha256(client.encode()).hexdigest(), 16) % len(eps)
        else:
            start = next(self.turn) % len(eps)
        return eps[start:] + eps[:start]


class ServiceProxy:
    def __init__(self, address: str = "127.0.0.1") -> None:
        self.address = address
        self._loop = asyncio.new_event_loop()
        self._routes: dict[int, _Route] = {}
        self._servers: dict[int, asyncio.Server] = {}
        self._active: Counter[str] = Counter()  # open connections per pod
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="proxy")
        self._thread.start()

    def _call(self, coro: object, timeout: float = 30.0) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)  # type: ignore[arg-type]

    def update(self, table: list[PortEndpoints]) -> None:
        self._call(self._update(table))

    def drop(self, pods: Collection[str], drain: float = 5.0) -> None:
        """Take ``pods`` out of every Service now; wait up to ``drain`` s for their connections."""
        self._call(self._drop(set(pods), drain), timeout=drain + 5)

    def listening(self) -> list[int]:
        return sorted(self._servers)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self._close_all())
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _update(self, table: list[PortEndpoints]) -> None:
        wanted = {t.node_port: t for t in table if t.node_port is not None}
        for port in list(self._servers):
            if port not in wanted or not wanted[port].endpoints:
                await self._close(port)
        for port, t in wanted.items():
            route = self._routes.get(port)
            if route is None:
                self._routes[port] = _Route(t, list(t.endpoints))
            else:
                route.table, route.endpoints = t, list(t.endpoints)
            if t.endpoints and port not in self._servers:
                try:
                    self._servers[port] = await asyncio.start_server(
                        functools.partial(self._serve, port),
                        self.address,
                        port,
                        reuse_address=True,
                    )
                except OSError as exc:
                    log.error(
                        "service %s/%s: cannot listen on %s:%d: %s",
                        t.namespace,
                        t.service,
                        self.address,
                        port,
                        exc,
                    )
        for port in list(self._routes):
            if port not in wanted:
                del self._routes[port]

    async def _drop(self, pods: set[str], drain: float) -> None:
        for route in self._routes.values():
            route.endpoints = [e for e in route.endpoints if e.pod not in pods]
        for port, route in list(self._routes.items()):
            if not route.endpoints and port in self._servers:
                await self._close(port)
        deadline = asyncio.get_running_loop().time() + drain
        while any(self._active[p] for p in pods) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)

    async def _close(self, port: int) -> None:
        server = self._servers.pop(port, None)
        if server is not None:
            server.close()
            # Connections already accepted carry on; only the listener goes.

    async def _close_all(self) -> None:
        for port in list(self._servers):
            await self._close(port)

    async def _serve(
        self, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        route = self._routes.get(port)
        peer = writer.get_extra_info("peername")
        client = str(peer[0]) if peer else ""
        upstream = None
        chosen = None
        for ep in route.order(client) if route else []:
            try:
                upstream = await asyncio.wait_for(
                    asyncio.open_connection(ep.ip, ep.port), CONNECT_TIMEOUT
                )
            except (OSError, TimeoutError):
                continue  # refused before any byte: the next endpoint is safe to try
            chosen = ep
            break
        if upstream is None or chosen is None:
            writer.close()
            return
        self._active[chosen.pod] += 1
        try:
            up_reader, up_writer = upstream
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._active[chosen.pod] -= 1
            for w in (writer, upstream[1]):
                with contextlib.suppress(Exception):
                    w.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(BUFFER):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()  # half-close: the other side may still answer
    except (ConnectionError, OSError):
        with contextlib.suppress(Exception):
            writer.close()
