"""Command line: verbs only. Parse arguments, call the library, print, exit with a code CI can use.

Exit codes: 0 success / no difference, 1 failure / difference found, 2 error (bad usage,
source or node unreachable, server not answering, timeout).
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import os
import re
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitops import __version__
from gitops.cli import client, completion, reads
from gitops.cli import create as cli_create
from gitops.cli import delete as cli_delete
from gitops.cli import describe as cli_describe
from gitops.cli import edit as cli_edit
from gitops.cli import logs as cli_logs
from gitops.cli import nodes as cli_nodes
from gitops.cli import rollout as cli_rollout
from gitops.cli import statedb as cli_statedb
from gitops.cli import sync as cli_sync
from gitops.cli import tunnel as cli_tunnel
from gitops.cli.common import BROKEN_PIPE, ERROR, FAILED, OK, duration, emit, table
from gitops.cli.output import output_form
from gitops.config.durations import format_duration
from gitops.config.tokens import api_token, default_state_dir, read_secret
from gitops.errors import GitopsError

if TYPE_CHECKING:  # the verbs that need them import them: ``get`` starts without them
    from gitops.config.settings import Settings
    from gitops.manifests.files import Rules

# A DNS-1123 label (gitops.manifests.fields has it too; that module is heavy to import).
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _instance(text: str) -> str:
    if len(text) > 40 or not DNS1123_LABEL.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text[:40]!r}: at most 40 lower case letters, digits or '-' (a DNS label)"
        )
    return text


def _backoff(text: str) -> tuple[float, float, float]:
    parts = [duration(p) for p in text.split(",")]
    if len(parts) != 3 or not 0 < parts[0] <= parts[1]:
        raise argparse.ArgumentTypeError("expected INITIAL,MAX,RESET such as 10s,5m,10m")
    return parts[0], parts[1], parts[2]


def _job_backoff(text: str) -> tuple[float, float]:
    parts = [duration(p) for p in text.split(",")]
    if len(parts) != 2 or not 0 < parts[0] <= parts[1]:
        raise argparse.ArgumentTypeError("expected INITIAL,MAX such as 10s,6m")
    return parts[0], parts[1]


def _add_output(
    p: argparse.ArgumentParser, choices: tuple[str, ...] = ("table", "json", "yaml")
) -> None:
    p.add_argument("-o", "--output", choices=choices, default="table", help="output format")


def _add_source(p: argparse.ArgumentParser) -> None:
    env = os.environ.get
    p.add_argument(
        "--repo", default=env("GITOPS_REPO"), help="repository URL or path (GITOPS_REPO)"
    )
    p.add_argument("--branch", default=env("GITOPS_BRANCH", "main"), help="branch (default main)")
    p.add_argument("--path", default=env("GITOPS_PATH", ""), help="sub-path holding manifests")
    p.add_argument(
        "--state-dir",
        type=Path,
        default=default_state_dir(),
        help="where history and the git cache live (GITOPS_STATE_DIR)",
    )
    p.add_argument(
        "--state",
        default=env("GITOPS_STATE", ""),
        metavar="URL",
        help="the state database: sqlite:///PATH, or postgresql://USER@HOST/DB to share it "
        "between reconcilers (GITOPS_STATE; default: SQLite in --state-dir). A password "
        "belongs in PGPASSWORD or ~/.pgpass rather than the URL: a URL shows in ps",
    )
    p.add_argument(
        "--docker-host",
        default=env("DOCKER_HOST"),
        help="Docker engine endpoint of the node (default DOCKER_HOST or the local socket)",
    )
    p.add_argument(
        "--instance",
        type=_instance,
        default=env("GITOPS_INSTANCE", "default"),
        help="owner name: only containers labelled with it are managed, and every name it "
        "gives on an engine carries it (a DNS label; default 'default')",
    )
    p.add_argument("--node-name", default=env("GITOPS_NODE_NAME", "local"), help="name of the node")
    p.add_argument(
        "--config",
        type=Path,
        default=env("GITOPS_CONFIG"),
        help="configuration file with the node list (GITOPS_CONFIG; see README, Cluster)",
    )
    p.add_argument(
        "--node",
        action="append",
        default=[],
        metavar="SPEC",
        help="a node: name=N,endpoint=URL[,address=IP][,label.K=V][,reserve.cpu=Q]"
        "[,reserve.memory=Q][,tls.ca=F,tls.cert=F,tls.key=F]; repeatable",
    )
    _add_file_rules(p)
    _add_skip_groups(p)
    p.add_argument(
        "--allow-empty",
        action="store_true",
        help="let a commit without manifests remove every managed workload",
    )
    p.add_argument(
        "--restart-backoff",
        type=_backoff,
        default=(10.0, 300.0, 600.0),
        metavar="INITIAL,MAX,RESET",
        help="crash and image-pull back-off: first delay, cap, reset after (default 10s,5m,10m)",
    )
    p.add_argument(
        "--job-backoff",
        type=_job_backoff,
        default=(10.0, 360.0),
        metavar="INITIAL,MAX",
        help="delay before a Job's next pod after failures: first, cap (default 10s,6m)",
    )
    p.add_argument(
        "--no-auto-rollback",
        action="store_true",
        help="leave a rollout that missed its progress deadline as it is (Degraded)",
    )
    p.add_argument(
        "--token-env",
        default="GITOPS_GIT_TOKEN",
        help="environment variable holding an HTTPS token (default GITOPS_GIT_TOKEN)",
    )


def _add_file_rules(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="read only manifest files matching GLOB (gitignore syntax, {a,b} alternatives; "
        "repeatable; GITOPS_INCLUDE, space-separated)",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="leave out files matching GLOB, as a .gitopsignore line does (repeatable; "
        "GITOPS_EXCLUDE, space-separated)",
    )


def _add_skip_groups(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--skip-api-group",
        action="append",
        default=[],
        metavar="GROUP",
        help="list custom resources of API GROUP (monitoring.coreos.com) as Skipped instead of "
        "refusing the commit (repeatable; GITOPS_SKIP_API_GROUP, space-separated; "
        "skipApiGroups in --config)",
    )


def _skip_groups(args: argparse.Namespace, from_file: Any = ()) -> frozenset[str]:
    env = os.environ.get("GITOPS_SKIP_API_GROUP", "").split()
    return frozenset([*from_file, *env, *args.skip_api_group])


def _rules(args: argparse.Namespace) -> Rules:
    from gitops.manifests.files import Rules

    env = os.environ.get
    return Rules(
        include=tuple(env("GITOPS_INCLUDE", "").split() + args.include),
        exclude=tuple(env("GITOPS_EXCLUDE", "").split() + args.exclude),
    )


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    from gitops.config.nodes import node_list
    from gitops.config.settings import NodeConfig, Settings

    if not args.repo:
        print("gitops: --repo (or GITOPS_REPO) is required", file=sys.stderr)
        raise SystemExit(ERROR)
    try:
        nodes, from_file = node_list(args.node, args.config)
    except GitopsError as exc:
        print(f"gitops: {exc}", file=sys.stderr)
        raise SystemExit(ERROR) from exc
    timing: dict[str, Any] = dict(from_file)
    timing["skip_api_groups"] = _skip_groups(args, timing.get("skip_api_groups", ()))
    return Settings(
        repo=args.repo,
        branch=args.branch,
        path=args.path,
        state_dir=args.state_dir,
        state=args.state,
        nodes=nodes or (NodeConfig(args.node_name, args.docker_host),),
        **timing,
        allow_empty=args.allow_empty,
        token_env=args.token_env,
        instance=args.instance,
        auto_rollback=not args.no_auto_rollback,
        crash_backoff=args.restart_backoff,
        job_backoff=args.job_backoff,
        rules=_rules(args),
        **extra,
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="gitops",
        description="Keep plain Docker hosts in the state a git repository describes.",
        epilog="Exit codes: 0 success, 1 failure or difference, 2 error.",
    )
    top.add_argument("--version", action="version", version=f"gitops {__version__}")
    top.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    top.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=os.environ.get("GITOPS_LOG_FORMAT", "text"),
        help="text for people (default), json (one object a line) for log collectors",
    )
    sub = top.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = sub.add_parser(
        "run",
        help="run the reconciler until stopped",
        epilog="Every --some-flag can also be given as the environment variable "
        "GITOPS_SOME_FLAG (deploy/gitops.env documents each). The command line wins.",
    )
    _add_source(p)
    p.add_argument(
        "--interval",
        type=duration,
        default=os.environ.get("GITOPS_INTERVAL", "15s"),
        help="poll interval (default 15s; GITOPS_INTERVAL)",
    )
    p.add_argument(
        "--autoscale-interval",
        type=duration,
        default=os.environ.get("GITOPS_AUTOSCALE_INTERVAL", "15s"),
        help="how often the HorizontalPodAutoscalers sample their pods' CPU and memory and "
        "decide (default 15s, as Kubernetes' HPA sync period; GITOPS_AUTOSCALE_INTERVAL)",
    )
    p.add_argument(
        "--listen",
        default=os.environ.get("GITOPS_LISTEN", "127.0.0.1:8080"),
        help="API and /metrics address (default 127.0.0.1:8080: this machine only)",
    )
    p.add_argument("--no-watch", action="store_true", help="do not watch a local repository")
    p.add_argument(
        "--write-back",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get("GITOPS_WRITE_BACK", "").lower() in ("1", "true", "yes"),
        help="the dashboard's rollout restart, pause, resume and undo commit and push to the "
        "branch (the git token must allow pushing); else it shows the CLI command (default off)",
    )
    p.add_argument(
        "--leader-elect",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get("GITOPS_LEADER_ELECT", "").lower() in ("1", "true", "yes"),
        help="several processes share one PostgreSQL --state; only the one holding the lease "
        "acts, the others serve reads and take over when it stops renewing (default off)",
    )
    for flag, default, text in (
        ("lease-duration", "15s", "a lease not renewed for this long is taken over"),
        ("renew-deadline", "10s", "the leader stops acting this long after its last renewal"),
        ("retry-period", "2s", "between renewals, and between a follower's tries"),
    ):
        env = "GITOPS_LEADER_ELECT_" + flag.upper().replace("-", "_")
        p.add_argument(f"--leader-elect-{flag}", type=duration,
                       default=os.environ.get(env, default),
                       help=f"{text} (default {default}; {env})")  # fmt: skip
    p.add_argument(
        "--advertise",
        default=os.environ.get("GITOPS_ADVERTISE", ""),
        metavar="URL",
        help="this API's URL as the other processes give it for the leader (default "
        "http://<--listen>; GITOPS_ADVERTISE)",
    )
    p.add_argument(
        "--node-address",
        default=os.environ.get("GITOPS_NODE_ADDRESS", "127.0.0.1"),
        help="address NodePort Services listen on (default 127.0.0.1)",
    )
    p.add_argument(
        "--ingress-address",
        default=os.environ.get("GITOPS_INGRESS_ADDRESS", "127.0.0.1"),
        help="address Ingress routes are served on here (default 127.0.0.1; a node whose "
        "proxy is its own serves them on its address)",
    )
    p.add_argument(
        "--ingress-http-port",
        type=_port,
        default=os.environ.get("GITOPS_INGRESS_HTTP_PORT", "80"),
        help="Ingress HTTP port (default 80)",
    )
    p.add_argument(
        "--ingress-https-port",
        type=_port,
        default=os.environ.get("GITOPS_INGRESS_HTTPS_PORT", "443"),
        help="Ingress HTTPS port (default 443; served once an Ingress has a TLS Secret)",
    )
    p.add_argument(
        "--stream-listen",
        default=os.environ.get("GITOPS_STREAM_LISTEN", ""),
        help="where exec and port-forward connect, HOST:PORT (default: the API's host, a free "
        "port; GET /api/v1/streams says which)",
    )
    p.add_argument(
        "--node-proxy-stats-port",
        type=_port_or_zero,
        default=os.environ.get("GITOPS_NODE_PROXY_STATS_PORT", "0"),
        help="a port on each remote node's address where its own proxy tells the reconciler "
        "what it sent each pod, behind a secret path, for autoscalers' Pods and Object "
        "metrics (default 0: not served, and only the reconciler's own proxy is counted; "
        "GITOPS_NODE_PROXY_STATS_PORT)",
    )
    p.add_argument(
        "--proxy-threads",
        type=_threads,
        default=os.environ.get("GITOPS_PROXY_THREADS", "0"),
        help="threads of the service and Ingress proxy (HAProxy's nbthread; default 0: half "
        "this machine's cores, at least one, leaving the rest to the pods)",
    )
    p.add_argument(
        "--api-token-file",
        default=os.environ.get("GITOPS_API_TOKEN_FILE"),
        help="bearer token for calls that change state (else GITOPS_API_TOKEN, else "
        "STATE_DIR/api-token, made on first start)",
    )
    p.add_argument(
        "--webhook-secret-file",
        default=os.environ.get("GITOPS_WEBHOOK_SECRET_FILE"),
        help="secret the git host signs webhooks with (else GITOPS_WEBHOOK_SECRET; "
        "without one, webhooks are refused)",
    )
    p.add_argument(
        "--webhook-max-bytes",
        type=int,
        default=int(os.environ.get("GITOPS_WEBHOOK_MAX_BYTES", str(4 * 1024 * 1024))),
        help="larger webhook bodies get 413 (default 4 MiB)",
    )
    p.add_argument(
        "--notify",
        action="append",
        type=_receiver,
        default=[],
        metavar="FORMAT=URL",
        help="send events to URL as generic JSON or slack (repeatable; GITOPS_NOTIFY, "
        "space-separated)",
    )

    p = sub.add_parser(
        "sync",
        help="deploy now: ask the running reconciler (--server, --wait) or reconcile here",
        description="With --wait, --revision or --server: ask the running reconciler to fetch "
        "and reconcile now, and with --wait follow the commit until it is healthy on every "
        "node (exit 0), failed or rolled back (exit 1), or --timeout passes (exit 2). "
        "Otherwise reconcile in this process until converged.",
    )
    _add_source(p)
    p.add_argument("--once", action="store_true", help="run in this process, once (the default)")
    p.add_argument("--timeout", type=duration, default=300.0, help="give up after (default 5m)")
    p.add_argument("--wait", action="store_true", help="wait for the commit's verdict")
    p.add_argument("--revision", default="", help="the commit to wait for (default: branch head)")
    p.add_argument("--server", default=None, help="the running reconciler (GITOPS_SERVER)")
    _add_output(p)

    p = sub.add_parser("diff", help="print what a sync would change (exit 1 when anything would)")
    _add_source(p)
    _add_output(p)

    p = sub.add_parser(
        "validate",
        help="validate manifests in a directory (exit 1 when invalid)",
        description="Reads the files the reconciler would read (.yaml, .yml, .json, less what "
        ".gitopsignore, --include and --exclude leave out) and checks them as it checks a commit.",
    )
    p.add_argument("dir", type=Path, help="directory of manifests")
    _add_file_rules(p)
    _add_skip_groups(p)
    p.add_argument(
        "--config",
        type=Path,
        default=os.environ.get("GITOPS_CONFIG"),
        help="the reconciler's configuration file: what its nodes allow (allowPrivileged) and "
        "skipApiGroups (GITOPS_CONFIG)",
    )
    _add_output(p)

    p = sub.add_parser(
        "get",
        help="list deployments, statefulsets, daemonsets, jobs, replicasets, pods, services, "
        "endpoints, namespaces, nodes, "
        "configmaps, secrets (keys only, never values), pvc, pdb",
    )
    kind = p.add_argument(
        "kind",
        metavar="KIND[/NAME]",
        help="deployments|sts|ds|replicasets|replicationcontrollers|pods|services|endpoints|"
        "namespaces|nodes|configmaps|secrets|pvc|pdb|ingresses|jobs|cronjobs|events|all (all: "
        "every resource of the applied commit, the Skipped ones with the reason)",
    )
    kind.completer = lambda prefix, **_: [  # type: ignore[attr-defined]
        k for k in sorted(reads.KIND_ALIASES) if k.startswith(prefix)
    ]
    p.add_argument("names", nargs="*", metavar="NAME", help="only these").completer = (  # type: ignore[attr-defined]
        lambda prefix, parsed_args, **kw: completion.names(
            reads.KIND_ALIASES.get(parsed_args.kind.partition("/")[0], "pods")
        )(prefix, parsed_args, **kw)
    )
    p.add_argument("-l", "--selector", help="only those whose labels match (=, ==, !=, in, notin, "
                   "exists, !exists)")  # fmt: skip
    p.add_argument("--show-labels", action="store_true", help="a LABELS column")
    p.add_argument("--sort-by", help="a JSONPath of the objects to sort by (.metadata.name)")
    p.add_argument("-n", "--namespace", default=os.environ.get("GITOPS_NAMESPACE"),
                   help="only this namespace (GITOPS_NAMESPACE)")  # fmt: skip
    p.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace (default)")
    p.add_argument("-w", "--watch", action="store_true",
                   help="then print each change as it happens (until interrupted)")  # fmt: skip
    p.add_argument("--for", dest="for_", metavar="KIND/NAME",
                   help="events: only this object's (deployment/web, pod/web-x)")  # fmt: skip
    p.add_argument("--server", default=os.environ.get("GITOPS_SERVER", "http://127.0.0.1:8080"))
    p.add_argument("-o", "--output", type=output_form, default="table",
                   help="table, wide, json, yaml (a Kubernetes List), name, jsonpath=TEMPLATE, "
                   "custom-columns=HEADER:PATH,...")  # fmt: skip

    p = sub.add_parser("status", help="sync status of the running reconciler")
    p.add_argument("--server", default=os.environ.get("GITOPS_SERVER", "http://127.0.0.1:8080"))
    _add_output(p)

    cli_rollout.add_parser(sub, os.environ.get("GITOPS_SERVER", "http://127.0.0.1:8080"))
    cli_edit.add_parsers(sub)
    cli_nodes.add_parsers(sub, os.environ.get("GITOPS_SERVER", "http://127.0.0.1:8080"))
    cli_delete.add_parser(sub, os.environ.get("GITOPS_SERVER", "http://127.0.0.1:8080"))
    cli_create.add_parser(sub, os.environ.get("GITOPS_SERVER", "http://127.0.0.1:8080"))
    cli_logs.add_parser(sub, os.environ.get("GITOPS_SERVER", "http://127.0.0.1:8080"))
    cli_describe.add_parser(sub, os.environ.get("GITOPS_SERVER", "http://127.0.0.1:8080"))
    cli_tunnel.add_parsers(sub, os.environ.get("GITOPS_SERVER", "http://127.0.0.1:8080"))
    cli_statedb.add_parsers(sub)

    p = sub.add_parser("top", help="CPU and memory that pods (or each node's pods) use now")
    p.add_argument(
        "what", choices=("pods", "pod", "po", "nodes", "node", "no"), metavar="pods|nodes"
    )
    p.add_argument("-n", "--namespace", default=os.environ.get("GITOPS_NAMESPACE"))
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("--containers", action="store_true", help="each container of each pod")
    p.add_argument("--server", default=os.environ.get("GITOPS_SERVER", "http://127.0.0.1:8080"))
    _add_output(p)

    p = sub.add_parser("completion", help="print the shell completion script (bash or zsh)",
                       description="source <(gitops completion bash), or in zsh: "
                       "source <(gitops completion zsh)")  # fmt: skip
    p.add_argument("shell", choices=("bash", "zsh"))

    p = sub.add_parser("version", help="the client's version and the running reconciler's")
    p.add_argument("--client", action="store_true", help="the client's only")
    p.add_argument("--server", default=os.environ.get("GITOPS_SERVER", "http://127.0.0.1:8080"))
    _add_output(p)

    p = sub.add_parser("history", help="recent syncs recorded by the running reconciler")
    p.add_argument("--server", default=os.environ.get("GITOPS_SERVER", "http://127.0.0.1:8080"))
    p.add_argument("--limit", type=int, default=20)
    _add_output(p)
    for verb in ("run", "sync", "diff"):
        env_defaults(sub.choices[verb])
    return top


def env_name(option: str) -> str:
    return "GITOPS_" + option.lstrip("-").upper().replace("-", "_")


def env_defaults(p: argparse.ArgumentParser) -> None:
    """Every ``--some-flag`` of a long-running verb can come from ``GITOPS_SOME_FLAG`` too, as
    a systemd EnvironmentFile or a container's environment gives it (deploy/gitops.env lists
    them all). A flag on the command line still wins."""
    for action in p._actions:
        longs = [o for o in action.option_strings if o.startswith("--")]
        if not longs or isinstance(action, (argparse._HelpAction, argparse._AppendAction)):
            continue
        raw = os.environ.get(env_name(longs[0]))
        if raw is None:
            continue
        if isinstance(action, argparse._StoreTrueAction):
            value: Any = raw.strip().lower() in ("1", "true", "yes", "on")
        else:
            try:
                value = action.type(raw) if callable(action.type) else raw
            except (argparse.ArgumentTypeError, ValueError) as exc:
                p.error(f"{env_name(longs[0])}={raw!r}: {exc}")
        p.set_defaults(**{action.dest: value})


# -- printing -------------------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace) -> int:
    from gitops.config.nodes import node_list
    from gitops.config.settings import StorageClass, policy_of
    from gitops.errors import ManifestError
    from gitops.manifests import model as m
    from gitops.manifests import parse_manifests
    from gitops.manifests.files import read_directory
    from gitops.source import cron, kustomize

    root: Path = args.dir
    if not root.is_dir():
        print(f"gitops: {root} is not a directory", file=sys.stderr)
        return ERROR
    try:
        nodes, extra = node_list([], args.config)
    except GitopsError as exc:
        print(f"gitops: {exc}", file=sys.stderr)
        return ERROR
    classes = extra.get("storage_classes", (StorageClass("local"),))
    policy = policy_of(nodes, classes, _skip_groups(args, extra.get("skip_api_groups", ())))
    policy = replace(policy, schedule=cron.problems)
    found = read_directory(root, _rules(args), kustomize.render)
    files = found.files
    try:
        manifests = parse_manifests(files, found.problems, policy, found.renderer)
    except ManifestError as exc:
        if args.output == "table":
            for e in exc.errors:
                print(str(e))
            print(f"{len(exc.errors)} error(s) in {len(files)} file(s)", file=sys.stderr)
        else:
            emit({"valid": False, "errors": [e.__dict__ for e in exc.errors]}, args.output)
        return FAILED
    skipped = manifests.of(m.Skipped)
    if args.output == "table":
        for w in manifests.warnings:  # as kubectl prints an API server's warnings
            print(f"Warning: {w}", file=sys.stderr)
        for s in skipped:
            print(f"Skipped: {s.path}:{s.doc}: {s.display}: {s.resource.reason}", file=sys.stderr)
        if manifests.renderer:
            print(f"Rendered with {manifests.renderer}", file=sys.stderr)
        print(
            f"valid: {len(manifests.entries)} resource(s) in {len(files)} file(s)"
            + (f", {len(skipped)} skipped" if skipped else "")
            + (f", {len(manifests.warnings)} warning(s)" if manifests.warnings else "")
        )
    else:
        emit(
            {
                "valid": True,
                "resources": [f"{e.namespace or '-'}/{e.display}" for e in manifests.entries],
                "skipped": [
                    {"resource": f"{s.namespace or '-'}/{s.display}", "reason": s.resource.reason}
                    for s in skipped
                ],
                "warnings": [w.__dict__ for w in manifests.warnings],
                "renderer": manifests.renderer,
            },
            args.output,
        )
    return OK


def cmd_run(args: argparse.Namespace) -> int:
    from gitops.runner import run, secure_state_dir

    state = args.state_dir
    try:
        secure_state_dir(state)  # before the API token is made in it
    except OSError as exc:
        print(f"gitops: state directory {state}: {exc}", file=sys.stderr)
        return ERROR
    try:
        token = api_token(state, args.api_token_file, create=True)
        secret = (
            read_secret(args.webhook_secret_file)
            if args.webhook_secret_file
            else os.environ.get("GITOPS_WEBHOOK_SECRET", "").strip()
        )
    except OSError as exc:
        print(f"gitops: cannot read a secret: {exc}", file=sys.stderr)
        return ERROR
    try:  # read here, not when the parser is built: a bad value must not break other verbs
        notify = [_receiver(x) for x in os.environ.get("GITOPS_NOTIFY", "").split()]
    except argparse.ArgumentTypeError as exc:
        print(f"gitops: GITOPS_NOTIFY: {exc}", file=sys.stderr)
        return ERROR
    settings = _settings(
        args,
        interval=args.interval,
        autoscale_interval=args.autoscale_interval,
        listen=args.listen,
        watch=not args.no_watch,
        node_address=args.node_address,
        ingress_address=args.ingress_address,
        ingress_http_port=args.ingress_http_port,
        ingress_https_port=args.ingress_https_port,
        proxy_threads=args.proxy_threads,
        node_proxy_stats_port=args.node_proxy_stats_port,
        stream_listen=args.stream_listen,
        api_token=token,
        webhook_secret=secret,
        webhook_max_bytes=args.webhook_max_bytes,
        notify=tuple(notify + args.notify),
        write_back=args.write_back,
        leader_elect=args.leader_elect,
        lease_timing=(
            args.leader_elect_lease_duration,
            args.leader_elect_renew_deadline,
            args.leader_elect_retry_period,
        ),
        advertise=args.advertise,
    )
    duration_, deadline, retry = settings.lease_timing
    if settings.leader_elect and not 0 < retry < deadline < duration_:
        print("gitops: --leader-elect needs retry period < renew deadline < lease duration",
              file=sys.stderr)  # fmt: skip
        return ERROR
    return run(settings)


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port from 1 to 65535")
    return int(text)


def _port_or_zero(text: str) -> int:
    return 0 if text == "0" else _port(text)


def _threads(text: str) -> int:
    if not text.isdigit() or int(text) > 64:
        raise argparse.ArgumentTypeError(f"{text!r} is not a thread count from 0 to 64")
    return int(text)


def _receiver(text: str) -> tuple[str, str]:
    fmt, _, url = text.partition("=")
    if fmt not in ("generic", "slack") or not url.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected generic=URL or slack=URL, not {fmt!r}=...")
    return fmt, url


def _progress(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


def cmd_sync(args: argparse.Namespace) -> int:
    if args.wait or args.revision or args.server:
        server = args.server or os.environ.get("GITOPS_SERVER", "http://127.0.0.1:8080")
        return cli_sync.remote(server, args.revision, args.wait, args.timeout, args.output)
    from gitops.manifests import model as m
    from gitops.runner import build

    reconciler = build(_settings(args), progress=_progress).reconciler
    deadline = time.monotonic() + args.timeout
    passes = 0
    while True:
        passes += 1
        outcome = reconciler.reconcile("cli")
        status = outcome.status
        ready = [r for r in status.resources if r.kind in m.WORKLOAD_KINDS]
        summary = ", ".join(
            f"{r.namespace}/{r.name} {r.health} {(r.replicas or {}).get('ready', 0)}/"
            f"{(r.replicas or {}).get('desired', 0)}"
            for r in ready
        )
        print(
            f"pass {passes}: {status.result} at {status.applied[:12] or '-'}  {summary}",
            file=sys.stderr,
        )
        if outcome.requeue_after is None or status.result == "Failed":
            break
        if time.monotonic() + outcome.requeue_after > deadline:
            print(f"gitops: not converged after {format_duration(args.timeout)}", file=sys.stderr)
            reads.print_status(status.to_dict(), args.output)
            return ERROR
        time.sleep(outcome.requeue_after)
    reads.print_status(status.to_dict(), args.output)
    if status.result == "Failed":
        return ERROR if status.reason in ("SourceUnavailable", "NodeUnavailable") else FAILED
    return OK


def cmd_diff(args: argparse.Namespace) -> int:
    from gitops.runner import build

    reconciler = build(_settings(args)).reconciler
    outcome = reconciler.reconcile("diff", dry_run=True)
    if outcome.errors:
        for line in outcome.errors:
            print(line, file=sys.stderr)
        return ERROR
    plan = outcome.plan
    lines = plan.describe() if plan else []
    owned = _autoscaled(reconciler)
    if args.output == "table":
        for o in owned:  # not a difference: said beside the diff, not in it
            print(
                f"# {o['namespace']}/{o['name']}: {o['replicas']} replica(s) from "
                f"HorizontalPodAutoscaler {o['autoscaler']}; the manifest's "
                f"{o['manifest']} is its starting point, not a difference",
                file=sys.stderr,
            )
        print("\n".join(lines) if lines else f"no difference at {outcome.status.applied[:12]}")
    else:
        emit({"commit": outcome.status.applied, "changes": lines, "autoscaled": owned},
             args.output)  # fmt: skip
    return FAILED if lines else OK


def _autoscaled(reconciler: Any) -> list[dict[str, Any]]:
    """The workloads whose replicas an autoscaler owns, at its scale and the manifest's."""
    from gitops.decide.autoscalers import autoscalers_of

    desired = reconciler.desired
    out = []
    for s in autoscalers_of(desired) if desired is not None else ():
        workload = desired.deployment(*s.target_key)
        if workload is not None:
            out.append({"namespace": s.namespace, "name": s.target, "autoscaler": s.name,
                        "replicas": reconciler.scales.current(s, workload.replicas),
                        "manifest": workload.replicas})  # fmt: skip
    return out


def cmd_rollout(args: argparse.Namespace) -> int:
    def api(path: str) -> Any:
        return client.get(args.server, path)

    if args.rollout_verb == "status":
        return cli_rollout.status(args, api, lambda path: client.request(args.server, path, "POST"))
    if args.rollout_verb == "history":
        return cli_rollout.history(args, api, emit, table)
    return cli_rollout.change(args, api)


VERBS = {
    "rollout": cmd_rollout,
    "run": cmd_run,
    "sync": cmd_sync,
    "diff": cmd_diff,
    "validate": cmd_validate,
    "get": reads.cmd_get,
    "status": reads.cmd_status,
    "history": reads.cmd_history,
    "version": reads.cmd_version,
    "top": reads.cmd_top,
    "completion": completion.cmd,
    "cordon": cli_nodes.cmd(emit),
    "uncordon": cli_nodes.cmd(emit),
    "drain": cli_nodes.cmd(emit),
    "delete": cli_delete.cmd(emit),
    "create": cli_create.cmd(emit),
    "logs": cli_logs.cmd,
    "describe": cli_describe.cmd,
    "exec": cli_tunnel.cmd_exec,
    "port-forward": cli_tunnel.cmd_port_forward,
    "proxy": cli_tunnel.cmd_proxy,
    "set": cli_edit.run,
    "scale": cli_edit.run,
    "state": cli_statedb.cmd(emit),
}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (RFC 3339, UTC), level, logger, message, and the
    traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def _did_you_mean(top: argparse.ArgumentParser, argv: list[str]) -> None:
    """A mistyped verb: the nearest ones, as git and kubectl suggest them (exit 2)."""
    verbs = next(a.choices for a in top._actions if isinstance(a, argparse._SubParsersAction))
    word = next((a for a in argv if not a.startswith("-")), None)
    if word is None or word in verbs or any(a in ("-h", "--help", "--version") for a in argv):
        return
    if argv.index(word) and argv[argv.index(word) - 1] == "--log-format":
        return
    near = difflib.get_close_matches(word, list(verbs), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(v) for v in near)}?" if near else ""
    print(f"gitops: {word!r} is not a gitops verb{hint} (gitops --help lists them)",
          file=sys.stderr)  # fmt: skip
    raise SystemExit(ERROR)


def main(argv: list[str] | None = None) -> int:
    top = parser()
    completion.enable(top)
    argv = sys.argv[1:] if argv is None else argv
    _did_you_mean(top, argv)
    # ``exec POD -- CMD``: what follows "--" is the command (argparse's subparsers would take
    # its options for their own).
    command = None
    if "--" in argv and next((a for a in argv if not a.startswith("-")), "") == "exec":
        command, argv = argv[argv.index("--") + 1 :], argv[: argv.index("--")]
    args = top.parse_args(argv)
    if command is not None:
        args.command = command
    handler = logging.StreamHandler(sys.stderr)
    if args.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[handler])
    logging.captureWarnings(True)  # a library's warning is a log line, in the log's format
    for noisy in ("apscheduler", "urllib3", "docker", "git", "watchdog"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return VERBS[args.verb](args)
    except KeyboardInterrupt:
        return ERROR
    except BrokenPipeError:
        # The reader went away (`gitops get pods -o json | head`): say nothing more, and exit
        # as a program stopped by SIGPIPE does (git, kubectl), without Python's own complaint
        # about flushing a closed pipe at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return BROKEN_PIPE
    except GitopsError as exc:
        print(f"gitops: {exc}", file=sys.stderr)
        return ERROR
    except Exception as exc:  # a bug: one line, the traceback only when asked for
        if args.verbose:
            raise
        print(
            f"gitops: internal error ({type(exc).__name__}: {exc}); -v shows where", file=sys.stderr
        )
        return ERROR
