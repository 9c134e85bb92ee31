"""The small durable facts kept beside the history, each typed and parsed in one place.

They live in the history database's ``facts`` table as JSON: the last valid commit, the
containers the prober found ready (carried over a restart), the rollback pins, the cordons, the
pods of evicted nodes, the node each claim's volume was last seen on and each autoscaler's
scale. A fact that does not
parse (edited by hand, written by another version) reads as its default and says so in the log,
never as an exception.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (namespace, deployment)
_LAST_GOOD, _READY, _PINS, _CORDONS, _EVICTED, _VOLUMES, _DELETED, _SCALES = (
    "last_good_commit", "ready_containers", "pins", "cordons", "evicted", "claim_volumes",
    "volume_deletions", "autoscaled",
)  # fmt: skip
KEEP_DELETIONS = 500  # the newest records of deleted volumes kept


@dataclass(frozen=True)
class Pin:
    """A deployment held on an older template after a failed rollout."""

    failed_hash: str
    failed_commit: str
    commit: str  # the last commit on which the deployment's rollout completed
    reason: str


class Facts:
    def __init__(self, get: Callable[[str], str | None], put: Callable[[str, str], None]) -> None:
        self._get, self._put = get, put

    def _read(self, key: str, default: Any, parse: Callable[[Any], Any]) -> Any:
        raw = self._get(key)
        if raw is None:
            return default
        try:
            return parse(json.loads(raw))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            log.error("state fact %s is unreadable (%s); reading it as empty", key, exc)
            return default

    def _write(self, key: str, value: Any) -> None:
        self._put(key, json.dumps(value, sort_keys=True))

    # -- the last valid commit ------------------------------------------------------------
    def last_good(self) -> str | None:
        raw = self._get(_LAST_GOOD)
        return raw or None  # stored bare, not as JSON (older versions wrote it so)

    def set_last_good(self, commit: str) -> None:
        self._put(_LAST_GOOD, commit)

    # -- readiness carried over a restart -------------------------------------------------
    def ready_containers(self) -> list[str]:
        return self._read(_READY, [], lambda v: [str(x) for x in v])  # type: ignore[no-any-return]

    def set_ready_containers(self, ids: list[str]) -> None:
        self._write(_READY, sorted(ids))

    # -- rollback pins --------------------------------------------------------------------
    def pins(self) -> dict[Key, Pin]:
        names = {f.name for f in fields(Pin)}

        def parse(raw: dict[str, dict[str, str]]) -> dict[Key, Pin]:
            out = {}
            for key, value in raw.items():
                namespace, _, name = key.partition("/")
                out[(namespace, name)] = Pin(**{k: str(value[k]) for k in names})
            return out

        return self._read(_PINS, {}, parse)  # type: ignore[no-any-return]

    def set_pins(self, pins: dict[Key, Pin]) -> None:
        self._write(_PINS, {f"{ns}/{n}": asdict(p) for (ns, n), p in pins.items()})

    # -- cordons: node -> "cordoned" | "draining" -----------------------------------------
    def cordons(self) -> dict[str, str]:
        return self._read(_CORDONS, {}, lambda v: {str(k): str(s) for k, s in v.items()})  # type: ignore[no-any-return]

    def set_cordons(self, cordons: dict[str, str]) -> None:
        self._write(_CORDONS, cordons)

    # -- pods of evicted nodes, to be removed when their node answers ---------------------
    def evicted(self) -> set[str]:
        return self._read(_EVICTED, set(), lambda v: {str(x) for x in v})  # type: ignore[no-any-return]

    def set_evicted(self, pods: set[str]) -> None:
        self._write(_EVICTED, sorted(pods))

    # -- where each claim's volume was last seen: a silent node still holds its own -------
    def volumes(self) -> dict[Key, str]:
        return self._read(_VOLUMES, {}, lambda raw: _keyed(raw, str))  # type: ignore[no-any-return]

    def set_volumes(self, volumes: dict[Key, str]) -> None:
        self._write(_VOLUMES, {f"{ns}/{claim}": node for (ns, claim), node in volumes.items()})

    # -- each autoscaler's scale of its target: a restart resumes at it --------------------
    def scales(self) -> dict[Key, int]:
        return self._read(_SCALES, {}, lambda raw: _keyed(raw, int))  # type: ignore[no-any-return]

    def set_scales(self, scales: dict[Key, int]) -> None:
        self._write(_SCALES, {f"{ns}/{name}": n for (ns, name), n in scales.items()})

    # -- the volumes deleted (data removed), newest last -----------------------------------
    def deletions(self) -> list[dict[str, Any]]:
        return self._read(_DELETED, [], lambda v: [dict(x) for x in v])  # type: ignore[no-any-return]

    def add_deletion(self, record: dict[str, Any]) -> None:
        self._write(_DELETED, [*self.deletions(), record][-KEEP_DELETIONS:])


def _keyed(raw: dict[str, Any], value: Callable[[Any], Any]) -> dict[Key, Any]:
    """A map stored with "namespace/name" keys, read back with (namespace, name) ones."""
    return {(k.partition("/")[0], k.partition("/")[2]): value(v) for k, v in raw.items()}
