"""What an Ingress asks of gitops' proxy: whether it is gitops' at all, its annotations read,
and the checks that relate it to its Services, Secrets and the other Ingresses.

Stage: manifests, inside validation (``check_all``), and read again when the routes are made
(``gitops.decide.ingress``). Every string that reaches HAProxy's configuration is checked here
against a strict alphabet, so a manifest can never write configuration of its own.

Annotations are gitops' own (``gitops.io/``) or ingress-nginx's of the same meaning; gitops'
wins when both are set.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from gitops.manifests import model as m
from gitops.manifests import tls
from gitops.manifests.entries import Entry, Issue, Manifests, config_data

CLASS = "gitops"
CONTROLLER = "gitops.io/ingress-controller"
DEFAULT_CLASS = "ingressclass.kubernetes.io/is-default-class"
LEGACY_CLASS = "kubernetes.io/ingress.class"
PREFIXES = ("gitops.io/", "nginx.ingress.kubernetes.io/")
# Paths, rewrite targets and realms are written inside single quotes: no quote, no space, no
# control character, no backslash.
_PATH = re.compile(r"^/[A-Za-z0-9\-._~!$&()*+,;=:@/%]*$")
_REGEX = re.compile(r"^/[^\s'\x00-\x1f\x7f]*$")
_HOST_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_USER = re.compile(r"^[A-Za-z0-9._@+-]{1,64}$")
_REALM = re.compile(r"^[A-Za-z0-9 ._@:,()/-]{0,100}$")
_SIZE = re.compile(r"^(\d+)([kKmMgG]?)$")
# crypt(3) hashes HAProxy can check here (glibc/libxcrypt): bcrypt, sha-256, sha-512, yescrypt.
_HASH = re.compile(r"^\$(2[aby]|5|6|y|gy|7)\$[A-Za-z0-9./$=,+-]{8,}$")


@dataclass(frozen=True)
class Options:
    """An Ingress's annotations, read."""

    ssl_redirect: bool | None = None  # None: redirect when the host has TLS (ingress-nginx)
    rewrite_target: str | None = None
    regex: bool = False  # use-regex: ImplementationSpecific paths are regular expressions
    body_limit: int | None = None  # bytes; None: no limit
    read_timeout: int | None = None  # seconds
    allow: tuple[str, ...] = ()  # source ranges; empty: everyone
    auth_secret: str | None = None  # a Secret of the Ingress's namespace (or "ns/name")
    auth_realm: str = "Authentication Required"
    auth_map: bool = False  # auth-secret-type auth-map: one key a user, not an htpasswd file


def annotation(annotations: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """(the annotation's full key, its value), gitops' own before ingress-nginx's."""
    for prefix in PREFIXES:
        if prefix + name in annotations:
            return prefix + name, annotations[prefix + name]
    return None


def options(annotations: Mapping[str, str]) -> tuple[Options, list[tuple[str, str]]]:
    """The options, and (field, problem) for each annotation that cannot be read."""
    problems: list[tuple[str, str]] = []
    values: dict[str, object] = {}

    def read(name: str, parse: Callable[[str], object], *aliases: str) -> None:
        found = next(filter(None, (annotation(annotations, n) for n in (name, *aliases))), None)
        if found is None:
            return
        key, raw = found
        try:
            values[name] = parse(raw)
        except ValueError as exc:
            problems.append((f"metadata.annotations.{key}", str(exc)))

    read("ssl-redirect", _boolean, "force-ssl-redirect")
    read("rewrite-target", _target)
    read("use-regex", _boolean)
    read("proxy-body-size", _size)
    read("proxy-read-timeout", _seconds)
    read("whitelist-source-range", _ranges, "allowlist-source-range")
    read("auth-type", _auth_type)
    read("auth-secret", _secret_ref)
    read("auth-realm", _realm)
    read("auth-secret-type", _secret_type)
    if "auth-secret" in values and "auth-type" not in values:
        problems.append((_key(annotations, "auth-secret"), "needs auth-type: basic beside it"))
    opts = Options(
        ssl_redirect=values.get("ssl-redirect"),  # type: ignore[arg-type]
        rewrite_target=values.get("rewrite-target"),  # type: ignore[arg-type]
        regex=bool(values.get("use-regex", False)),
        body_limit=values.get("proxy-body-size"),  # type: ignore[arg-type]
        read_timeout=values.get("proxy-read-timeout"),  # type: ignore[arg-type]
        allow=values.get("whitelist-source-range", ()),  # type: ignore[arg-type]
        auth_secret=values.get("auth-secret") if "auth-type" in values else None,  # type: ignore[arg-type]
        auth_realm=str(values.get("auth-realm", Options.auth_realm)),
        auth_map=values.get("auth-secret-type") == "auth-map",
    )
    if opts.auth_secret is None and "auth-type" in values:
        problems.append((_key(annotations, "auth-type"), "needs auth-secret: the users' Secret"))
    if opts.rewrite_target and "$" in opts.rewrite_target and not opts.regex:
        problems.append(
            (_key(annotations, "rewrite-target"), 'captures ($1) need use-regex: "true"')
        )
    return opts, problems


def _key(annotations: Mapping[str, str], name: str) -> str:
    found = annotation(annotations, name)
    return f"metadata.annotations.{found[0] if found else PREFIXES[0] + name}"


def _boolean(raw: str) -> bool:
    if raw.lower() not in ("true", "false"):
        raise ValueError(f'{raw!r} is not "true" or "false"')
    return raw.lower() == "true"


def _target(raw: str) -> str:
    if not _REGEX.match(raw) or "'" in raw:
        raise ValueError("must be a path beginning with '/', without quotes or spaces")
    return raw


def _size(raw: str) -> int | None:
    found = _SIZE.match(raw.strip())
    if found is None:
        raise ValueError(f"{raw!r} is not a size such as 8m, 512k or 1g (nginx's units)")
    number = (
        int(found.group(1))
        * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[found.group(2).lower()]
    )
    return number or None  # 0: no limit, as nginx's client_max_body_size 0


def _seconds(raw: str) -> int:
    if not raw.strip().isdigit() or int(raw) == 0 or int(raw) > 86400:
        raise ValueError(f"{raw!r} is not a number of seconds from 1 to 86400")
    return int(raw)


def _ranges(raw: str) -> tuple[str, ...]:
    out = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        try:
            out.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError:
            raise ValueError(f"{part!r} is not an address or CIDR range") from None
    if not out:
        raise ValueError("names no address range")
    return tuple(out)


def _auth_type(raw: str) -> str:
    if raw != "basic":
        raise ValueError(f"{raw!r} is not supported: gitops' proxy checks basic auth only")
    return raw


def _secret_ref(raw: str) -> str:
    ns, _, name = raw.rpartition("/")
    if not name or not all(_HOST_LABEL.match(p) for p in filter(None, (ns, *name.split(".")))):
        raise ValueError(f"{raw!r} is not a Secret name (NAME or NAMESPACE/NAME)")
    return raw


def _realm(raw: str) -> str:
    if not _REALM.match(raw):
        raise ValueError("may hold letters, digits, spaces and ._@:,()/- only (100 at most)")
    return raw


def _secret_type(raw: str) -> str:
    if raw not in ("auth-file", "auth-map"):
        raise ValueError(f"{raw!r} is not auth-file or auth-map")
    return raw


# -- which Ingresses are gitops' ----------------------------------------------------------------


def class_name(ing: m.Ingress) -> str | None:
    return ing.spec.ingress_class_name or ing.metadata.annotations.get(LEGACY_CLASS)


def not_served(ing: m.Ingress, classes: list[m.IngressClass]) -> str | None:
    """None when gitops serves this Ingress, else why it does not (it is Skipped)."""
    ours = {CLASS} | {c.metadata.name for c in classes if c.spec.controller == CONTROLLER}
    name = class_name(ing)
    if name is None:
        default = [c for c in classes if c.metadata.annotations.get(DEFAULT_CLASS) == "true"]
        if default and not any(c.metadata.name in ours for c in default):
            return (
                f"it names no class, and the default IngressClass {default[0].metadata.name} "
                f"is {default[0].spec.controller or 'another controller'}'s"
            )
        return None
    if name in ours:
        return None
    cls = next((c for c in classes if c.metadata.name == name), None)
    if cls is not None:
        return f"its class {name} is {cls.spec.controller or 'another controller'}'s"
    return f"its class {name} is not gitops' (gitops serves {CLASS!r} and classes of {CONTROLLER})"


def served(manifests: Manifests) -> list[Entry[m.Ingress]]:
    classes = [e.resource for e in manifests.of(m.IngressClass)]
    return [e for e in manifests.of(m.Ingress) if not_served(e.resource, classes) is None]


# -- what each path matches ---------------------------------------------------------------------


def match_of(path: m.HTTPIngressPath, regex: bool) -> tuple[str, str]:
    """(Exact | Prefix | Regex, the path as matched): ImplementationSpecific is a Prefix, or a
    regular expression under use-regex; a Prefix's trailing slash does not count."""
    raw = path.path or "/"
    if path.path_type == "ImplementationSpecific":
        if regex:
            return "Regex", raw
        return "Prefix", raw.rstrip("/") or "/"
    if path.path_type == "Prefix":
        return "Prefix", raw.rstrip("/") or "/"
    return "Exact", raw


# -- checks ---------------------------------------------------------------------------------------


def check(entry: Entry[m.Ingress], manifests: Manifests, now: float, issue: Issue) -> None:
    """One Ingress: hosts, paths, backends, TLS Secrets and annotations."""
    ing = entry.resource
    opts, problems = options(ing.metadata.annotations)
    for fld, problem in problems:
        issue(fld, problem)
    if ing.spec.default_backend is None and not any(r.http for r in ing.spec.rules):
        issue("spec", "must have a defaultBackend or a rule with http paths")
    if ing.spec.default_backend is not None:
        _check_backend(ing.spec.default_backend, "spec.defaultBackend", entry, manifests, issue)
    for i, rule in enumerate(ing.spec.rules):
        if rule.host is not None and (bad := host_problem(rule.host)):
            issue(f"spec.rules[{i}].host", bad)
        for j, p in enumerate(rule.http.paths if rule.http else []):
            where = f"spec.rules[{i}].http.paths[{j}]"
            kind, matched = match_of(p, opts.regex)
            if kind == "Regex":
                if not _REGEX.match(matched) or "'" in matched:
                    issue(f"{where}.path", "must begin with '/', without quotes or spaces")
                else:
                    try:
                        re.compile(matched)
                    except re.error as exc:
                        issue(f"{where}.path", f"is not a regular expression: {exc}")
            elif not _PATH.match(p.path or "/"):
                issue(f"{where}.path", "must be an absolute path of URL characters "
                      "(no quotes, spaces, '#' or '?')")  # fmt: skip
            _check_backend(p.backend, f"{where}.backend", entry, manifests, issue)
    for i, t in enumerate(ing.spec.tls):
        for j, host in enumerate(t.hosts):
            if bad := host_problem(host):
                issue(f"spec.tls[{i}].hosts[{j}]", bad)
        if t.secret_name is None:
            issue(f"spec.tls[{i}].secretName", "is required: gitops has no default certificate")
            continue
        _check_tls(t, f"spec.tls[{i}]", entry, manifests, now, issue)
    if opts.auth_secret:
        _check_auth(opts, entry, manifests, issue)


def host_problem(host: str) -> str | None:
    name = host[2:] if host.startswith("*.") else host
    try:
        ipaddress.ip_address(name)
        return "must be a DNS name, not an IP address"
    except ValueError:
        pass
    labels = name.split(".")
    if len(name) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        return (
            f"{host!r} is not a DNS name of lower-case labels (a wildcard only as the first "
            "label, '*.example.com')"
        )
    return None


def _check_backend(
    backend: m.IngressBackend, where: str, entry: Entry[m.Ingress], manifests: Manifests,
    issue: Issue,
) -> None:  # fmt: skip
    if backend.resource is not None or backend.service is None:
        issue(f"{where}.service", "is required: gitops routes to Services only")
        return
    ref = backend.service
    port = ref.port
    if (port.name is None) == (port.number is None):
        issue(f"{where}.service.port", "must have exactly one of name and number")
        return
    svc = manifests.get(m.Service, entry.namespace, ref.name)
    if svc is None:
        issue(f"{where}.service.name",
              f"Service {ref.name!r} not found in namespace {entry.namespace!r}")  # fmt: skip
        return
    ports = svc.resource.spec.ports
    if port.number is not None and all(p.port != port.number for p in ports):
        have = ", ".join(str(p.port) for p in ports) or "none"
        issue(f"{where}.service.port.number",
              f"Service {ref.name!r} has no port {port.number} (its ports: {have})")  # fmt: skip
    if port.name is not None and all(p.name != port.name for p in ports):
        have = ", ".join(p.name for p in ports if p.name) or "none named"
        message = f"Service {ref.name!r} has no port named {port.name!r} (its ports: {have})"
        issue(f"{where}.service.port.name", message)


def tls_secret(t: m.IngressTLS, namespace: str, manifests: Manifests) -> Entry[m.Secret] | None:
    return manifests.get(m.Secret, namespace, t.secret_name or "")


def _check_tls(
    t: m.IngressTLS, where: str, entry: Entry[m.Ingress], manifests: Manifests, now: float,
    issue: Issue,
) -> None:  # fmt: skip
    secret = tls_secret(t, entry.namespace, manifests)
    if secret is None:
        issue(f"{where}.secretName",
              f"Secret {t.secret_name!r} not found in namespace {entry.namespace!r}")  # fmt: skip
        return
    at = f"{where}.secretName"
    named = f"Secret {t.secret_name!r} ({secret.path}:{secret.doc})"
    if secret.resource.type != tls.TLS_TYPE:
        issue(at, f"{named} is of type {secret.resource.type!r}, not {tls.TLS_TYPE!r}")
        return
    try:
        data = config_data(secret.resource)
    except ValueError:
        return  # its base64 is reported on the Secret itself
    missing = [k for k in (tls.CRT, tls.KEY) if not data.get(k)]
    if missing:
        issue(at, f"{named} has no {' or '.join(missing)}")
        return
    cert, problems = tls.read(data[tls.CRT], data[tls.KEY], now)
    for key, problem in problems:
        issue(at, f"{named}: {key} {problem}")
    if cert is None:
        return
    for j, host in enumerate(t.hosts):
        if not tls.covers(cert.names, host):
            names = ", ".join(cert.names) or "none"
            issue(f"{where}.hosts[{j}]",
                  f"the certificate of {named} is not for {host} (it is for: {names})")  # fmt: skip


def users(secret: m.Secret, auth_map: bool) -> tuple[list[tuple[str, str]], list[str]]:
    """(user, crypt hash) pairs of a basic-auth Secret, and problems (never quoting a hash)."""
    try:
        data = config_data(secret)
    except ValueError:
        return [], []
    lines: list[tuple[str, str]] = []
    if auth_map:
        lines = [(k, v.decode(errors="replace").strip()) for k, v in sorted(data.items())]
    elif "auth" in data:
        for raw in data["auth"].decode(errors="replace").splitlines():
            if raw.strip() and not raw.lstrip().startswith("#"):
                user, _, hashed = raw.strip().partition(":")
                lines.append((user, hashed))
    else:
        return [], ["has no key 'auth' (an htpasswd file)"]
    out, problems = [], []
    for user, hashed in lines:
        if not _USER.match(user):
            problems.append("has a user name that is not letters, digits and ._@+- (64 at most)")
        elif not _HASH.match(hashed):
            scheme = "an MD5 ($apr1$)" if hashed.startswith("$apr1$") else "a"
            problems.append(
                f"user {user}: {scheme} password hash HAProxy cannot check here; "
                "make it with htpasswd -B (bcrypt) or openssl passwd -6"
            )
        else:
            out.append((user, hashed))
    if not lines:
        problems.append("names no user")
    return out, problems


def auth_secret(opts: Options, namespace: str, manifests: Manifests) -> Entry[m.Secret] | None:
    ns, _, name = (opts.auth_secret or "").rpartition("/")
    return manifests.get(m.Secret, ns or namespace, name)


def _check_auth(opts: Options, entry: Entry[m.Ingress], manifests: Manifests, issue: Issue) -> None:
    where = _key(entry.resource.metadata.annotations, "auth-secret")
    secret = auth_secret(opts, entry.namespace, manifests)
    if secret is None:
        issue(where, f"Secret {opts.auth_secret!r} not found")
        return
    for problem in users(secret.resource, opts.auth_map)[1]:
        issue(where, f"Secret {opts.auth_secret!r} ({secret.path}:{secret.doc}) {problem}")


def conflicts(ingresses: list[Entry[m.Ingress]]) -> Iterator[tuple[Entry[m.Ingress], str, str]]:
    """(entry, field, message) for each route, default backend or TLS host that an earlier
    Ingress already claims: both are named."""
    routes: dict[tuple[str, str, str], tuple[Entry[m.Ingress], str]] = {}
    tls_hosts: dict[str, tuple[Entry[m.Ingress], str, str]] = {}
    default: tuple[Entry[m.Ingress], str] | None = None
    for entry in ingresses:
        spec = entry.resource.spec
        regex = options(entry.resource.metadata.annotations)[0].regex
        if spec.default_backend is not None:
            if default is not None and default[0] is not entry:
                yield entry, "spec.defaultBackend", _claimed("the default backend", default)
            default = default or (entry, "spec.defaultBackend")
        for i, rule in enumerate(spec.rules):
            for j, p in enumerate(rule.http.paths if rule.http else []):
                kind, path = match_of(p, regex)
                key, where = (rule.host or "", kind, path), f"spec.rules[{i}].http.paths[{j}]"
                first = routes.setdefault(key, (entry, where))
                if first != (entry, where):
                    what = f"{kind} path {path} of host {rule.host or '(any)'}"
                    yield entry, f"{where}.path", _claimed(what, first)
        for i, t in enumerate(spec.tls):
            for j, host in enumerate(t.hosts):
                where = f"spec.tls[{i}].hosts[{j}]"
                seen = tls_hosts.setdefault(host, (entry, where, t.secret_name or ""))
                if seen[2] != (t.secret_name or "") and seen[0] is not entry:
                    yield (
                        entry,
                        where,
                        _claimed(f"TLS for {host}", seen[:2]) + (f" with Secret {seen[2]!r}"),
                    )


def _claimed(what: str, first: tuple[Entry[m.Ingress], str]) -> str:
    e, where = first
    return (
        f"{what} is already claimed by Ingress {e.namespace}/{e.name} ({e.path}:{e.doc}, {where})"
    )
