"""Container logs as values: what a reader asks for, the lines an engine answers with, and the
bounded, masked tail that status, history and failure reasons quote. Pure.

Engines (``gitops.nodes``) answer a ``LogQuery`` with ``LogLine``s; the API
(``gitops.serve.logs``) turns Kubernetes' log parameters into a query; the reconciler quotes a
crashed container's last lines through ``log_tail``, as the kubelet's
``terminationMessagePolicy: FallbackToLogsOnError`` does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from gitops.model.templates import PodTemplate

TAIL_LINES = 10  # a failure reason quotes this many of the last lines at most
LINE_WIDTH = 200  # and this many characters of each
MASK = "******"


@dataclass(frozen=True)
class LogQuery:
    """What to read of one container's output (stdout and stderr, in order).

    ``previous``: the instance before the container's last restart (the kubelet's terminated
    container), not the running one. ``since``: lines written at or after this time (UNIX
    seconds). ``tail``: the last so many lines of what the rest selects (None: all).
    ``follow``: then keep streaming new lines until the container stops.
    """

    tail: int | None = None
    since: float | None = None
    follow: bool = False
    previous: bool = False


@dataclass(frozen=True)
class LogLine:
    time: float  # when the engine received it, UNIX seconds
    text: str  # without its line end


class LogStream:
    """Lines as an engine streams them. ``close`` may come from any thread (a reader whose
    client went away): it ends the read, unblocking one that waits for a quiet container."""

    def __init__(
        self,
        lines: Iterator[LogLine],
        closed: threading.Event | None = None,
        cancel: Callable[[], None] = lambda: None,
    ) -> None:
        self._lines, self._cancel = lines, cancel
        self.closed = closed or threading.Event()

    def __iter__(self) -> LogStream:
        return self

    def __next__(self) -> LogLine:
        if self.closed.is_set():
            raise StopIteration
        return next(self._lines)

    def close(self) -> None:
        self.closed.set()
        self._cancel()


def rfc3339(when: float) -> str:
    """Kubernetes' timestamp of a log line: RFC 3339 in UTC, with nanoseconds."""
    stamp = datetime.fromtimestamp(when, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond:06d}000Z"


def parse_rfc3339(text: str) -> float:
    """An RFC 3339 time (``2026-12-03T05:32:13.123456789Z``, any offset, any fraction) as
    UNIX seconds; ``ValueError`` when it is not one."""
    head, dot, rest = text.strip().partition(".")
    if dot:  # Python reads at most microseconds: cut the fraction to six digits
        digits = len(rest) - len(rest.lstrip("0123456789"))
        rest = rest[: min(digits, 6)] + rest[digits:]
    parsed = datetime.fromisoformat(head + dot + rest)
    if parsed.tzinfo is None:
        raise ValueError(f"{text[:40]!r}: a time needs its offset (Z or +hh:mm)")
    return parsed.timestamp()


def secret_values(template: PodTemplate) -> list[str]:
    """The Secret values a pod's containers get (environment and mounted files), longest
    first, so a quote of its output can mask each."""
    values = {e.value for c in template.all_containers() for e in c.env if e.sensitive}
    values |= {f.data.decode("utf-8", "replace").strip() for c in template.all_containers()
               for m in c.mounts if m.sensitive for f in m.files}  # fmt: skip
    return sorted((v for v in values if len(v) >= 4), key=len, reverse=True)


def log_tail(
    lines: Iterable[str], template: PodTemplate | None, count: int = TAIL_LINES
) -> tuple[str, ...]:
    """The last ``count`` non-empty lines, each cut to ``LINE_WIDTH``, with the values of the
    Secrets the pod gets masked: a process that prints its connection string as it dies leaks
    no password into status, history or a notification."""
    secrets = secret_values(template) if template is not None else []
    kept = [line for line in lines if line.strip()][-count:] if count > 0 else []
    out = []
    for raw in kept:
        line = raw
        for value in secrets:
            line = line.replace(value, MASK)
        out.append(line[:LINE_WIDTH])
    return tuple(out)
