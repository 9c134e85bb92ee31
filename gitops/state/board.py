"""What the last pass found, for everything that reads it while passes run: the API and its
views, the metrics at scrape time. The front door writes it, once a pass; nothing else does.

Each value is replaced whole (an immutable status, a new list), so a reader on another thread
never sees one half-written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gitops.decide.actions import Pending
from gitops.decide.desired import DesiredState
from gitops.decide.disruption import Blocked
from gitops.decide.endpoints import PortEndpoints
from gitops.decide.ingress import IngressTable
from gitops.decide.status import SyncStatus
from gitops.model.applied import Unstarted
from gitops.model.live import LiveState
from gitops.state.moves import Moves


@dataclass
class Board:
    status: SyncStatus = field(default_factory=SyncStatus)
    desired: DesiredState | None = None  # of the last valid commit
    endpoints: tuple[PortEndpoints, ...] = ()  # what the Service proxy serves
    ingress: IngressTable = field(default_factory=IngressTable)  # the routes it serves
    unstarted: tuple[Unstarted, ...] = ()  # pods placed whose image could not be had
    pending: tuple[Pending, ...] = ()  # replicas no node can take
    blocked: tuple[Blocked, ...] = ()  # a drain's pods a PodDisruptionBudget holds back
    # The last look at the nodes, when, and the count of moves before it.
    seen: tuple[float, LiveState, int] | None = None
    moves: Moves = field(default_factory=Moves)  # steps carried out, changes engines told
    trigger: str = ""  # what the last pass ran for ("poll", "webhook:github", "dashboard", ...)
    # When a pass for each reason last ended: a pass asked for is seen even after others ran.
    triggered: dict[str, float] = field(default_factory=dict)
    changes: tuple[str, ...] = ()  # what the last pass's plan changed, as ``gitops diff`` says
    fetches_started: int = 0  # passes never overlap: a fetch numbered above N began after N
    fetches_finished: int = 0

    def read_status(self) -> SyncStatus:
        return self.status
