"""HAProxy's configuration for the Ingress routes: one HTTP(S) entry point, its pools.

Pure; ``gitops.traffic.balancer`` adds it to the configuration it renders. The request's host
is picked first (``txn.vh``: an exact host, else the wildcard it matches), then the first route
of that host in the table's order wins (``txn.route``); the pool, the rewrite and the pool's own
rules (redirect to HTTPS, source ranges, basic auth, body size) follow from those two.

Every string here comes from a checked manifest (``gitops.manifests.ingress``): hosts are DNS
names, paths and targets hold no quote or space, and they are written inside single quotes,
where HAProxy expands nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from gitops.decide.ingress import IngressTable, Pool, Route
from gitops.traffic.slots import Slots

FRONTEND = "ingress"
CERT_LIST = "certs.list"
READ_TIMEOUT = 60  # seconds, ingress-nginx's proxy-read-timeout


@dataclass(frozen=True)
class Site:
    """Where the Ingress routes are served."""

    addresses: tuple[str, ...]
    http_port: int
    https_port: int
    cert_dir: str  # where the certificate files and their list are
    metrics_socket: str = ""  # HAProxy's Prometheus exporter, on a socket of its own


def render(table: IngressTable, pools: Mapping[str, Slots], site: Site) -> list[str]:
    if table.empty:
        return _metrics(site)
    lines = [
        f"frontend {FRONTEND}",
        "    mode http",
        *(f"    bind {a}:{site.http_port}" for a in site.addresses),
    ]
    if table.certs:
        crt_list = f"{site.cert_dir}/{CERT_LIST}"
        lines += [
            f"    bind {a}:{site.https_port} ssl crt-list {crt_list} alpn h2,http/1.1"
            for a in site.addresses
        ]
    lines += [
        "    timeout client 60s",
        "    timeout http-request 30s",
        "    timeout http-keep-alive 75s",
        "    option http-keep-alive",
        # The client's own X-Forwarded-For is not trusted: the proxy writes the one header.
        "    http-request del-header X-Forwarded-For",
        "    option forwardfor",
        "    http-request set-header X-Forwarded-Proto https if { ssl_fc }",
        "    http-request set-header X-Forwarded-Proto http unless { ssl_fc }",
        "    http-request set-header X-Forwarded-Host %[req.hdr(host)]",
        "    http-request set-header X-Forwarded-Port %[dst_port]",
        "    http-request set-var(txn.host) req.hdr(host),field(1,:),lower",
    ]
    for host in table.hosts:
        lines.append(f"    http-request set-var(txn.vh) str({host}) if !{{ var(txn.vh) -m found }} "
                     f"{_host_test(host)}")  # fmt: skip
    for i, r in enumerate(table.routes):
        lines += _path_acl(i, r)
    for i, r in enumerate(table.routes):
        where = f"{{ var(txn.vh) -m str {r.host} }}" if r.host else "!{ var(txn.vh) -m found }"
        path = "" if r.match == "Prefix" and r.path == "/" else f" r{i}"
        lines.append(f"    http-request set-var(txn.route) int({i}) if "
                     f"!{{ var(txn.route) -m found }} {where}{path}")  # fmt: skip
    for i, r in enumerate(table.routes):
        lines += _rewrite(i, r)
    if table.default is None:
        lines.append("    http-request deny deny_status 404 unless { var(txn.route) -m found }")
    for i, r in enumerate(table.routes):
        lines.append(f"    use_backend {r.pool} if {{ var(txn.route) -m int {i} }}")
    if table.default is not None:
        lines.append(f"    default_backend {table.default}")
    routes_of: dict[str, list[Route]] = {}
    for r in table.routes:
        routes_of.setdefault(r.pool, []).append(r)
    for pool in table.pools:
        lines += _backend(pool, routes_of.get(pool.name, []), pools[pool.name], bool(table.certs))
    for users in table.userlists:
        lines.append(f"userlist {users.name}")
        lines += [f"    user {u} password '{h}'" for u, h in users.users]
    return lines + _metrics(site)


def cert_list(table: IngressTable, cert_dir: str) -> str:
    """HAProxy's crt-list: each certificate file and the SNI names it answers. The first is
    the one served to a client that names no host (or one no certificate is for)."""
    return "".join(f"{cert_dir}/{c.name} {' '.join(c.hosts)}".rstrip() + "\n" for c in table.certs)


def _host_test(host: str) -> str:
    if host.startswith("*."):
        return f"{{ var(txn.host) -m reg ^[^.]+{re.escape(host[1:])}$ }}"
    return f"{{ var(txn.host) -m str {host} }}"


def _path_acl(i: int, r: Route) -> list[str]:
    """ACL ``r<i>``: the route's path matches (lines of one name are or-ed)."""
    if r.match == "Exact":
        return [f"    acl r{i} path -m str '{r.path}'"]
    if r.match == "Regex":
        return [f"    acl r{i} path -m reg -i '{_anchored(r.path)}'"]
    if r.path == "/":
        return []
    return [f"    acl r{i} path -m str '{r.path}'", f"    acl r{i} path -m beg '{r.path}/'"]


def _anchored(regex: str) -> str:
    """A route's regular expression matched from the path's start, as ingress-nginx's are."""
    return regex if regex.startswith("^") else f"^{regex}"


def _rewrite(i: int, r: Route) -> list[str]:
    if r.rewrite is None:
        return []
    when = f"if {{ var(txn.route) -m int {i} }}"
    if r.match == "Regex":
        target = re.sub(r"\$(\d)", r"\\\1", r.rewrite)
        return [f"    http-request replace-path '(?i){_anchored(r.path)}.*' '{target}' {when}"]
    prefix = "" if r.path == "/" else re.escape(r.path)
    base = r.rewrite.rstrip("/")
    return [
        f"    http-request replace-path '^{prefix}/?$' '{base or '/'}' {when}",
        f"    http-request replace-path '^{prefix}/(.*)$' '{base}/\\1' {when}",
    ]


def _backend(pool: Pool, routes: list[Route], slots: Slots, tls: bool) -> list[str]:
    first = routes[0] if routes else None
    lines = [
        f"backend {pool.name}  # {pool.namespace}/{pool.ingress} {pool.host or '*'} -> "
        f"{pool.service}:{pool.port}",
        "    mode http",
        "    balance roundrobin",
        f"    timeout server {pool.read_timeout or READ_TIMEOUT}s",
        "    timeout tunnel 1h",  # a WebSocket, once upgraded
        "    retry-on conn-failure",  # never a request an app has seen
    ]
    if first is not None:
        if first.allow:
            lines.append(
                f"    http-request deny deny_status 403 unless {{ src {' '.join(first.allow)} }}"
            )
        if first.redirect and tls:
            lines.append("    http-request redirect scheme https code 308 unless { ssl_fc }")
        if first.auth is not None:
            lines.append(f"    http-request auth realm '{first.realm}' unless "
                         f"{{ http_auth({first.auth}) }}")  # fmt: skip
        if first.body_limit is not None:
            lines.append(f"    http-request deny deny_status 413 if "
                         f"{{ req.hdr_val(content-length) gt {first.body_limit} }}")  # fmt: skip
    return lines + slots.servers()


def _metrics(site: Site) -> list[str]:
    if not site.metrics_socket:
        return []
    return [
        "frontend metrics",
        "    mode http",
        f"    bind unix@{site.metrics_socket} mode 600",
        "    http-request use-service prometheus-exporter",
    ]
