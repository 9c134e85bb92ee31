"""Shell completion, through argcomplete: ``gitops completion bash|zsh`` prints the script to
source (``source <(gitops completion bash)``), and completing then covers verbs, options,
kinds and the names of live objects, asked of the running reconciler (``--server``) with a
short timeout so a reconciler that is away never hangs the shell."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request
from collections.abc import Callable
from typing import Any

from gitops.cli.common import ERROR, OK

SERVER = "http://127.0.0.1:8080"
TIMEOUT = 1.0  # seconds: a completion must come at once, or not at all
WORKLOAD_PREFIXES = ("deployment/", "statefulset/", "daemonset/", "job/")


def names(kind: str) -> Callable[..., list[str]]:
    """A completer of the names of ``kind`` (the API's plural) the reconciler runs now."""

    def complete(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
        server = getattr(parsed_args, "server", None) or os.environ.get("GITOPS_SERVER", SERVER)
        ns = getattr(parsed_args, "namespace", None)
        query = f"?namespace={ns}" if ns else ""
        try:
            with urllib.request.urlopen(f"{server.rstrip('/')}/api/v1/{kind}{query}",  # noqa: S310
                                        timeout=TIMEOUT) as resp:  # fmt: skip
                rows = json.load(resp)
        except (OSError, ValueError):
            return []
        return sorted({r["name"] for r in rows if str(r.get("name", "")).startswith(prefix)})

    return complete


def targets(prefix: str, parsed_args: argparse.Namespace, **kw: Any) -> list[str]:
    """``logs``' targets: pods, and the workloads as KIND/NAME."""
    if "/" in prefix:
        kind, _, rest = prefix.partition("/")
        plural = {"deployment": "deployments", "statefulset": "statefulsets",
                  "daemonset": "daemonsets", "job": "jobs"}.get(kind)  # fmt: skip
        if plural is None:
            return []
        return [f"{kind}/{n}" for n in names(plural)(rest, parsed_args, **kw)]
    pods = names("pods")(prefix, parsed_args, **kw)
    return pods + [p for p in WORKLOAD_PREFIXES if p.startswith(prefix)]


def cmd(args: argparse.Namespace) -> int:
    try:
        from argcomplete.shell_integration import shellcode
    except ImportError:  # pragma: no cover - a dependency
        print("gitops: argcomplete is not installed", file=sys.stderr)
        return ERROR
    print(shellcode(["gitops"], shell=args.shell))
    return OK


def enable(top: argparse.ArgumentParser) -> None:
    """Answer a completion request, when the shell makes one (it sets _ARGCOMPLETE); a run
    of any verb imports nothing of this."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    import argcomplete

    argcomplete.autocomplete(top)
