"""Whether this machine reaches an address on a directly connected network (``/proc/net/route``).

Where it does, the address is on one of this host's interfaces, such as the bridge of an engine
on this machine: its pods can be probed from here (``gitops.probing.prober``), and a lone container
needs no pause container to carry busybox for its probes (``gitops.nodes``).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Final

ROUTES: Final = Path("/proc/net/route")


def routed(ip: str, routes: str | None = None) -> bool:
    """True when this machine reaches ``ip`` on a directly connected network (a route with no
    gateway that is not the default route): the pod's bridge is one of this host's interfaces.

    A reconciler in a container of its own, without the host's network, has only its default
    route: its probes then run in the pod."""
    try:
        addr = int(ipaddress.IPv4Address(ip))
        text = ROUTES.read_text() if routes is None else routes
    except (ValueError, OSError):
        return False
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        # Destination, gateway and mask are hex in the kernel's (little-endian) byte order.
        dest, gateway, mask = (_le(fields[i]) for i in (1, 2, 7))
        if gateway == 0 and mask != 0 and addr & mask == dest:
            return True
    return False


def _le(hex_word: str) -> int:
    return int.from_bytes(int(hex_word, 16).to_bytes(4, "little"), "big")
