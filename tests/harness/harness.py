"""The front-door harness, as Nomad's scheduler ``Harness``: the real Reconciler, composed as
``gitops run`` composes it, on in-memory nodes and a real local git repository, with an
injected clock. Whole passes run in milliseconds, so they are unit tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from gitops.config.settings import NodeConfig, Settings
from gitops.decide.actions import counter_suffix
from gitops.model.live import PodInfo
from gitops.nodes.memory import MemoryNode
from gitops.reconciler import Outcome, Reconciler
from gitops.runner import compose
from gitops.source.git import GitSource
from gitops.state.history import History
from tests.conftest import git

IMAGES = {"reg/web:v1", "reg/web:v2", "reg/api:v1"}


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Harness:
    def __init__(self, root: Path, nodes: Iterable[str] = ("n1",), **settings: Any) -> None:
        self.bare, self.work = root / "remote.git", root / "work"
        git(root, "init", "-q", "--bare", "-b", "main", str(self.bare))
        git(root, "clone", "-q", str(self.bare), str(self.work))
        git(self.work, "checkout", "-q", "-b", "main")
        self.clock = Clock()
        self.nodes = {n: MemoryNode(n, set(IMAGES)) for n in nodes}
        self.settings = Settings(
            repo=str(self.bare),
            state_dir=root / "state",
            nodes=tuple(NodeConfig(n) for n in self.nodes),
            watch=False,
            **settings,
        )
        source = GitSource(self.settings.repo, self.settings.state_dir / "source")
        self.rec: Reconciler = compose(
            self.settings, source, list(self.nodes.values()), History(self.settings.state_dir),
            clock=self.clock, names=counter_suffix(),
        )  # fmt: skip

    def push(self, path: str, *docs: dict[str, Any]) -> str:
        target = self.work / path
        if docs:
            target.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        else:
            target.unlink()
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "--allow-empty", "-m", f"change {path}")
        git(self.work, "push", "-q", "origin", "main")
        return git(self.work, "rev-parse", "HEAD")

    def run(self, passes: int = 20) -> Outcome:
        """Passes as the run loop makes them: each requeue waited out on the clock, until a
        pass asks for no follow-up (bounded)."""
        outcome = self.rec.reconcile("test")
        for _ in range(passes):
            if outcome.requeue_after is None:
                break
            self.clock.advance(max(outcome.requeue_after, 0.01))
            outcome = self.rec.reconcile("test")
        return outcome

    def pods(self, deployment: str = "web") -> list[PodInfo]:
        return [p for p in self.rec.look().pods if p.deployment == deployment]

    def images(self, deployment: str = "web") -> set[str]:
        return {c.image for p in self.pods(deployment) for c in p.app_containers()}


def run_git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)
