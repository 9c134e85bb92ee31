"""Wiring: build a reconciler from settings, and run it forever (``gitops run``).

The loop is level-triggered: it waits on one ``Trigger`` that the poller, the ref watcher,
the API and its own requeue requests fire, then runs one pass. Passes never overlap.
"""

from __future__ import annotations

import logging
import os
import signal
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from gitops.act.apply import Progress
from gitops.config.settings import Settings
from gitops.decide.actions import NameSource
from gitops.errors import GitopsError
from gitops.nodes.base import CHANGED, CONNECTED, DISCONNECTED, Node
from gitops.nodes.docker import DockerNode
from gitops.nodes.fenced import fenced
from gitops.probing.prober import Prober
from gitops.reconciler import INTERNAL_RETRY, Outcome, Reconciler
from gitops.report.metrics import Metrics, StateSource
from gitops.report.notify import Notifier, Receiver
from gitops.report.passes import Reporter
from gitops.serve import autoscalers
from gitops.serve.api import App, serve
from gitops.serve.dashboard.web import Dashboard
from gitops.serve.httpserver import HttpServer
from gitops.serve.tunnels import Tunnels
from gitops.source.git import GitSource, GitWriter, local_git_dir
from gitops.source.triggers import REQUEUE, RETRY, Poller, RefWatcher, Trigger, reads_git
from gitops.state.board import Board
from gitops.state.cluster import Cluster
from gitops.state.commits import Commits
from gitops.state.database import BadStateUrl, Database, open_database
from gitops.state.eventlog import EventLog, Recorder
from gitops.state.history import History
from gitops.state.lease import Lease, Timing, identity
from gitops.state.postgres import PostgresDatabase
from gitops.state.revisions import Revisions
from gitops.state.scales import Scales
from gitops.traffic.clusterdns import ClusterDns
from gitops.traffic.nodeproxy import NodeProxies
from gitops.traffic.proxy import ServiceProxy, can_bind

log = logging.getLogger(__name__)


def secure_state_dir(state: Path) -> None:
    """The state directory holds the git mirror and the history, and with them every Secret of
    the repository: its owner's only (0700, files 0600), and so is everything made from now on
    (umask 077). What an older version or another tool left there is tightened."""
    os.umask(0o077)
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    for top, dirs, files in os.walk(state):
        for name in [*dirs, *files]:
            path = os.path.join(top, name)
            mode = os.lstat(path).st_mode
            if not stat.S_ISLNK(mode) and mode & 0o077:
                os.chmod(path, stat.S_IMODE(mode) & ~0o077)
    state.chmod(0o700)


@dataclass(frozen=True)
class System:
    """One reconciler and what runs beside it, as ``build`` made them."""

    reconciler: Reconciler
    trigger: Trigger
    prober: Prober
    proxy: ServiceProxy | None
    dns: ClusterDns | None = None
    lease: Lease | None = None  # --leader-elect


def compose(
    settings: Settings,
    source: GitSource,
    nodes: Sequence[Node],
    history: History,
    clock: Callable[[], float] = time.time,
    names: NameSource | None = None,
    progress: Progress | None = None,
    prober: Prober | None = None,
    proxy: Callable[[Cluster], ServiceProxy | None] = lambda cluster: None,
    receivers: tuple[Receiver, ...] = (),
    dns: ClusterDns | None = None,
    lease: Lease | None = None,
) -> Reconciler:
    """The reconciler, with every collaborator made once here and handed in: the board it
    writes for readers, notifications, the cluster's memory, metrics (their scrape-time gauges
    read the board, the cluster, the history and the notifier), the commits' desired states,
    rollout records and pins, and the Service proxy (``proxy`` makes it from the cluster)."""
    board = Board()
    notifier = Notifier(receivers, f"gitops ({settings.instance}) {source.display_url}")

    def kind_of(namespace: str, name: str) -> str:
        desired = board.desired
        dep = desired.deployment(namespace, name) if desired else None
        return dep.kind if dep else "Deployment"

    # A notification is also the event of its object (a rollout's: of its workload).
    notify = Recorder(EventLog(history.db, clock), kind_of, notifier)

    cluster = Cluster(settings, {n.name: n for n in nodes}, history, clock, notify)
    service_proxy = proxy(cluster)

    def ingress_metrics() -> tuple[str, Any]:
        if service_proxy is None:
            return "", None
        return service_proxy.ingress_metrics(), board.ingress

    scales = Scales(history.facts)  # the autoscalers' scales of their targets
    metrics = Metrics(
        StateSource(
            status=board.read_status,
            nodes=cluster.describe,
            rollout_counts=history.rollout_counts,
            source=lambda: (source.display_url, settings.branch),
            notifications=notifier.results,
            ingress=ingress_metrics,
            autoscalers=lambda: autoscalers.rows(board.desired, scales.found(), None),
            leader=(lambda: (lease.name, lease.leading, lease.changes)) if lease else lambda: None,
        )
    )
    commits = Commits(source, settings.policy)
    revisions = Revisions(history, commits.load, commits.describe, settings.auto_rollback, notify)
    reporter = Reporter(board, metrics, history, notify, clock)
    return Reconciler(
        settings, source, nodes, history, commits, revisions, cluster, metrics, board, reporter,
        clock=clock, names=names, progress=progress, prober=prober, proxy=service_proxy,
        dns=dns, notify=notify, events=notify, scales=scales,
        leading=(lambda: lease.leading) if lease else lambda: True,
    )  # fmt: skip


def build(settings: Settings, progress: Progress | None = None, serve: bool = False) -> System:
    """Everything ``gitops run`` (``serve``: with the Service proxy) or a one-off verb uses."""
    state = settings.state_dir
    secure_state_dir(state)
    source = GitSource(
        settings.repo,
        state / "source",
        branch=settings.branch,
        path=settings.path,
        token_env=settings.token_env,
        rules=settings.rules,
    )
    history = History(open_database(settings.state, state))  # its schema brought up to date
    lease = _lease(settings, history.db)
    engines = [
        DockerNode(
            n.name,
            n.docker_host,
            settings.instance,
            tls=(n.tls_ca, n.tls_cert, n.tls_key)
            if n.tls_ca and n.tls_cert and n.tls_key
            else None,
            probes=n.probes,
            host_ip=n.address or "",
            gpus=n.gpus,
            volume_drivers={c.name: (c.driver, c.options) for c in settings.storage_classes},
            cluster_dns=settings.cluster_dns,
        )
        for n in settings.nodes
    ]
    # With an election, every engine change first asks whether this process still leads.
    nodes = [fenced(n, lease.check) for n in engines] if lease else list(engines)
    trigger = Trigger()
    reconciler: Reconciler | None = None  # made below; the prober tells it of verdicts

    def verdict_changed(reason: str) -> None:
        if reconciler is not None:
            reconciler.refresh_endpoints()  # Services follow readiness within the second
        trigger.fire(reason)

    prober = Prober({n.name: n for n in nodes}, time.time, verdict_changed)

    def make_proxy(cluster: Cluster) -> ServiceProxy | None:
        if not serve:
            return None
        here, elsewhere = split_addresses(settings)
        by_name = {n.name: n for n in nodes}
        ports = (settings.ingress_http_port, settings.ingress_https_port)
        remote = (
            NodeProxies(
                by_name,
                elsewhere,
                cluster.usable,
                ports,
                settings.proxy_threads,
                settings.node_proxy_stats_port,
            )
            if elsewhere
            else None
        )
        listen = (settings.ingress_address, *ports)
        return ServiceProxy(
            here, state, remote=remote, ingress=listen, threads=settings.proxy_threads
        )

    reconciler = compose(
        settings,
        source,
        nodes,
        history,
        progress=progress,
        prober=prober,
        proxy=make_proxy,
        receivers=tuple(Receiver(fmt, url) for fmt, url in settings.notify),
        # Only the serving process answers the pods' questions; a one-off verb's pods ask it.
        dns=ClusterDns() if serve and settings.cluster_dns else None,
        lease=lease,
    )
    return System(reconciler, trigger, prober, reconciler.proxy, reconciler.dns, lease)


def _lease(settings: Settings, db: Database) -> Lease | None:
    """The election ``--leader-elect`` asks for, its term fencing every state write."""
    if not settings.leader_elect:
        return None
    if not isinstance(db, PostgresDatabase):
        raise BadStateUrl(
            "--leader-elect: the processes share their lease in the state database; give "
            "--state postgresql://USER@HOST/DB (the same for each of them)"
        )
    lease = Lease(db, f"gitops-{settings.instance}", identity(), settings.advertise_url,
                  Timing(*settings.lease_timing))  # fmt: skip
    db.fence = lease.fence
    return lease


def api_app(reconciler: Reconciler, trigger: Trigger) -> App:
    """The API over a reconciler: it reads the reconciler's read model and is handed the rest."""
    return App(
        reconciler, trigger, reconciler.settings, reconciler.metrics, reconciler.history,
        reconciler.cluster, reconciler.source.contains,
    )  # fmt: skip


def listener(reconciler: Reconciler, app: App, host: str, port: int) -> HttpServer:
    """The API's listener with the dashboard at ``/``, as ``gitops run`` serves it."""
    settings = reconciler.settings
    writer = None
    if settings.write_back:  # the dashboard's rollout actions push as the CLI's do
        writer = GitWriter(settings.repo, settings.branch, settings.path, settings.token_env)
    return serve(app, host, port, Dashboard(app, reconciler.source, writer))


def split_addresses(settings: Settings) -> tuple[list[str], dict[str, str]]:
    """Node addresses served by this machine's proxy, and {node: address} of the nodes that run
    their own (``proxy: node``, or ``auto`` with an address that is not on this machine)."""
    here: list[str] = []
    elsewhere: dict[str, str] = {}
    for n in settings.nodes:
        address = settings.address_of(n)
        local = n.proxy == "here" or (n.proxy == "auto" and can_bind(address, 0))
        if local:
            if address not in here:
                here.append(address)
        else:
            elsewhere[n.name] = address
    return here, elsewhere


def _on_event(reconciler: Reconciler, node: str, trigger: Trigger) -> Callable[[str, str], None]:
    moves = reconciler.moves

    def on(action: str, container_id: str) -> None:
        try:
            if action in (CONNECTED, DISCONNECTED):
                moves.stream(node, action == CONNECTED)
                if action == CONNECTED:
                    return
                reconciler.cluster.silent(node, "its event stream ended")
            else:
                moves.moved()  # a look taken before this is out of date
                if action.partition(":")[0] in CHANGED:
                    return  # nothing to repair: a look shows it, a pass need not run
                if container_id:  # its pod leaves the Services now, not after a busy pass
                    reconciler.container_stopped(container_id)
        except Exception:  # the event thread must outlive any one failure
            log.exception("handling %s of %s failed", action, node)
        trigger.fire(f"engine:{action}")

    return on


def _check_nodes(reconciler: Reconciler, trigger: Trigger, stop: threading.Event) -> None:
    """Every node pinged on an interval; a node turning NotReady, Ready or lost wakes a pass."""
    settings = reconciler.settings
    # Several checks per grace period, so one slow answer is not taken for a silent node.
    while not stop.wait(min(settings.node_check_interval, settings.node_grace / 4)):
        if not reconciler.leading():  # evicting is acting: the leader's
            continue
        try:
            if reconciler.cluster.check():
                trigger.fire("node")
        except Exception:  # the health check must outlive any one failure
            log.exception("node health check failed")


def _autoscale(reconciler: Reconciler, trigger: Trigger, stop: threading.Event) -> None:
    """The autoscalers sample and decide on an interval; a changed scale wakes a pass."""
    while not stop.wait(reconciler.settings.autoscale_interval):
        try:
            if reconciler.autoscale():
                trigger.fire("autoscaler")
        except GitopsError as exc:  # the nodes did not answer: the next sample tries again
            log.warning("autoscaling: %s", exc)
        except Exception:  # the sampler must outlive any one failure
            log.exception("autoscaling failed")


def run(settings: Settings, stop: threading.Event | None = None) -> int:
    stop = stop or threading.Event()
    system = build(settings, serve=True)
    reconciler, trigger = system.reconciler, system.trigger
    poller = Poller(trigger, settings.interval)
    watcher = None
    git_dir = local_git_dir(settings.repo)
    if settings.watch and git_dir is not None:
        watcher = RefWatcher(trigger, git_dir)
    host, port = settings.listen_host_port
    app = api_app(reconciler, trigger)
    lease = system.lease
    election = None
    if lease is not None:
        app.role = lambda: role(lease)
        election = _elect(lease, reconciler, trigger, stop)
    api = listener(reconciler, app, host, port)
    stream_host, _, stream_port = settings.stream_listen.rpartition(":")
    tunnels = Tunnels(
        stream_host.strip("[]") or host, int(stream_port or 0), settings.api_token.encode(),
        reconciler.look, reconciler.exec_stream,
    )  # fmt: skip
    app.stream_port = tunnels.port

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()
        trigger.fire("stop")

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    poller.start()
    if watcher:
        watcher.start()
    system.prober.start(stop)
    reconciler.moves.expect(frozenset(reconciler.nodes))
    for node in reconciler.nodes.values():
        # A container that dies or is removed out of band is repaired at once, not next poll.
        threading.Thread(
            target=node.watch,
            args=(_on_event(reconciler, node.name, trigger), stop),
            daemon=True,
            name=f"events-{node.name}",
        ).start()
    threading.Thread(
        target=_check_nodes, args=(reconciler, trigger, stop), daemon=True, name="nodes"
    ).start()
    threading.Thread(
        target=_autoscale, args=(reconciler, trigger, stop), daemon=True, name="autoscale"
    ).start()
    api.start()
    tunnels.start()
    log.info(
        "gitops reconciling %s (branch %s, path '%s') every %ss; API on http://%s:%d",
        reconciler.source.display_url,
        settings.branch,
        settings.path or "/",
        settings.interval,
        *api.address,
    )
    trigger.fire("startup")
    try:
        while not stop.is_set():
            reasons = trigger.wait(timeout=1.0)
            if not reasons or stop.is_set():
                continue
            outcome = _pass(reconciler, poller, reasons)
            if outcome is not None and _batch_started(outcome):
                # A Job's pods started this pass may end within moments: a short settle lets
                # the next pass see them all ended and fill every free slot at once (without
                # it, each pass finds one slot: the pod it made last is still running).
                stop.wait(JOB_SETTLE)
    finally:
        poller.stop()
        # Only a clean stop (SIGTERM, SIGINT) stops the proxy. Whatever else ends this loop
        # leaves it serving the Services; the next run adopts it.
        if system.proxy is not None and stop.is_set():
            system.proxy.stop()
        if system.dns is not None:  # nothing else answers on the bridges' addresses
            system.dns.stop()
        if watcher:
            watcher.stop()
        api.stop()
        if election is not None:  # a clean stop hands the lease over at once
            stop.set()
            election.join(timeout=5)
    return 0


def _elect(
    lease: Lease, reconciler: Reconciler, trigger: Trigger, stop: threading.Event
) -> threading.Thread:
    """The election's thread, after one first try (so the first pass knows whether it acts).
    Becoming the leader reads again what the one before changed, then a pass converges."""

    def changed(leading: bool) -> None:
        if leading:
            try:
                reconciler.resume()
            except GitopsError as exc:  # the pass that follows tries the database again
                log.warning("leader: the state database was not read again: %s", exc)
        log.info("lease %s: %s", lease.name, "leading" if leading else "following")
        trigger.fire("leader" if leading else "follower")

    lease.changed = changed
    try:
        lease.step()
    except Exception:  # the thread tries again
        log.exception("lease %s: the first step failed", lease.name)
    thread = threading.Thread(target=lease.run, args=(stop,), daemon=True, name="lease")
    thread.start()
    return thread


def role(lease: Lease) -> dict[str, Any]:
    """What ``/readyz`` and a refused call say of the election."""
    leader = lease.leader
    return {
        "leading": lease.leading,
        "role": "leader" if lease.leading else "follower",
        "lease": lease.name,
        "holder": lease.holder,
        "term": lease.term,
        "leader": leader.as_dict() if leader is not None else None,
        "error": lease.error,
    }


def _pass(reconciler: Reconciler, poller: Poller, reasons: set[str]) -> Outcome | None:
    """One pass and its requeue. A pass records its own failures; this is the last net, so
    that nothing a pass meets ends the loop."""
    try:
        outcome = reconciler.reconcile(",".join(sorted(reasons)), fetch=reads_git(reasons))
        if outcome.requeue_after is not None:
            poller.retry_in(outcome.requeue_after, RETRY if outcome.retry else REQUEUE)
        return outcome
    except Exception:
        log.exception("reconcile loop: a pass failed outside its own handling")
        poller.retry_in(INTERNAL_RETRY, RETRY)
        return None


JOB_SETTLE = 0.05  # seconds after a pass that started Job pods


def _batch_started(outcome: Outcome) -> bool:
    """The pass started Job pods (the plan's only pods made without slow start)."""
    return outcome.plan is not None and bool(outcome.plan.unthrottled)
