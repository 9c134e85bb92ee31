"""Answers the API streams: a followed log, a watch of events. Each holds one of the
listener's worker threads for as long as it lasts, so only ``MAX_STREAMS`` run at once (the
rest of the threads keep serving reads), and each stops when its client goes away."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

MAX_STREAMS = 8
POLL = 1.0  # seconds between looks at whether a stream's client went away
_held = threading.BoundedSemaphore(MAX_STREAMS)


@dataclass(frozen=True)
class Stream:
    """A streamed answer: ``chunks`` are sent as they come (chunked)."""

    chunks: Iterator[bytes]
    content_type: str = "text/plain; charset=utf-8"


def take() -> bool:
    """A stream's place, if one is free; ``give_back`` when the stream ends."""
    return _held.acquire(blocking=False)


def give_back() -> None:
    _held.release()
