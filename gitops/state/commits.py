"""The desired state of any commit: read from the source, parsed and validated, built, and kept
for the few commits a reconciler works with (the head, the last valid one, a rollback's target).

Parsed results are kept, never raw files (a repository's size is not the reconciler's). A
commit that does not validate raises ``ManifestError``, every time it is asked for.
"""

from __future__ import annotations

from dataclasses import replace

from gitops.decide.desired import DesiredState, build_desired
from gitops.errors import GitopsError
from gitops.manifests import Policy, parse_manifests
from gitops.source import cron
from gitops.source.git import GitSource

KEPT = 8  # commits whose desired state is kept


class Commits:
    def __init__(self, source: GitSource, policy: Policy | None = None) -> None:
        # Schedules are read as the scheduler reads them.
        self.source = source
        self.policy = replace(policy or Policy(), schedule=cron.problems)
        self._loaded: dict[str, DesiredState] = {}

    def load(self, commit: str) -> DesiredState:
        cached = self._loaded.get(commit)
        if cached is None:
            snapshot = self.source.snapshot(commit)
            cached = build_desired(
                parse_manifests(snapshot.files, snapshot.problems, self.policy, snapshot.renderer),
                commit,
            )
            self._loaded = {**dict(list(self._loaded.items())[-(KEPT - 1) :]), commit: cached}
        return cached

    def describe(self, commit: str) -> tuple[str, str]:
        """(author, subject) of ``commit``; empty when the source cannot say."""
        try:
            info = self.source.describe(commit)
        except GitopsError:
            return "", ""
        return info.author, info.subject
