"""``GET /api/v1/namespaces/NS/pods/NAME/log``: a container's log as the Kubernetes API serves
it (the same parameters: container, follow, previous, sinceSeconds, sinceTime, tailLines,
timestamps, limitBytes), streamed from whichever node holds the pod, so a user needs no access
to any engine. A pod that is gone is served from the logs kept of it (``gitops.state.lastlogs``)
when it crashed. The answer is text; its errors are JSON, as every other answer's.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from gitops.errors import GitopsError
from gitops.model.live import ContainerInfo, PodInfo
from gitops.model.logs import LogLine, LogQuery, LogStream, parse_rfc3339, rfc3339
from gitops.serve import streams
from gitops.serve.readmodel import ReadModel
from gitops.serve.streams import MAX_STREAMS, POLL, Stream

log = logging.getLogger(__name__)


class LogRequestError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Options:
    container: str
    query: LogQuery
    timestamps: bool
    limit_bytes: int | None


def options(arg: Callable[[str], str], now: float) -> Options:
    """Kubernetes' PodLogOptions from the query string; ``LogRequestError`` (400) for a bad one."""

    def flag(name: str) -> bool:
        value = arg(name).lower()
        if value not in ("", "true", "false", "1", "0"):
            raise LogRequestError(400, f"{name}: expected true or false")
        return value in ("true", "1")

    def number(name: str, high: int) -> int | None:
        text = arg(name)
        if not text:
            return None
        if not (len(text) <= 12 and text.isascii() and text.lstrip("-").isdigit()):
            raise LogRequestError(400, f"{name}: expected an integer")
        value = int(text)
        if value < 0 and name == "tailLines":
            return None  # kubectl's --tail=-1: everything
        if not 0 <= value <= high:
            raise LogRequestError(400, f"{name}: expected an integer from 0 to {high}")
        return value

    since: float | None = None
    seconds = number("sinceSeconds", 10**9)
    if arg("sinceTime"):
        if seconds is not None:
            raise LogRequestError(400, "at most one of sinceTime or sinceSeconds may be given")
        try:
            since = parse_rfc3339(arg("sinceTime"))
        except ValueError as exc:
            raise LogRequestError(400, f"sinceTime: {exc}") from exc
    elif seconds is not None:
        since = now - seconds
    query = LogQuery(
        tail=number("tailLines", 10**7), since=since, follow=flag("follow"),
        previous=flag("previous"),
    )  # fmt: skip
    return Options(arg("container"), query, flag("timestamps"), number("limitBytes", 2**40))


def pod_log(
    model: ReadModel, namespace: str, name: str, opts: Options,
    disconnected: Callable[[], bool],
) -> Stream:  # fmt: skip
    """The stream, or ``LogRequestError`` with Kubernetes' words for what is missing."""
    pod = next((p for p in model.look().pods if (p.namespace, p.name) == (namespace, name)), None)
    if pod is None:
        return _kept(model, namespace, name, opts)
    container = _container(pod, opts.container)
    if opts.query.previous and not model.restart_counts().get(container.id, 0):
        raise LogRequestError(
            400, f'previous terminated container "{container.meta.container}" in pod "{name}" '
            "not found",
        )  # fmt: skip
    try:
        lines = model.read_logs(pod.node, container.id, opts.query)
    except GitopsError as exc:
        raise LogRequestError(503, str(exc)) from exc
    if not opts.query.follow:
        return Stream(_text(lines, opts))
    if not streams.take():
        lines.close()
        raise LogRequestError(429, f"{MAX_STREAMS} streams are open already: try again later")
    return Stream(_followed(lines, opts, disconnected))


def default_container(pod: str, names: list[str]) -> str:
    """The container a request that names none means: the pod's only one. ``LookupError``
    with Kubernetes' words when it has several."""
    if len(names) != 1:
        raise LookupError(
            f"a container name must be specified for pod {pod}, choose one of: [{' '.join(names)}]"
        )
    return names[0]


def _container(pod: PodInfo, wanted: str) -> ContainerInfo:
    containers = [*pod.init_containers(), *pod.app_containers()]
    names = [c.meta.container or c.name for c in containers]
    if not wanted:
        try:
            wanted = default_container(pod.name, [c.meta.container or c.name
                                                  for c in pod.app_containers()])  # fmt: skip
        except LookupError as exc:
            raise LogRequestError(400, str(exc)) from exc
    for c, n in zip(containers, names, strict=True):
        if n == wanted:
            return c
    choices = " ".join(names)
    raise LogRequestError(
        400, f"container {wanted} is not valid for pod {pod.name}: choose one of [{choices}]"
    )


def _kept(model: ReadModel, namespace: str, name: str, opts: Options) -> Stream:
    kept = model.kept_logs.get(namespace, name)
    if kept is None:
        raise LogRequestError(404, f'pods "{name}" not found')
    names = [c for c, _ in kept.containers]
    try:
        wanted = opts.container or default_container(name, names)
    except LookupError as exc:
        raise LogRequestError(400, str(exc)) from exc
    lines = kept.lines(wanted)
    if lines is None:
        raise LogRequestError(400, f"container {wanted} is not valid for pod {name}: choose one "
                              f"of [{' '.join(names)}]")  # fmt: skip
    q = opts.query
    chosen = [x for x in lines if q.since is None or x.time >= q.since]
    if q.tail is not None:
        chosen = chosen[-q.tail :] if q.tail > 0 else []
    return Stream(_text(LogStream(iter(chosen)), opts))


def _line(x: LogLine, opts: Options) -> bytes:
    return ((f"{rfc3339(x.time)} " if opts.timestamps else "") + x.text + "\n").encode()


def _text(lines: LogStream, opts: Options) -> Iterator[bytes]:
    left = opts.limit_bytes
    try:
        for x in lines:
            data = _line(x, opts)
            if left is not None:
                data, left = data[:left], left - len(data)
            if data:
                yield data
            if left is not None and left <= 0:
                return
    finally:
        lines.close()


_END = object()


def _followed(lines: LogStream, opts: Options, disconnected: Callable[[], bool]) -> Iterator[bytes]:
    """A followed log: a thread of its own reads the engine, so this one can notice the client
    leaving while the container is quiet and close the engine's stream."""
    pipe: queue.Queue[object] = queue.Queue(maxsize=1024)

    def read() -> None:
        try:
            for chunk in _text(lines, opts):
                while not lines.closed.is_set():  # a client gone: no one takes it
                    try:
                        pipe.put(chunk, timeout=POLL)
                        break
                    except queue.Full:
                        continue
        except GitopsError as exc:
            log.debug("followed log ended: %s", exc)
        except Exception:  # the reader must end, and say why, whatever the engine did
            log.exception("followed log failed")
        finally:
            with contextlib.suppress(queue.Full):
                pipe.put(_END, timeout=POLL)

    threading.Thread(target=read, daemon=True, name="log-follow").start()
    try:
        while True:
            try:
                item = pipe.get(timeout=POLL)
            except queue.Empty:
                if disconnected():
                    return
                continue
            if item is _END:
                return
            assert isinstance(item, bytes)
            yield item
    finally:
        lines.close()
        streams.give_back()
