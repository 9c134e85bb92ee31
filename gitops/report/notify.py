"""Outgoing notifications: each event POSTed as JSON to every configured receiver.

Delivery never blocks a reconcile pass: events go on a queue that one thread drains. A receiver
that fails (connection refused, 5xx, 429) is retried with doubling back-off (1 s, 2 s, 4 s, ...,
``attempts`` in all, ``Retry-After`` honoured); a 4xx other than 408/429 is permanent, since
sending the same body again cannot help. A receiver's URL often holds its credential (Slack's
does), so logs name only its host.
"""

from __future__ import annotations

import collections
import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from gitops.model.events import FORMATS, Event

log = logging.getLogger(__name__)
RETRYABLE = {408, 429}


@dataclass(frozen=True)
class Receiver:
    format: str  # "generic" or "slack"
    url: str

    @property
    def shown(self) -> str:  # what logs may say: never the path or query (a token lives there)
        parts = urlsplit(self.url)
        return f"{self.format} receiver at {parts.scheme}://{parts.hostname}"


class Notifier:
    def __init__(
        self,
        receivers: tuple[Receiver, ...],
        source: str,
        attempts: int = 5,
        first_delay: float = 1.0,
        timeout: float = 10.0,
    ) -> None:
        self.receivers, self.source = receivers, source
        # (format, event, result) -> how many: read by the metrics at scrape time.
        self._results: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self._counted = threading.Lock()
        self.attempts, self.first_delay, self.timeout = attempts, first_delay, timeout
        self._queue: queue.Queue[Event | None] = queue.Queue(maxsize=1000)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True, name="notify")
        if receivers:
            self._thread.start()

    def __call__(self, event: Event) -> None:
        if not self.receivers:
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:  # a receiver down for long: keep the newest news, say so
            log.warning("notification queue full; dropping %s", event.kind)

    def results(self) -> dict[tuple[str, str, str], int]:
        """Deliveries so far by (receiver format, event, result)."""
        with self._counted:
            return dict(self._results)

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(None)

    def _drain(self) -> None:
        while not self._stop.is_set():
            event = self._queue.get()
            if event is None:
                return
            for receiver in self.receivers:
                try:
                    result = self._send(receiver, event)
                except Exception:  # one bad delivery must not end the notifier
                    log.exception("%s: %s not delivered", receiver.shown, event.kind)
                    result = "failure"
                with self._counted:
                    self._results[(receiver.format, event.kind, result)] += 1

    def _send(self, receiver: Receiver, event: Event) -> str:
        body = json.dumps(FORMATS[receiver.format](event, self.source)).encode()
        delay = self.first_delay
        for attempt in range(1, self.attempts + 1):
            req = urllib.request.Request(  # noqa: S310 - a URL the operator configured
                receiver.url,
                data=body,
                method="POST",
                headers={"Content-Type": "application/json", "User-Agent": "gitops"},
            )
            try:
                with urllib.request.urlopen(req, timeout=self.timeout):  # noqa: S310
                    return "success"
            except urllib.error.HTTPError as exc:
                if exc.code < 500 and exc.code not in RETRYABLE:
                    log.error("%s refused %s: HTTP %d", receiver.shown, event.kind, exc.code)
                    return "rejected"
                wait = _retry_after(exc.headers.get("Retry-After"), delay)
                why = f"HTTP {exc.code}"
            except (OSError, urllib.error.URLError) as exc:
                wait, why = delay, type(exc).__name__
            if attempt == self.attempts:
                break
            log.warning(
                "%s: %s failed (%s); retry %d/%d in %.0fs",
                receiver.shown, event.kind, why, attempt, self.attempts - 1, wait,
            )  # fmt: skip
            if self._stop.wait(wait):
                return "failure"
            delay *= 2
        log.error("%s: %s not delivered after %d attempts", receiver.shown, event.kind, attempt)
        return "failure"


def _retry_after(value: str | None, default: float) -> float:
    try:
        return min(300.0, max(0.0, float(value))) if value else default
    except ValueError:
        return default
