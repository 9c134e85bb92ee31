"""``gitops logs``: containers' logs from any node, through the running reconciler's API.

Targets as kubectl takes them: ``POD`` (``pod/POD``), ``deployment/NAME`` (``sts/``, ``ds/``,
``job/``, ``rs/``, ``rc/``) or ``-l SELECTOR``. A workload or a selector means all its pods, each
line prefixed ``[pod/NAME/CONTAINER]`` (``--prefix``, the default with several pods, as stern
does); followed (``-f``), pods that appear later join the stream. A crashed pod since removed
(a failed rollout's) is read from the logs the reconciler kept of it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from gitops.cli import client, completion
from gitops.cli.common import ERROR, FAILED, OK, duration
from gitops.model import selectors

KINDS = {
    **dict.fromkeys(("pod", "pods", "po"), "Pod"),
    **dict.fromkeys(("deployment", "deployments", "deploy"), "Deployment"),
    **dict.fromkeys(("statefulset", "statefulsets", "sts"), "StatefulSet"),
    **dict.fromkeys(("daemonset", "daemonsets", "ds"), "DaemonSet"),
    **dict.fromkeys(("job", "jobs"), "Job"),
    **dict.fromkeys(("replicaset", "replicasets", "rs"), "ReplicaSet"),
    **dict.fromkeys(("replicationcontroller", "replicationcontrollers", "rc"),
                    "ReplicationController"),
}  # fmt: skip
RELIST = 2.0  # seconds between looks for new pods while following


def add_parser(sub: Any, server: str) -> None:
    p = sub.add_parser(
        "logs",
        help="print the logs of a pod's containers, or of every pod of a workload (-f follows)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "target",
        nargs="?",
        help="POD, pod/POD, deployment/NAME, sts/NAME, ds/NAME, job/NAME, rs/NAME",
    ).completer = completion.targets
    p.add_argument(
        "-n",
        "--namespace",
        default=os.environ.get("GITOPS_NAMESPACE"),
        help="the namespace (GITOPS_NAMESPACE; default: any, when the name is unique)",
    )
    p.add_argument("-l", "--selector", help="pods whose labels match (=, ==, !=, in, notin, "
                   "exists, !exists)")  # fmt: skip
    p.add_argument("-c", "--container", default="", help="this container (default: the only one)")
    p.add_argument("--all-containers", action="store_true", help="every container of each pod")
    p.add_argument("-f", "--follow", action="store_true", help="stream new lines as they come")
    p.add_argument("--previous", "-p", action="store_true",
                   help="the instance before the last restart (a crashed pod's)")  # fmt: skip
    p.add_argument("--since", type=duration, help="lines newer than this (5s, 2m, 3h)")
    p.add_argument("--since-time", help="lines at or after this RFC 3339 time")
    p.add_argument("--tail", type=int, default=-1, help="the last N lines (default -1: all)")
    p.add_argument("--timestamps", action="store_true", help="each line's RFC 3339 time first")
    p.add_argument(
        "--prefix",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="each line's source first (default: with several pods or containers)",
    )
    p.add_argument("--max-log-requests", type=int, default=10,
                   help="streams followed at once at most (default 10)")  # fmt: skip
    p.add_argument(
        "-o",
        "--output",
        choices=("text", "json"),
        default="text",
        help="json: one object a line (namespace, pod, container, node, time, message)",
    )
    p.add_argument("--server", default=server, help="the running reconciler's API")


class _Source:
    """One container's stream and how its lines are printed."""

    def __init__(self, pod: dict[str, Any], container: str) -> None:
        self.pod, self.container = pod, container
        self.key = (pod["namespace"], pod["name"], container)


def cmd(args: argparse.Namespace) -> int:
    try:
        match = selectors.parse(args.selector) if args.selector else None
    except ValueError as exc:
        print(f"gitops: -l: {exc}", file=sys.stderr)
        return ERROR
    if bool(args.target) == bool(match):
        print("gitops: name a POD or a workload (deployment/NAME), or give -l", file=sys.stderr)
        return ERROR
    kind, name = _target(args.target or "")
    if kind is None:
        kinds = "pod, deployment, statefulset, daemonset, job, replicaset"
        print(f"gitops: {args.target!r}: expected POD or KIND/NAME, KIND one of {kinds}",
              file=sys.stderr)  # fmt: skip
        return ERROR

    def choose() -> list[dict[str, Any]]:
        return _pods(args, kind, name, match)

    pods = choose()
    if not pods:
        what = f"-l {args.selector}" if match else args.target
        where = f" in namespace {args.namespace}" if args.namespace else ""
        print(f"gitops: no pods found for {what}{where}", file=sys.stderr)
        return ERROR
    if kind == "Pod" and len({p["namespace"] for p in pods}) > 1:
        spaces = ", ".join(sorted({p["namespace"] for p in pods}))
        print(f"gitops: pod {name} is in several namespaces ({spaces}): -n", file=sys.stderr)
        return ERROR
    several = kind != "Pod" or args.all_containers
    prefix = several if args.prefix is None else args.prefix
    printer = _Printer(args.output, prefix, args.timestamps)
    token = client.read_token()
    failed: list[str] = []
    sources = _sources(pods, args)
    if not args.follow:
        for s in sources:
            _stream(args, s, token, printer, failed, quiet_previous=kind != "Pod")
        return FAILED if failed and kind == "Pod" else OK
    return _follow(args, sources, choose if kind != "Pod" else None, token, printer, failed)


def _target(text: str) -> tuple[str | None, str]:
    if not text:
        return "", ""
    kind, slash, name = text.partition("/")
    if not slash:
        return "Pod", text
    return (KINDS.get(kind.lower()), name) if name else (None, "")


def _pods(
    args: argparse.Namespace, kind: str, name: str,
    match: Callable[[dict[str, str]], bool] | None,
) -> list[dict[str, Any]]:  # fmt: skip
    query = f"?namespace={quote(args.namespace)}" if args.namespace else ""
    live = [p for p in client.pods(args.server, args.namespace) if p["containers"]]
    if match is not None:
        return [p for p in live if match(p.get("labels") or {})]
    every = live
    if kind == "Pod" or args.previous:  # a removed crashed pod's kept logs are read then only
        live_names = {(p["namespace"], p["name"]) for p in live}
        every = live + [
            {**k, "containers": [{"name": c} for c in k["containers"]], "ownerKind": "",
             "labels": {}, "deployment": k["workload"]}
            for k in client.get(args.server, f"/api/v1/keptlogs{query}")
            if (k["namespace"], k["name"]) not in live_names
        ]  # fmt: skip
    if kind == "Pod":
        return [p for p in every if p["name"] == name]
    # A kept pod's kind is not known: it counts for the workload of its name, if any.
    return [p for p in every if p["deployment"] == name and p.get("ownerKind") in (kind, "")]


def _sources(pods: list[dict[str, Any]], args: argparse.Namespace) -> list[_Source]:
    out = []
    for pod in sorted(pods, key=lambda p: (p["namespace"], p["name"])):
        names = [c["name"] for c in pod["containers"]]
        if args.all_containers:
            out += [_Source(pod, c) for c in names]
        else:
            out.append(_Source(pod, args.container or (names[0] if len(names) == 1 else "")))
    return out


class _Printer:
    def __init__(self, output: str, prefix: bool, timestamps: bool) -> None:
        self.output, self.prefix, self.timestamps = output, prefix, timestamps
        self._lock = threading.Lock()

    def line(self, s: _Source, raw: str) -> None:
        stamp, _, text = raw.partition(" ")
        if self.output == "json":
            out = json.dumps({"namespace": s.pod["namespace"], "pod": s.pod["name"],
                              "container": s.container, "node": s.pod.get("node", ""),
                              "time": stamp, "message": text})  # fmt: skip
        else:
            out = (f"[pod/{s.pod['name']}/{s.container}] " if self.prefix else "") + (
                raw if self.timestamps else text
            )
        with self._lock:
            print(out, flush=True)


def _stream(
    args: argparse.Namespace, s: _Source, token: str, printer: _Printer, failed: list[str],
    quiet_previous: bool = False, joined: bool = False,
) -> None:  # fmt: skip
    """One container's lines, printed as they come; an error is said once, on stderr."""
    params: dict[str, str] = {"timestamps": "true"}
    if s.container:
        params["container"] = s.container
    if args.follow:
        params["follow"] = "true"
    if args.previous:
        params["previous"] = "true"
    if not joined:  # a pod that joined a followed stream is read from its first line
        if args.tail >= 0:
            params["tailLines"] = str(args.tail)
        if args.since_time:
            params["sinceTime"] = args.since_time
        elif args.since is not None:
            params["sinceSeconds"] = str(max(1, int(args.since)))
    path = (f"/api/v1/namespaces/{quote(s.pod['namespace'], safe='')}/pods/"
            f"{quote(s.pod['name'], safe='')}/log?{urlencode(params)}")  # fmt: skip
    req = urllib.request.Request(args.server.rstrip("/") + path)  # noqa: S310 - our server
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=None if args.follow else 60) as resp:  # noqa: S310
            for raw in resp:
                printer.line(s, raw.decode("utf-8", "replace").rstrip("\n"))
    except urllib.error.HTTPError as exc:
        said = _error(exc)
        if quiet_previous and args.previous and "previous terminated container" in said:
            return  # of a workload's pods, only those that restarted have a previous instance
        print(f"gitops: pod/{s.pod['name']}: {said}", file=sys.stderr)
        failed.append(s.pod["name"])
    except (urllib.error.URLError, OSError) as exc:
        print(f"gitops: cannot reach the reconciler at {args.server}: {exc}", file=sys.stderr)
        failed.append(s.pod["name"])


def _error(exc: urllib.error.HTTPError) -> str:
    text = exc.read().decode(errors="replace")
    try:
        return str(json.loads(text).get("error", text))
    except (ValueError, AttributeError):
        return f"HTTP {exc.code}: {text[:200]}"


def _follow(
    args: argparse.Namespace, sources: list[_Source],
    choose: Callable[[], list[dict[str, Any]]] | None, token: str, printer: _Printer,
    failed: list[str],
) -> int:  # fmt: skip
    """Every source in a thread of its own; with ``choose`` (a workload or a selector), new
    pods join until interrupted. A lone pod's stream ends when its container stops."""
    threads: dict[tuple[str, str, str], threading.Thread] = {}

    def start(batch: list[_Source], joined: bool) -> bool:
        for s in batch:
            if s.key in threads:
                continue
            if len(threads) >= args.max_log_requests:
                print(f"gitops: following {args.max_log_requests} streams at most "
                      "(--max-log-requests); more are not followed", file=sys.stderr)  # fmt: skip
                return False
            t = threading.Thread(
                target=_stream, args=(args, s, token, printer, failed, True, joined),
                daemon=True,
            )  # fmt: skip
            threads[s.key] = t
            t.start()
        return True

    start(sources, False)
    if choose is None:
        for t in threads.values():
            t.join()
        return FAILED if failed else OK
    try:
        while True:
            time.sleep(RELIST)
            try:
                start(_sources(choose(), args), True)
            except SystemExit:  # the reconciler is away for a moment: look again later
                continue
    except KeyboardInterrupt:
        return OK
