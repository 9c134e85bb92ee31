"""The state database's connections: one short-lived connection per call, its errors one
temporary error (``StateUnavailable``: the pass that needed it fails and is retried)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gitops.errors import StateUnavailable


@contextmanager
def connection(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection in a transaction, committed when the block ends well."""
    try:
        db = sqlite3.connect(path, timeout=10)
        try:
            with db:
                yield db
        finally:
            db.close()
    except (sqlite3.Error, OSError) as exc:
        raise StateUnavailable(f"state database {path}: {exc}") from exc
