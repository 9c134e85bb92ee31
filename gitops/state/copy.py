"""``gitops state migrate``: one state database copied into another, once (SQLite to
PostgreSQL when a user moves to several reconcilers, or back).

Every table a reconciler keeps (``schema.TABLES``: history, rollout records, Job runs, facts
such as pins and cordons, events, kept logs) is copied whole, ids and all, in one transaction
on the target: a copy that fails leaves the target as it was. A target that already holds
state is refused, naming the table: merging two reconcilers' histories is not a copy. Leases
are not copied: who leads is decided by the processes that share the target.
"""

from __future__ import annotations

from collections.abc import Callable

from gitops.errors import PermanentError
from gitops.state.database import POSTGRESQL, Database, Tx, scalar
from gitops.state.schema import TABLES, migrate

BATCH = 500  # rows read and written at a time


class TargetNotEmpty(PermanentError):
    """The target database already holds a reconciler's state."""


def copy_state(
    source: Database, target: Database, progress: Callable[[str, int], None] = lambda t, n: None
) -> dict[str, int]:
    """Rows copied, by table; ``progress`` is told each table's count as it is done."""
    migrate(source)  # an older file is brought to this version's schema first
    migrate(target)
    copied: dict[str, int] = {}
    with target.transaction() as out:
        for table in TABLES:
            if scalar(out, f"SELECT COUNT(*) FROM {table}"):  # noqa: S608 - a constant
                raise TargetNotEmpty(
                    f"{target.display} already holds state (table {table}): copy into an "
                    "empty database (a new one, or this one dropped and made again)"
                )
        for table in TABLES:
            copied[table] = _copy_table(source, out, table)
            progress(table, copied[table])
            if target.dialect == POSTGRESQL and table in _SERIAL_TABLES:
                # ids were copied as they were: the next one a server counts comes after them
                out.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"  # noqa: S608
                    f" COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                )
    return copied


_SERIAL_TABLES = ("syncs", "rollouts", "jobs")


def _copy_table(source: Database, out: Tx, table: str) -> int:
    with source.transaction() as src:
        result = src.execute(f"SELECT * FROM {table}")  # noqa: S608 - a constant
        columns = [d[0] for d in result.description]
        rows = result.fetchall()
    insert = (
        f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - names read from the schema
        f"VALUES ({', '.join('?' for _ in columns)})"
    )
    for start in range(0, len(rows), BATCH):
        out.executemany(insert, rows[start : start + BATCH])
    return len(rows)
