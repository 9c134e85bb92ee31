"""A node whose changes wait on a check: the leader's lease (``--leader-elect``).

Every call that changes an engine (``CHANGES``) first asks ``check``, which raises
``NotLeader`` when this process may not act; reads pass through. The wrapper sits between the
whole pipeline and the adapter, so no path that acts can forget to ask: a leader frozen past
its lease (SIGSTOP) that wakes in the middle of carrying out a plan finds the check failing at
its next engine call, before it makes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from gitops.nodes.base import Node

# The Node interface, classified (tests/unit/test_fenced.py holds every method to one of them).
CHANGES = frozenset({
    "ensure_network", "remove_network", "remove_volume", "write_record", "remove_record",
    "pull", "create_pod", "start_container", "restart_container", "remove_pod",
    "ensure_service", "set_service_endpoints", "remove_service", "ensure_proxy", "remove_proxy",
})  # fmt: skip
# A probe's or a user's exec, logs and stats read or run inside a container the controller
# does not change; kubectl exec is a user's act, not the controller's.
READS = frozenset({
    "name", "instance", "probes", "ping", "capacity", "list_containers", "list_networks",
    "dns_address", "list_volumes", "list_records", "has_image", "exec", "read_logs",
    "exec_stream", "usage", "watch",
})  # fmt: skip


class FencedNode:
    def __init__(self, node: Node, check: Callable[[], None]) -> None:
        self._node, self._check = node, check

    @property
    def name(self) -> str:
        return self._node.name

    @property
    def wrapped(self) -> Node:
        return self._node

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._node, attr)
        if attr not in CHANGES:
            return value
        check = self._check

        def guarded(*args: Any, **kwargs: Any) -> Any:
            check()
            return value(*args, **kwargs)

        return guarded


def fenced(node: Node, check: Callable[[], None]) -> Node:
    """``node``, its changes made only while ``check`` passes."""
    return cast(Node, FencedNode(node, check))
