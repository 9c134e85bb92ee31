"""The HTTP routes of every Ingress gitops serves, in the order they are matched.

Pure. In: the desired state and the endpoint table (``gitops.decide.endpoints``). Out: an
``IngressTable``, what the proxy serves (``gitops.traffic.httpconfig`` renders it) and what
``gitops get ingress`` and status show.

Precedence is Kubernetes': a request's host picks its rules first (an exact host, else the
one-label wildcard it matches, else the rules without a host); among that host's paths an Exact
path wins over any Prefix, and a longer Prefix over a shorter one, a Prefix matching whole path
elements (``/api`` matches ``/api`` and ``/api/x``, not ``/apix``). Nothing matched: the default
backend, else 404.

Each (Ingress, host, Service port) is one pool of endpoints, so that HAProxy counts requests,
status classes and latency per Ingress, host and backend Service.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from gitops.decide.desired import DesiredState
from gitops.decide.endpoints import Endpoint, PortEndpoints
from gitops.manifests import Entry, Manifests, config_data, tls
from gitops.manifests import ingress as ing
from gitops.manifests import model as m


@dataclass(frozen=True)
class Pool:
    """One backend of the proxy: an Ingress's route to a Service port, for one host."""

    name: str
    namespace: str
    ingress: str
    host: str  # "" for any host
    service: str
    port: str  # the Service port's number or name, as the Ingress names it
    endpoints: tuple[Endpoint, ...] = ()
    read_timeout: int | None = None


@dataclass(frozen=True)
class Route:
    host: str  # "" for any host, "*.example.com" a wildcard
    match: str  # Exact | Prefix | Regex
    path: str
    pool: str
    namespace: str
    ingress: str
    rewrite: str | None = None  # the matched prefix is replaced by this (a regex's match: all)
    redirect: bool = False  # plain HTTP is redirected to HTTPS (308)
    body_limit: int | None = None
    allow: tuple[str, ...] = ()
    auth: str | None = None  # a userlist's name
    realm: str = ""


@dataclass(frozen=True)
class CertFile:
    """A TLS Secret as HAProxy loads it: certificate chain then key, in one file."""

    name: str  # the file's name, from the Secret's namespace and name
    hosts: tuple[str, ...]  # the SNI names it answers (empty: the names in the certificate)
    pem: bytes = field(repr=False)
    names: tuple[str, ...] = ()
    not_after: float = 0.0


@dataclass(frozen=True)
class Userlist:
    name: str
    users: tuple[tuple[str, str], ...] = field(repr=False)  # (user, crypt hash)


@dataclass(frozen=True)
class IngressTable:
    routes: tuple[Route, ...] = ()
    pools: tuple[Pool, ...] = ()
    default: str | None = None  # the pool of the default backend
    certs: tuple[CertFile, ...] = ()
    userlists: tuple[Userlist, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.pools

    @property
    def hosts(self) -> tuple[str, ...]:
        """Named hosts in the order they are picked: exact ones, then wildcards, longest first."""
        named = {r.host for r in self.routes if r.host}
        return tuple(sorted(named, key=lambda h: (h.startswith("*."), -len(h), h)))

    def shape(self) -> tuple[object, ...]:
        """What a change of needs a reload: all but the endpoints and the certificates' bytes."""
        return (
            self.routes,
            tuple(replace(p, endpoints=()) for p in self.pools),
            self.default,
            tuple((c.name, c.hosts) for c in self.certs),
            self.userlists,
        )

    def pool(self, name: str) -> Pool | None:
        return next((p for p in self.pools if p.name == name), None)


def cert_file(namespace: str, secret: str) -> str:
    """The file a TLS Secret is loaded from, as ``CertFile.name``."""
    return f"{namespace}_{secret}.pem"


def pool_name(namespace: str, ingress: str, host: str, service: str, port: str) -> str:
    """A name HAProxy accepts (letters, digits and ``-_.:``), one per Ingress, host and port."""
    return ":".join(("ing", namespace, ingress, host.replace("*", "_") or "_", service, port))


def compute(desired: DesiredState | None, table: Iterable[PortEndpoints]) -> IngressTable:
    if desired is None:
        return IngressTable()
    manifests = desired.manifests
    served = ing.served(manifests)
    if not served:
        return IngressTable()
    by_port: dict[tuple[str, str, str], tuple[Endpoint, ...]] = {}
    for t in table:
        by_port[(t.namespace, t.service, str(t.port))] = t.endpoints
        if t.port_name:
            by_port[(t.namespace, t.service, t.port_name)] = t.endpoints
    certs = _certs(served, manifests)
    secured = {h for c in certs for h in c.hosts} | {
        h for e in served for t in e.resource.spec.tls for h in t.hosts
    }
    pools: dict[str, Pool] = {}
    routes: list[Route] = []
    userlists: dict[str, Userlist] = {}
    default: str | None = None

    def pool_of(entry: Entry[m.Ingress], host: str, backend: m.IngressBackend,
                opts: ing.Options) -> str:  # fmt: skip
        ref = backend.service
        assert ref is not None  # validation refused any other backend
        port = str(ref.port.number if ref.port.number is not None else ref.port.name)
        name = pool_name(entry.namespace, entry.name, host, ref.name, port)
        eps = by_port.get((entry.namespace, ref.name, port), ())
        pools.setdefault(name, Pool(name, entry.namespace, entry.name, host, ref.name, port,
                                    eps, opts.read_timeout))  # fmt: skip
        return name

    for entry in served:
        res = entry.resource
        opts, _ = ing.options(res.metadata.annotations)
        auth = _userlist(entry, opts, manifests)
        if auth is not None:
            userlists[auth.name] = auth
        if res.spec.default_backend is not None and default is None:
            default = pool_of(entry, "", res.spec.default_backend, opts)
        for rule in res.spec.rules:
            host = rule.host or ""
            for p in rule.http.paths if rule.http else []:
                match, path = ing.match_of(p, opts.regex)
                redirect = opts.ssl_redirect if opts.ssl_redirect is not None else host in secured
                routes.append(Route(
                    host, match, path, pool_of(entry, host, p.backend, opts), entry.namespace,
                    entry.name, opts.rewrite_target, redirect and bool(certs), opts.body_limit,
                    opts.allow, auth.name if auth else None, opts.auth_realm,
                ))  # fmt: skip
    return IngressTable(
        tuple(sorted(routes, key=_precedence)), tuple(sorted(pools.values(), key=lambda p: p.name)),
        default, certs, tuple(sorted(userlists.values(), key=lambda u: u.name)),
    )  # fmt: skip


def _precedence(r: Route) -> tuple[object, ...]:
    host_rank = (0 if not r.host.startswith("*.") else 1) if r.host else 2
    match_rank = {"Exact": 0, "Prefix": 1, "Regex": 1}[r.match]
    return (host_rank, -len(r.host), r.host, match_rank, -len(r.path), r.path)


def _certs(served: list[Entry[m.Ingress]], manifests: Manifests) -> tuple[CertFile, ...]:
    found: dict[str, CertFile] = {}
    for entry in served:
        for t in entry.resource.spec.tls:
            secret = ing.tls_secret(t, entry.namespace, manifests)
            if secret is None:
                continue
            data = config_data(secret.resource)
            crt, key = data.get(tls.CRT, b""), data.get(tls.KEY, b"")
            cert, _ = tls.read(crt, key, 0.0)
            name = cert_file(secret.namespace, secret.name)
            before = found.get(name)
            hosts = tuple(dict.fromkeys([*(before.hosts if before else ()), *t.hosts]))
            pem = crt.rstrip(b"\n") + b"\n" + key.rstrip(b"\n") + b"\n"
            found[name] = CertFile(
                name, hosts, pem, cert.names if cert else (), cert.not_after if cert else 0.0
            )
    return tuple(found[n] for n in sorted(found))


def _userlist(entry: Entry[m.Ingress], opts: ing.Options, manifests: Manifests) -> Userlist | None:
    if opts.auth_secret is None:
        return None
    secret = ing.auth_secret(opts, entry.namespace, manifests)
    if secret is None:
        return None
    users, _ = ing.users(secret.resource, opts.auth_map)
    return Userlist(f"auth:{entry.namespace}:{entry.name}", tuple(users))


def health(entry: Entry[m.Ingress], table: IngressTable) -> tuple[bool, str]:
    """Healthy when every backend has a ready endpoint; else which ones wait for one."""
    waiting = sorted(
        {
            f"{p.service}:{p.port}"
            for p in table.pools
            if (p.namespace, p.ingress) == (entry.namespace, entry.name) and not p.endpoints
        }
    )
    if waiting:
        return False, f"no ready endpoint for {', '.join(waiting)}"
    return True, ""
