"""What carrying out a plan did: counts, per-deployment failures, pods that could not start.

Made by ``gitops.act.apply``; read by status (``gitops.decide.status``), the views and the
front door. Plain values.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Failure:
    namespace: str
    deployment: str
    reason: str
    message: str
    backoff: bool = False  # an image pull not tried: its back-off has not run out


@dataclass(frozen=True)
class Unstarted:
    """A pod the plan placed but could not start (its image could not be had): shown in
    ``get pods`` as Kubernetes shows it, ErrImagePull or ImagePullBackOff on its node."""

    namespace: str
    deployment: str
    pod: str
    node: str
    template_hash: str
    commit: str
    status: str
    message: str


@dataclass
class ApplyResult:
    created: int = 0
    restarted: int = 0
    removed: int = 0
    failures: list[Failure] = field(default_factory=list)
    silent: dict[str, str] = field(default_factory=dict)  # nodes that stopped answering
    unstarted: list[Unstarted] = field(default_factory=list)
    pulled: dict[tuple[str, str], float] = field(default_factory=dict)  # (node, image) -> seconds

    @property
    def changed(self) -> bool:
        return bool(self.created or self.restarted or self.removed)

    def failure_for(self, namespace: str, deployment: str) -> Failure | None:
        return next(
            (f for f in self.failures if (f.namespace, f.deployment) == (namespace, deployment)),
            None,
        )
