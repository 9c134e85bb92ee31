"""Rollout records: one revision of a deployment, what it rolled out and how it ended."""

from __future__ import annotations

from dataclasses import dataclass

from gitops.model.verdicts import Rollout


@dataclass(frozen=True)
class RolloutRecord:
    """One revision of a deployment: what was rolled out, from which commit, and how it ended."""

    namespace: str
    deployment: str
    commit: str
    template_hash: str
    started: float
    result: Rollout = Rollout.PROGRESSING
    revision: int = 0
    author: str = ""
    subject: str = ""
    images: tuple[str, ...] = ()
    finished: float | None = None
    reason: str = ""
    rolled_back_to: str = ""
    id: int | None = None

    @property
    def is_rollback(self) -> bool:
        return self.reason.startswith("rollback")
