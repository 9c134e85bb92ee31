"""gitops' cluster DNS: the listeners that answer the pods' questions about headless Services.

``decide.clusterdns`` says what is answered; this holds one UDP and one TCP listener (dnslib's
servers) on each address a node's pods in one namespace ask (``Node.dns_address``: the
gateway of the namespace's bridge on this machine), so each question's node and namespace are
known from where it arrived. The reconciler publishes new records whenever the endpoints
change (after a pass, on a probe verdict) and the listeners follow the namespaces. A question
that cannot be parsed is dropped; a failing lookup is SERVFAIL; nothing a packet holds can
end a listener. An address that cannot be bound is logged and tried again later: the pods'
embedded DNS then asks the node's servers, and a headless name does not resolve.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from dnslib import QTYPE, RCODE, RR, A
from dnslib.server import DNSHandler, DNSLogger, DNSServer

from gitops.decide.clusterdns import TTL, Records, lookup

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (node, namespace)
RETRY_BIND = 30.0  # seconds before an address that could not be bound is tried again
TCP_TIMEOUT = 5.0  # a TCP client that sends nothing holds a thread no longer than this


class _Quiet(DNSLogger):  # type: ignore[misc]  # dnslib has no type hints
    """dnslib prints every packet by default; a bad packet is worth a debug line only."""

    def __init__(self) -> None:
        super().__init__("-recv,-send,-request,-reply,-truncated,-data,-error")

    def log_error(self, handler: Any, e: Any) -> None:
        log.debug("cluster DNS: bad packet from %s: %s", handler.client_address[0], e)


class _Handler(DNSHandler):  # type: ignore[misc]
    # A UDP answer past DNS' classic 512 bytes is sent truncated (TC set), as CoreDNS does,
    # and the asker comes back over TCP for all of it: the embedded DNS reads no more.
    udplen = 512

    def setup(self) -> None:
        if isinstance(self.request, socket.socket):  # TCP
            self.request.settimeout(TCP_TIMEOUT)

    def handle(self) -> None:
        try:
            super().handle()
        except Exception as exc:  # no packet may end a listener or print a traceback
            log.debug("cluster DNS: question from %s dropped: %s", self.client_address[0], exc)


class _Resolver:
    def __init__(self, owner: ClusterDns, node: str, namespace: str) -> None:
        self.owner, self.node, self.namespace = owner, node, namespace

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        try:
            q = request.q
            answer = lookup(
                self.owner.table, self.node, self.namespace, str(q.qname), QTYPE.get(q.qtype, "")
            )
        except Exception:  # a bug answers SERVFAIL, once logged
            log.exception("cluster DNS: lookup failed")
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        reply.header.rcode = answer.rcode.value
        reply.header.aa = 1
        for ip in answer.addresses:
            reply.add_answer(RR(q.qname, QTYPE.A, rdata=A(ip), ttl=TTL))
        return reply


class _Listener:
    def __init__(self, owner: ClusterDns, key: Key, address: str, port: int) -> None:
        self.address = address
        resolver = _Resolver(owner, *key)
        self.servers = []
        try:
            for tcp in (False, True):
                server = DNSServer(
                    resolver, address=address, port=port, tcp=tcp, logger=_Quiet(),
                    handler=_Handler,
                )  # fmt: skip
                # socketserver prints a traceback for what a handler lets through: none does.
                server.server.handle_error = lambda request, client: None
                self.servers.append(server)
        except BaseException:
            self.close()
            raise
        for server in self.servers:
            server.start_thread()

    def close(self) -> None:
        for server in self.servers:
            if getattr(server, "thread", None) is not None:
                server.stop()
            server.server.server_close()


class ClusterDns:
    def __init__(self, port: int = 53) -> None:
        self.port = port
        self.table = Records()
        self._listeners: dict[Key, _Listener] = {}
        self._failed: dict[tuple[Key, str], float] = {}  # -> when binding it last failed
        self._lock = threading.Lock()

    def publish(self, table: Records, addresses: Mapping[Key, str]) -> None:
        """Answer from ``table`` from now on, on these listeners (node, namespace) -> address."""
        self.table = table  # one reference swapped: a question sees one table or the other
        with self._lock:
            for key in [k for k, li in self._listeners.items() if addresses.get(k) != li.address]:
                self._listeners.pop(key).close()
            now = time.monotonic()
            for key, address in sorted(addresses.items()):
                if (
                    key in self._listeners
                    or now - self._failed.get((key, address), -1e9) < RETRY_BIND
                ):
                    continue
                try:
                    self._listeners[key] = _Listener(self, key, address, self.port)
                except OSError as exc:
                    self._failed[(key, address)] = now
                    log.warning(
                        "cluster DNS for namespace %s on node %s: cannot listen on %s:%d (%s); "
                        "its headless Services do not resolve there (retrying in %gs)",
                        key[1], key[0], address, self.port, exc.strerror or exc, RETRY_BIND,
                    )  # fmt: skip
                    continue
                self._failed.pop((key, address), None)
                log.info("cluster DNS for namespace %s on node %s on %s", key[1], key[0], address)

    def listening(self) -> dict[Key, str]:
        with self._lock:
            return {k: li.address for k, li in self._listeners.items()}

    def stop(self) -> None:
        with self._lock:
            for listener in self._listeners.values():
                listener.close()
            self._listeners.clear()
