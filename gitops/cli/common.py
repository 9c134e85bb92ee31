"""What every CLI verb shares: exit codes (defined here, once), argument types, printing.

Exit codes: 0 success / no difference, 1 failure / difference found, 2 error (bad usage,
source or node unreachable, server not answering, timeout), 141 the reader of a pipe went away.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Final

from gitops.config.durations import parse_duration

OK: Final = 0
FAILED: Final = 1
ERROR: Final = 2
BROKEN_PIPE: Final = 141  # 128 + SIGPIPE, as git and kubectl end in a closed pipe


def duration(text: str) -> float:
    """An argparse type: ``15s``, ``1m30s``, ``500ms``."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


class Ref(str):
    """A workload's name, knowing its kind (Deployment, StatefulSet or DaemonSet)."""

    kind: str = "Deployment"


_KINDS = {
    **dict.fromkeys(("deployment", "deployments", "deploy"), "Deployment"),
    **dict.fromkeys(("statefulset", "statefulsets", "sts"), "StatefulSet"),
    **dict.fromkeys(("daemonset", "daemonsets", "ds"), "DaemonSet"),
}


def deployment(text: str) -> Ref:
    """An argparse type: ``deployment/NAME`` (``deployments/``, ``deploy/``),
    ``statefulset/NAME`` (``sts/``) or ``daemonset/NAME`` (``ds/``) -> NAME, with its kind."""
    kind, _, name = text.partition("/")
    if kind not in _KINDS or not name:
        raise argparse.ArgumentTypeError(
            "expected deployment/NAME, statefulset/NAME or daemonset/NAME"
        )
    ref = Ref(name)
    ref.kind = _KINDS[kind]
    return ref


def kind_of(name: str) -> str:
    return name.kind if isinstance(name, Ref) else "Deployment"


def emit(data: Any, fmt: str) -> None:
    """``-o json`` or ``-o yaml``."""
    if fmt == "json":
        print(json.dumps(data, indent=2, default=str))
    else:
        import yaml  # only -o yaml needs it

        print(yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip())


def table(rows: list[list[str]], header: list[str]) -> None:
    """kubectl's plain columns: left-aligned, three spaces apart."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    for row in [header, *rows]:
        print("   ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=False)).rstrip())
