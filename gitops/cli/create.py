"""``gitops create job --from=cronjob/NAME``: run a CronJob now, as kubectl does.

Git stays the truth: the run is a run of the CronJob that git holds (NAME-manual-xxxxx), made
by the running reconciler's next pass, counted in the CronJob's history and kept by its
history limits. This asks the reconciler (its HTTP API). Exit 0 when the run is asked for, 1
when there is no such CronJob, 2 when the reconciler cannot be asked.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from gitops.cli.client import command
from gitops.cli.common import OK

Emit = Callable[[Any, str], None]
PREFIXES = ("cronjob/", "cronjobs/", "cj/")


def _source(text: str) -> str:
    for prefix in PREFIXES:
        if text.startswith(prefix) and len(text) > len(prefix):
            return text[len(prefix) :]
    raise argparse.ArgumentTypeError("expected cronjob/NAME (a Job is made from a CronJob)")


def add_parser(sub: Any, server: str) -> None:
    text = "run a CronJob now: gitops create job --from=cronjob/NAME"
    p = sub.add_parser("create", help=text, description=text)
    p.add_argument("kind", choices=("job",), metavar="job")
    p.add_argument("--from", dest="source", type=_source, required=True, metavar="cronjob/NAME")
    p.add_argument("-n", "--namespace", default=os.environ.get("GITOPS_NAMESPACE", "default"))
    p.add_argument("--server", default=server, help="the running reconciler's API")
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")


def cmd(emit: Emit) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        path = (
            f"/api/v1/namespaces/{quote(args.namespace, safe='')}/cronjobs/"
            f"{quote(args.source, safe='')}/run"
        )
        body = command(args.server, path, 201, timeout=30.0)
        if isinstance(body, int):
            return body
        if args.output == "json":
            emit(body, "json")
        else:
            print(f"job.batch/{body['job']} created (from cronjob/{args.source})")
        return OK

    return run
