"""Services by name inside the pods' networks: each node's name proxies learn the ready
endpoints of their Service.

The plan makes and removes the name proxy containers (``decide.actions.NameProxy``); this keeps
their endpoint files current from the same endpoint table the Service proxy uses, whenever the
table changes (after a pass, on a probe verdict, when a container dies), writing a node's files
only when they changed or the container is a new one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence

from gitops.decide.endpoints import PortEndpoints
from gitops.errors import GitopsError
from gitops.model.live import LiveState
from gitops.nodes.base import Node

log = logging.getLogger(__name__)
Key = tuple[str, str, str]  # (node, namespace, service)


class ServiceNames:
    def __init__(self, nodes: Mapping[str, Node]) -> None:
        self.nodes = nodes
        self._written: dict[Key, tuple[str, dict[str, bytes]]] = {}  # -> (container, files)
        self._lock = threading.Lock()  # a pass and a probe verdict may both get here

    def publish(
        self, table: Sequence[PortEndpoints], live: LiveState, usable: Callable[[str], bool]
    ) -> None:
        by_service: dict[tuple[str, str], list[PortEndpoints]] = {}
        for t in table:
            by_service.setdefault((t.namespace, t.service), []).append(t)
        with self._lock:
            for (node, ns, name), container in sorted(live.services.items()):
                if not usable(node) or container.state != "running":
                    continue
                files = {
                    f"endpoints-{t.port}": "".join(
                        f"{e.ip}:{e.port}\n" for e in t.endpoints
                    ).encode()
                    for t in by_service.get((ns, name), [])
                }
                key = (node, ns, name)
                if self._written.get(key) == (container.id, files):
                    continue
                try:
                    self.nodes[node].set_service_endpoints(ns, name, files)
                except GitopsError as exc:  # a convenience: the next change writes again
                    log.warning("service name %s/%s on %s: %s", ns, name, node, exc)
                    continue
                self._written[key] = (container.id, files)
            self._written = {k: v for k, v in self._written.items() if k in live.services}


def _lines(table: PortEndpoints) -> bytes:
    return "".join(f"{e.ip}:{e.port}\n" for e in table.endpoints).encode()
