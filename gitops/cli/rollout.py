"""``gitops rollout status|history|undo|restart|pause|resume``: verbs about one deployment.

``status`` and ``history`` ask the running reconciler; ``undo``, ``restart``, ``pause`` and
``resume`` change git (a commit, pushed with ``--push``), and the reconciler deploys it like any
other commit: rollback the GitOps way.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from gitops.cli.commits import commit
from gitops.cli.common import ERROR, FAILED, OK, deployment, duration, kind_of
from gitops.config.durations import format_duration
from gitops.errors import GitopsError


def _line(rollout: dict[str, Any] | None, dep: dict[str, Any] | None) -> str:
    reps = (dep or {}).get("replicas") or {}
    desired = reps.get("desired", 0)
    head = (
        f"revision {rollout['revision']} ({rollout['commit'][:12]})"
        if rollout
        else "no rollout yet"
    )
    return (
        f"{head}: {reps.get('updated', 0)}/{desired} updated, "
        f"{reps.get('ready', 0)}/{desired} ready, {reps.get('available', 0)}/{desired} available"
    )


def status(args: argparse.Namespace, api: Any, post: Any) -> int:
    """Follow the deployment's rollout at ``--commit`` (default: the branch head, fetched after
    this command began, as kubectl waits for the controller to observe the newest spec) until
    it completes (0), fails or is rolled back (1), or the timeout passes (2), with a live
    progress line. The verdict is the reconciler's (``gitops.decide.delivery``, for one
    deployment)."""
    deadline = time.monotonic() + args.timeout
    code, body = post("/api/v1/sync")  # fetch now, if this user may ask
    if code == 202:
        after = int(body.get("after", 0))
    else:  # no token: the next fetch (a push watched, a webhook, the poll) will do
        after = int(api(f"/api/v1/rollouts/{args.namespace}/{args.name}?limit=1")["fetches"])
    query = f"limit=2&revision={args.commit or ''}&after={after}"
    last = ""
    tty = sys.stderr.isatty()
    while True:
        data = api(f"/api/v1/rollouts/{args.namespace}/{args.name}?{query}")
        verdict = data["verdict"]
        rollouts = data["rollouts"]
        latest = rollouts[0] if rollouts else None
        reached = verdict["applying"] and data["deployment"]
        line = _line(latest, data["deployment"]) if reached else verdict["message"]
        if line != last:
            print(
                ("\r\033[K" if tty else "") + line,
                end="" if tty else "\n",
                file=sys.stderr,
                flush=True,
            )
            last = line
        end = "\n" if tty else ""
        if verdict["state"] == "Succeeded":
            print(end + f'deployment "{args.name}" successfully rolled out', file=sys.stderr)
            return OK
        if verdict["state"] in ("Failed", "NotFound"):
            print(end + f'deployment "{args.name}" {_failure(verdict["message"])}', file=sys.stderr)
            return FAILED
        if not args.watch:
            return FAILED
        if time.monotonic() > deadline:
            print(end + f"timed out after {format_duration(args.timeout)}", file=sys.stderr)
            return ERROR
        time.sleep(0.5)


def _failure(message: str) -> str:
    """``rolled back: ...`` or ``failed: ...`` from the verdict's message."""
    prefix = "deployment "
    text = message.split(": ", 1)[1] if message.startswith(prefix) else message
    return text if text.startswith("rolled back") else f"failed: {text}"


def history(args: argparse.Namespace, api: Any, emit: Any, table: Any) -> int:
    data = api(f"/api/v1/rollouts/{args.namespace}/{args.name}?limit={args.limit}")
    rows = data["rollouts"]
    if args.output != "table":
        emit(rows, args.output)
        return OK
    table(
        [
            [
                str(r["revision"]),
                r["commit"][:12],
                r["result"],
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["started"])),
                (r["author"].split(" <")[0])[:20],
                r["subject"][:40],
                (r["reason"] or "")[:60],
            ]
            for r in rows
        ],
        ["REVISION", "COMMIT", "RESULT", "STARTED", "AUTHOR", "SUBJECT", "REASON"],
    )
    return OK


def add_parser(sub: Any, server: str) -> None:
    p = sub.add_parser(
        "rollout", help="status, history, undo, restart, pause, resume of a deployment"
    )
    verbs = p.add_subparsers(dest="rollout_verb", required=True, metavar="VERB")

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "name", type=deployment, metavar="deployment/NAME|statefulset/NAME|daemonset/NAME"
        )
        q.add_argument("-n", "--namespace", default=os.environ.get("GITOPS_NAMESPACE", "default"))

    q = verbs.add_parser(
        "status", help="follow the newest rollout: exit 0 done, 1 failed or rolled back, 2 timeout"
    )
    common(q)
    q.add_argument("--server", default=server)
    q.add_argument("--timeout", type=duration, default=600.0, help="give up after (default 10m)")
    q.add_argument("--commit", help="wait for the rollout of this commit (what CI just pushed)")
    q.add_argument("-w", "--watch", action=argparse.BooleanOptionalAction, default=True)
    q.add_argument("-o", "--output", choices=("table",), default="table")

    q = verbs.add_parser(
        "history", help="the deployment's revisions with commit, author, subject, result"
    )
    common(q)
    q.add_argument("--server", default=server)
    q.add_argument("--limit", type=int, default=20)
    q.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")

    helps = {
        "undo": "commit the deployment (and its ConfigMaps/Secrets) as of an earlier revision",
        "restart": "rolling restart: commit a restartedAt annotation on the pod template",
        "pause": "commit spec.paused: true (the rollout stops where it stands)",
        "resume": "commit spec.paused: false",
    }
    env = os.environ.get
    for verb, text in helps.items():
        q = verbs.add_parser(verb, help=text)
        common(q)
        q.add_argument("--repo", default=env("GITOPS_REPO"), help="repository URL or path")
        q.add_argument("--branch", default=env("GITOPS_BRANCH", "main"))
        q.add_argument("--path", default=env("GITOPS_PATH", ""), help="sub-path of manifests")
        q.add_argument("--push", action="store_true", help="push the commit (else only print it)")
        q.add_argument("-m", "--message", default="", help="extra commit text (a CI build URL)")
        q.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table")
        q.add_argument("--server", default=server, help="the reconciler to ask for revisions")
        if verb == "undo":
            q.add_argument("--to-revision", type=int, help="a revision from `rollout history`")
            q.add_argument("--to-commit", help="a commit to restore the deployment from")


def change(args: argparse.Namespace, api: Any) -> int:
    """undo, restart, pause, resume: one commit to git, pushed with --push."""
    from gitops.source import changes

    if not args.repo:
        print("gitops: --repo (or GITOPS_REPO) is required", file=sys.stderr)
        return ERROR
    key = (kind_of(args.name), args.namespace, args.name)
    verb = args.rollout_verb
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        target = replaced = ""
        if verb == "undo" and key[0] in changes.VERBS:
            rows = [] if args.to_commit else api(
                f"/api/v1/rollouts/{args.namespace}/{args.name}?limit=100")["rollouts"]  # fmt: skip
            target, replaced = changes.undo_target(
                rows, f"{key[0].lower()} {args.namespace}/{args.name}", args.to_revision,
                args.to_commit or "")  # fmt: skip
        made = changes.rollout(verb, key, args.path, now, f"gitops rollout {verb}", target,
                               replaced, args.message)  # fmt: skip
    except GitopsError as exc:
        print(f"gitops: {exc}", file=sys.stderr)
        return ERROR
    return commit(args, made.message, made.edit, args.push)
