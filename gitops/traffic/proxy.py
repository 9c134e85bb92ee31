"""The service proxy (kube-proxy's role), carried out by HAProxy: the one adapter to it.

Each NodePort accepts connections on the node address and balances them over the Service's
ready endpoints. ``gitops.traffic.balancer`` decides; this module runs ``haproxy`` in master-worker
mode under the state directory and tells it what changed: endpoint changes through the runtime
API (one socket round trip), changes of shape through a seamless reload.

Why HAProxy rather than a Python loop: it forwards in C with splice, so the hop costs a
fraction of a millisecond and scales with the machine; a proxy inside the reconciler shared
its interpreter with probing and reconciling (see bench/proxy.py for the figures).

The proxy outlives a crash of the reconciler on purpose: Services keep answering, and the next
``gitops run`` adopts the running proxy (pid file and master socket) and reloads it. A clean
stop stops it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Collection
from pathlib import Path

from gitops.decide.endpoints import PortEndpoints
from gitops.decide.ingress import CertFile, IngressTable
from gitops.errors import GitopsError
from gitops.traffic import httpconfig, stats
from gitops.traffic.balancer import Balancer, Change, default_threads, render
from gitops.traffic.nodeproxy import NodeProxies

log = logging.getLogger(__name__)
START_TIMEOUT = 10.0


class ProxyError(GitopsError):
    pass


class ServiceProxy:
    def __init__(
        self,
        addresses: list[str],
        state_dir: Path,
        binary: str = "haproxy",
        remote: NodeProxies | None = None,
        ingress: tuple[str, int, int] = ("127.0.0.1", 80, 443),  # address, HTTP, HTTPS port
        threads: int = 0,  # 0: default_threads of this machine's cores
    ) -> None:
        self.addresses = addresses  # every node address on this machine
        self.remote = remote  # nodes elsewhere run their own
        self.dir = state_dir / "proxy"
        self.binary = binary
        self.config = self.dir / "haproxy.cfg"
        self.admin = self.dir / "admin.sock"
        self.master = self.dir / "master.sock"
        self.pidfile = self.dir / "haproxy.pid"
        self._balancer = Balancer()
        self._lock = threading.Lock()
        self._started = False
        self._child: subprocess.Popen[bytes] | None = None  # when this run started it
        self._refused: set[int] = set()  # ports another process holds; logged once each
        self.certs = self.dir / "certs"  # TLS keys: this directory only, owner-only files
        self.metrics_socket = self.dir / "metrics.sock"
        address, http_port, https_port = ingress
        self.site = httpconfig.Site(
            (address,), http_port, https_port, str(self.certs), str(self.metrics_socket)
        )
        self._ingress_refused = False
        self.threads = threads or default_threads(os.cpu_count())

    # What the reconciler calls ------------------------------------------------------------

    def update(self, table: list[PortEndpoints], ingress: IngressTable | None = None) -> None:
        ingress = ingress or IngressTable()
        if self.remote is not None:
            self.remote.update(table, ingress)
        if not self.addresses:
            return
        with self._lock:
            self._apply(self._balancer.update(self._bindable(table), self._servable(ingress)))

    def ingress_metrics(self) -> str:
        """HAProxy's own Prometheus exposition of its backends (the Ingress pools among them),
        or "" when no Ingress is served."""
        if self._balancer.ingress.empty or not self._started:
            return ""
        request = b"GET /metrics?scope=backend HTTP/1.0\r\nHost: haproxy\r\n\r\n"
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2.0)
                s.connect(str(self.metrics_socket))
                s.sendall(request)
                chunks = []
                while data := s.recv(65536):
                    chunks.append(data)
        except OSError as exc:
            log.debug("proxy: cannot read its metrics: %s", exc)
            return ""
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            return ""
        if b"transfer-encoding: chunked" in head.lower():
            body = _dechunk(body)
        return body.decode(errors="replace")

    def drop(self, pods: Collection[str], drain: float = 5.0) -> None:
        """Take ``pods`` out of every Service now; wait up to ``drain`` s for their connections."""
        if self.remote is not None:
            self.remote.drop(pods)
        with self._lock:
            change, addrs = self._balancer.drop(set(pods))
            self._apply(change)
        deadline = time.monotonic() + drain
        while addrs and time.monotonic() < deadline and self._open_connections(addrs):
            time.sleep(0.02)

    def listening(self) -> list[int]:
        return self._balancer.listening()

    def stop(self) -> None:
        """Stop listening; connections already open finish (bounded), then haproxy exits."""
        pid = self._pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGUSR1)  # soft stop
        deadline = time.monotonic() + 2.0
        while self._running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        self._started = False

    def _running(self, pid: int) -> bool:
        if self._child is not None and self._child.pid == pid:
            return self._child.poll() is None  # also reaps it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    # Carrying out ------------------------------------------------------------------------

    def _apply(self, change: Change) -> None:
        if not self._started:
            # The first pass writes the whole configuration, also into a proxy adopted from an
            # earlier run; with no Service and nothing to adopt, no process is started at all.
            serving = self._balancer.frontends or not self._balancer.ingress.empty
            if serving or self._pid() is not None:
                self._reload()
            return
        if change.reload:
            self._reload()
            return
        for cert in change.certs:
            if not self._rotate(cert):
                self._reload()
                return
        if not change.commands:
            return
        out = self._command(";".join(change.commands), self.admin)
        for line in filter(None, (raw.strip() for raw in out.splitlines())):
            # Success is silent, or for an address "IP changed from ... by 'stats socket...'".
            level = logging.DEBUG if "changed from" in line else logging.WARNING
            log.log(level, "proxy: %s", line)

    def _rotate(self, cert: CertFile) -> bool:
        """A certificate's new content, loaded by the running proxy without a reload: no
        connection is closed for it. False when it would not take it."""
        path = self.certs / cert.name
        _write_private(path, cert.pem)
        # The payload ends with an empty line (the PEM's own newline, then this one).
        body = cert.pem.decode() + ("" if cert.pem.endswith(b"\n") else "\n")
        try:
            out = self._command(f"set ssl cert {path} <<\n{body}", self.admin)
            done = self._command(f"commit ssl cert {path}", self.admin)
        except OSError as exc:
            log.warning("proxy: certificate %s not rotated in place: %s", cert.name, exc)
            return False
        if "Success" not in done:
            # HAProxy's answer names the file and the problem, never the key.
            log.warning("proxy: certificate %s not rotated in place: %s %s", cert.name,
                        out.strip()[:200], done.strip()[:200])  # fmt: skip
            return False
        log.info("proxy: certificate %s rotated", cert.name)
        return True

    def _write_certs(self, table: IngressTable) -> None:
        self.certs.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.certs, 0o700)
        keep = {c.name for c in table.certs} | {httpconfig.CERT_LIST}
        for old in self.certs.iterdir():
            if old.name not in keep:
                old.unlink(missing_ok=True)
        for cert in table.certs:
            _write_private(self.certs / cert.name, cert.pem)
        _write_private(
            self.certs / httpconfig.CERT_LIST,
            httpconfig.cert_list(table, str(self.certs)).encode(),
        )

    def _reload(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        ingress = self._balancer.ingress
        self._write_certs(ingress)
        text = render(
            self._balancer.frontends.values(), self.addresses, str(self.admin), _maxconn(),
            ingress, self._balancer.pools, self.site, self.threads,
        )  # fmt: skip
        tmp = self.config.with_suffix(".tmp")
        _write_private(tmp, text.encode())  # basic-auth hashes are in it
        check = subprocess.run(
            [self._exe(), "-c", "-q", "-f", str(tmp)], capture_output=True, text=True, check=False
        )
        if check.returncode != 0:
            raise ProxyError(f"proxy configuration rejected: {check.stdout}{check.stderr}".strip())
        tmp.replace(self.config)
        pid = self._pid()
        if pid is None:
            self._spawn()
        else:
            before = self._reloads()
            self._command("reload", self.master)
            self._await_reload(before)
        self._started = True

    def _spawn(self) -> None:
        for stale in (self.admin, self.master):
            stale.unlink(missing_ok=True)
        cmd = [self._exe(), "-W", "-S", str(self.master), "-f", str(self.config)]
        cmd += ["-p", str(self.pidfile)]
        with (self.dir / "haproxy.log").open("ab") as out:
            # Its own session: a Ctrl-C meant for gitops does not cut the Services.
            proc = self._child = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError):
                if "Name: HAProxy" in self._command("show info", self.admin):
                    log.info("proxy: haproxy started (%s)", self.config)
                    return
            time.sleep(0.05)
        raise ProxyError(f"haproxy did not start: {self._log_tail()}")

    def _await_reload(self, before: tuple[int, int]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                done, failed = self._reloads()
                if failed > before[1]:
                    raise ProxyError(f"haproxy reload failed: {self._log_tail()}")
                # The new worker answers on the admin socket once it has taken over.
                if done > before[0] and "Name: HAProxy" in self._command("show info", self.admin):
                    return
            time.sleep(0.02)
        raise ProxyError(f"haproxy reload not done within {START_TIMEOUT:.0f}s")

    def _reloads(self) -> tuple[int, int]:
        """(reloads, failed reloads) of the master, from ``show proc``."""
        for line in self._command("show proc", self.master).splitlines():
            fields = line.split()
            if len(fields) >= 5 and fields[1] == "master":
                return int(fields[2]), int(fields[4].rstrip("]"))
        raise ValueError("no master in show proc")

    def request_totals(self) -> dict[str, int]:
        """What each endpoint (by pod IP) was sent so far, summed over every worker: HTTP
        answers where a pool speaks HTTP (an Ingress's), connections where it is TCP (a
        Service's), and what the nodes' own proxies served where they tell it. The autoscalers'
        Pods and Object metrics are their rates."""
        out = self.remote.request_totals() if self.remote is not None else {}
        if not self._started:
            return out
        try:
            for pid in _workers(self._command("show proc", self.master)):
                stats.add(out, stats.served(self._command(f"@!{pid} show stat", self.master)))
        except OSError as exc:
            log.debug("proxy: cannot read what it served: %s", exc)
        return out

    def _open_connections(self, addrs: set[str]) -> int:
        """Connections to ``addrs`` in every worker, old ones still draining included."""
        total = 0
        try:
            workers = _workers(self._command("show proc", self.master))
            for pid in workers:
                stat = self._command(f"@!{pid} show stat", self.master)
                total += _current_sessions(stat, addrs)
        except OSError as exc:
            log.debug("proxy: cannot read connections: %s", exc)
            return 0
        return total

    def _bindable(self, table: list[PortEndpoints]) -> list[PortEndpoints]:
        """Leave out ports that another process listens on: one taken port must not keep the
        proxy from reloading for every other Service."""
        ours = set(self._balancer.frontends) | self._adopted_ports()
        out = []
        for t in table:
            port = t.node_port
            if (
                port is None
                or port in ours
                or not t.endpoints
                or all(can_bind(a, port) for a in self.addresses)
            ):
                self._refused.discard(port or 0)
                out.append(t)
            elif port not in self._refused:
                self._refused.add(port)
                log.error(
                    "service %s/%s: cannot listen on %s:%d: the port is in use",
                    t.namespace, t.service, ",".join(self.addresses), port,
                )  # fmt: skip
        return out

    def _servable(self, ingress: IngressTable) -> IngressTable:
        """The routes, or none when another process holds the Ingress ports: the NodePorts
        must not be kept from reloading for them."""
        if ingress.empty or not self._balancer.ingress.empty:
            return ingress
        site = self.site
        ports = [site.http_port, *([site.https_port] if ingress.certs else [])]
        ours = self._adopted_ports()
        taken = [p for p in ports if p not in ours and not all(
            can_bind(a, p) for a in site.addresses)]  # fmt: skip
        if not taken:
            self._ingress_refused = False
            return ingress
        if not self._ingress_refused:
            self._ingress_refused = True
            log.error("ingress: cannot listen on %s:%s: the port is in use",
                      ",".join(site.addresses), ",".join(map(str, taken)))  # fmt: skip
        return IngressTable()

    def _adopted_ports(self) -> set[int]:
        """Ports a proxy left by an earlier run listens on: ours to keep, not taken."""
        if self._started or self._pid() is None:
            return set()
        try:
            text = self.config.read_text()
        except OSError:
            return set()
        return {int(m) for m in re.findall(r"^\s+bind \S+:(\d+)(?: ssl .*)?$", text, re.M)}

    def _pid(self) -> int | None:
        """The running master, ours or one a previous ``gitops run`` left (adopted)."""
        try:
            pid = int(self.pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if str(self.master).encode() in cmdline else None

    def _exe(self) -> str:
        exe = shutil.which(self.binary)
        if exe is None:
            raise ProxyError(
                f"'{self.binary}' not found: Services need HAProxy (apt-get install haproxy)"
            )
        return exe

    def _command(self, command: str, path: Path) -> str:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5.0)
            s.connect(str(path))
            s.sendall(command.encode() + b"\n")
            s.shutdown(socket.SHUT_WR)
            chunks = []
            while data := s.recv(65536):
                chunks.append(data)
        return b"".join(chunks).decode(errors="replace")

    def _log_tail(self) -> str:
        try:
            return " | ".join((self.dir / "haproxy.log").read_text().splitlines()[-5:])
        except OSError:
            return "(no log)"


def _workers(show_proc: str) -> list[int]:
    pids = []
    section = ""
    for line in show_proc.splitlines():
        if line.startswith("#"):
            section = line.strip("# ").split()[0] if line.strip("# ") else ""
            continue
        fields = line.split()
        if section == "workers" and fields and fields[0].isdigit():
            pids.append(int(fields[0]))
    return pids


def _current_sessions(stat_csv: str, addrs: set[str]) -> int:
    lines = stat_csv.splitlines()
    if not lines or not lines[0].startswith("# "):
        return 0
    header = lines[0][2:].split(",")
    scur, addr = header.index("scur"), header.index("addr")
    total = 0
    for line in lines[1:]:
        cells = line.split(",")
        if len(cells) > max(scur, addr) and cells[addr] in addrs and cells[scur].isdigit():
            total += int(cells[scur])
    return total


def _dechunk(body: bytes) -> bytes:
    """An HTTP/1.1 chunked body, joined (the exporter chunks even an HTTP/1.0 answer)."""
    out, rest = [], body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2 :]
    return b"".join(out)


def _write_private(path: Path, data: bytes) -> None:
    """Written whole (a reader never sees half), readable by its owner only."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def can_bind(address: str, port: int) -> bool:
    """Whether this machine could listen there now (port 0: whether the address is ours)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True


def _maxconn() -> int:
    """As many connections as the file limit allows, at most 50,000: haproxy refuses to start
    when it cannot raise its limit to what maxconn needs (two descriptors a connection, and a
    pipe a splicing connection, up to a quarter of them)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    return max(256, min(50_000, (limit - 1024) // 3))
