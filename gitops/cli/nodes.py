"""``gitops cordon|uncordon|drain NODE``: verbs about nodes.

They ask the running reconciler (its HTTP API). ``drain`` cordons the node and has its pods
moved elsewhere with each Deployment's rolling rules (surge on other nodes, then remove), then
waits until the node is empty, with a progress line: exit 0 when it is, 1 when ``--timeout``
passes first, 2 when the reconciler cannot be asked.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from gitops.cli.client import request
from gitops.cli.common import ERROR, FAILED, OK, duration
from gitops.config.durations import format_duration

Emit = Callable[[Any, str], None]


def cmd(emit: Emit) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return change(args, emit)

    return run


def add_parsers(sub: Any, server: str) -> None:
    for verb, text in (
        ("cordon", "mark a node unschedulable: no new pods go there, its pods stay"),
        ("uncordon", "make a node schedulable again"),
        ("drain", "cordon a node and move its pods elsewhere with the rolling rules; wait"),
    ):
        p = sub.add_parser(verb, help=text, description=text)
        p.add_argument("node", metavar="NODE")
        p.add_argument("--server", default=server, help="the running reconciler's API")
        p.add_argument("-o", "--output", choices=("table", "json"), default="table")
        if verb == "drain":
            p.add_argument(
                "--timeout",
                type=duration,
                default=300.0,
                help="give up waiting after (default 5m; exit 1)",
            )


def change(args: argparse.Namespace, emit: Emit) -> int:
    code, body = request(args.server, f"/api/v1/nodes/{args.node}/{args.verb}", "POST")
    if code != 200:
        print(f"gitops: {body.get('error', body)}", file=sys.stderr)
        return ERROR
    if args.verb != "drain":
        if args.output == "json":
            emit(body, "json")
        else:
            print(f"node/{args.node} {'un' if args.verb == 'uncordon' else ''}cordoned")
        return OK
    return _wait_empty(args, emit)


def _ended(pod: dict[str, Any]) -> bool:
    """A Job's (or CronJob's) pod that ran to its end."""
    job = pod.get("ownerKind") in ("Job", "CronJob")
    return job and pod.get("status") in ("Completed", "Error")


def _wait_empty(args: argparse.Namespace, emit: Emit) -> int:
    deadline = time.monotonic() + args.timeout
    started = time.monotonic()
    last = ""
    while True:
        _, pods = request(args.server, "/api/v1/pods")
        # A DaemonSet's pods stay, as with kubectl drain --ignore-daemonsets; a Job's pods
        # that ended hold nothing of the node (kubectl deletes them; here their logs stay).
        pods = [p for p in pods if p.get("ownerKind") != "DaemonSet" and not _ended(p)]
        left = sorted(f"{p['namespace']}/{p['name']}" for p in pods if p["node"] == args.node)
        line = f"node/{args.node}: {len(left)} pod(s) left"
        if left:
            line += f" ({', '.join(left[:3])}{', …' if len(left) > 3 else ''})"
        held = [p["message"] for p in pods if p["node"] == args.node and p.get("message")]
        if held:  # kubectl drain's "error when evicting pods ... (will retry after 5s)"
            line += f"; {held[0]}; retrying"
        if line != last:
            print(f"  {line}", file=sys.stderr, flush=True)
            last = line
        if not left:
            took = format_duration(time.monotonic() - started)
            if args.output == "json":
                seconds = round(time.monotonic() - started, 1)
                emit({"node": args.node, "drained": True, "seconds": seconds}, "json")
            else:
                print(f"node/{args.node} drained in {took}")
            return OK
        if time.monotonic() > deadline:
            within = format_duration(args.timeout)
            print(
                f"gitops: node/{args.node} not drained within {within}: {len(left)} pod(s) left",
                file=sys.stderr,
            )
            return FAILED
        time.sleep(0.5)
