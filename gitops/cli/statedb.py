"""``gitops state migrate --from URL --to URL``: copy a reconciler's state database, once.

Run it with the reconciler stopped (what it writes meanwhile would not be copied). A progress
line per table on stderr; the rows copied by table on stdout (``-o json``: one object). Exit 0
when copied, 2 when a database cannot be opened or the target already holds state.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gitops.cli.common import ERROR, OK
from gitops.errors import GitopsError
from gitops.state.copy import copy_state
from gitops.state.database import SqliteDatabase, open_database

Emit = Callable[[Any, str], None]


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("state", help="the state database: copy it to another (migrate)")
    verbs = p.add_subparsers(dest="state_verb", required=True, metavar="VERB")
    text = (
        "copy every table of one state database into an empty other, ids and all, in one "
        "transaction (sqlite:///PATH or postgresql://USER@HOST/DB); stop the reconciler first"
    )
    m = verbs.add_parser("migrate", help=text, description=text)
    m.add_argument("--from", dest="source", required=True, metavar="URL")
    m.add_argument("--to", dest="target", required=True, metavar="URL")
    m.add_argument("-o", "--output", choices=("table", "json"), default="table")


def cmd(emit: Emit) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return migrate(args, emit)

    return run


def migrate(args: argparse.Namespace, emit: Emit) -> int:
    nowhere = Path("/nonexistent")  # both URLs are explicit: no state directory is implied
    try:
        source = open_database(args.source, nowhere)
        target = open_database(args.target, nowhere)
    except GitopsError as exc:
        print(f"gitops: {exc}", file=sys.stderr)
        return ERROR
    if isinstance(source, SqliteDatabase) and not source.path.exists():
        print(f"gitops: {source.display}: no such file", file=sys.stderr)
        return ERROR

    def told(table: str, rows: int) -> None:
        print(f"  {table}: {rows} row(s)", file=sys.stderr, flush=True)

    print(f"copying {source.display} to {target.display}", file=sys.stderr, flush=True)
    try:
        copied = copy_state(source, target, told)
    except GitopsError as exc:
        print(f"gitops: {exc}", file=sys.stderr)
        return ERROR
    finally:
        source.close()
        target.close()
    if args.output == "json":
        emit({"from": source.display, "to": target.display, "rows": copied}, "json")
    else:
        print(f"copied {sum(copied.values())} row(s) in {len(copied)} table(s)")
    return OK
