"""``gitops delete pvc NAME --confirm``: the one verb that removes a claim's data.

Everything else leaves volumes in place: a prune, a scale-down, a deleted workload or claim
(its volume is then Released). This asks the running reconciler (its HTTP API), which refuses
while a pod uses the claim. Exit 0 when the volume is gone, 1 when it is refused (no
``--confirm``, in use, not found), 2 when the reconciler cannot be asked.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from gitops.cli.client import command
from gitops.cli.common import FAILED, OK

Emit = Callable[[Any, str], None]
KINDS = ("pvc", "persistentvolumeclaim", "persistentvolumeclaims")


def add_parser(sub: Any, server: str) -> None:
    text = "delete a PersistentVolumeClaim's volume and its data (needs --confirm)"
    p = sub.add_parser("delete", help=text, description=text)
    p.add_argument("kind", choices=KINDS, metavar="pvc")
    p.add_argument("name", metavar="NAME")
    p.add_argument("-n", "--namespace", default=os.environ.get("GITOPS_NAMESPACE", "default"))
    p.add_argument("--confirm", action="store_true", help="yes, delete the data")
    p.add_argument("--server", default=server, help="the running reconciler's API")
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")


def cmd(emit: Emit) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        if not args.confirm:
            print(
                f"gitops: deleting persistentvolumeclaim {args.namespace}/{args.name} deletes "
                "its data; add --confirm",
                file=sys.stderr,
            )
            return FAILED
        path = (
            f"/api/v1/persistentvolumeclaims/{quote(args.namespace, safe='')}/"
            f"{quote(args.name, safe='')}/delete?confirm=true"
        )
        body = command(args.server, path, 200, timeout=120.0)
        if isinstance(body, int):
            return body
        if args.output == "json":
            emit(body, "json")
        else:
            print(f"persistentvolumeclaim/{args.name} deleted (volume {body['volume']} on "
                  f"{body['node']}, and its data)")  # fmt: skip
        return OK

    return run
