"""HAProxy's ``show stat`` CSV, read for what the proxy sent each endpoint.

Pure. The local proxy's comes from its master socket (``gitops.traffic.proxy``), a node's own
proxy's from its stats page (``gitops.traffic.nodeproxy``); both are this CSV.
"""

from __future__ import annotations


def served(stat_csv: str) -> dict[str, int]:
    """Per server address's IP: its HTTP answers (hrsp_*), or its sessions (stot) in TCP."""
    lines = stat_csv.splitlines()
    if not lines or not lines[0].startswith("# "):
        return {}
    header = lines[0][2:].split(",")
    at = {name: i for i, name in enumerate(header)}
    if any(n not in at for n in ("type", "addr", "stot")):
        return {}
    answers = [at[n] for n in ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx",
                               "hrsp_other") if n in at]  # fmt: skip
    out: dict[str, int] = {}
    for line in lines[1:]:
        cells = line.split(",")
        if len(cells) < len(header) or cells[at["type"]] != "2" or not cells[at["addr"]]:
            continue
        http = [int(cells[i]) for i in answers if cells[i].isdigit()]
        stot = cells[at["stot"]]
        count = sum(http) if http else (int(stot) if stot.isdigit() else 0)
        ip = cells[at["addr"]].rpartition(":")[0]
        out[ip] = out.get(ip, 0) + count
    return out


def add(into: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    for ip, n in more.items():
        into[ip] = into.get(ip, 0) + n
    return into
