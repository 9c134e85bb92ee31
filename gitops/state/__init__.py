"""Durable and remembered state: the history database (``history``, the one sqlite3 import),
rollout records and rollback pins (``revisions``), the cluster's memory of its nodes
(``cluster``: health, cordons, evictions)."""
