"""Wiring: build a reconciler from settings, and run it forever (``gitops run``).

The loop is level-triggered: it waits on one ``Trigger`` that the poller, the ref watcher,
the API and its own requeue requests fire, then runs one pass. Passes never overlap.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

from gitops.api import ApiServer, App
from gitops.apply import Progress
from gitops.config import Settings
from gitops.history import History
from gitops.nodes.docker import DockerNode
from gitops.prober import Prober
from gitops.proxy import ServiceProxy
from gitops.reconciler import Reconciler
from gitops.source.git import GitSource, local_git_dir
from gitops.source.triggers import Poller, RefWatcher, Trigger

log = logging.getLogger(__name__)


def build(settings: Settings, progress: Progress | None = None, serve: bool = False) -> Reconciler:
    state = settings.state_dir
    state.mkdir(parents=True, exist_ok=True)
    source = GitSource(
        settings.repo,
        state / "source",
        branch=settings.branch,
        path=settings.path,
        token_env=settings.token_env,
    )
    nodes = [DockerNode(n.name, n.docker_host, settings.instance) for n in settings.nodes]
    prober = Prober({n.name: n for n in nodes}, time.time)
    proxy = ServiceProxy(settings.node_address, state) if serve else None
    return Reconciler(
        settings, source, nodes, History(state), progress=progress, prober=prober, proxy=proxy
    )


def run(settings: Settings, stop: threading.Event | None = None) -> int:
    stop = stop or threading.Event()
    reconciler = build(settings, serve=True)
    trigger = Trigger()
    poller = Poller(trigger, settings.interval)
    watcher = None
    git_dir = local_git_dir(settings.repo)
    if settings.watch and git_dir is not None:
        watcher = RefWatcher(trigger, git_dir)
    host, port = settings.listen_host_port
    api = ApiServer(host, port, App(reconciler, trigger))

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
    if reconciler.prober is not None:

        def verdict_changed(reason: str) -> None:
            reconciler.refresh_endpoints()  # Services follow readiness within the second
            trigger.fire(reason)

        reconciler.prober.notify = verdict_changed
        reconciler.prober.start(stop)
    for node in reconciler.nodes.values():
        # A container that dies or is removed out of band is repaired at once, not next poll.
        threading.Thread(
            target=node.watch,
            args=(lambda action: trigger.fire(f"engine:{action}"), stop),
            daemon=True,
            name=f"events-{node.name}",
        ).start()
    api.start()
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
            outcome = reconciler.reconcile(",".join(sorted(reasons)))
            if outcome.requeue_after is not None:
                poller.retry_in(outcome.requeue_after)
    finally:
        poller.stop()
        if reconciler.proxy is not None:
            reconciler.proxy.stop()
        if watcher:
            watcher.stop()
        api.stop()
    return 0
