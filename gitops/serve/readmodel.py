"""What the API reads of a running reconciler: a narrow read model, not its attributes.

A structural interface (``Reconciler`` has it; a test may hand in anything else that has it).
Every value is what the last pass wrote (``gitops.state.board``), except ``look``, a fresh
observation of the nodes for ``get``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from gitops.decide.actions import Pending
from gitops.decide.autoscalers import Found
from gitops.decide.desired import DesiredState
from gitops.decide.disruption import Blocked
from gitops.decide.endpoints import PortEndpoints
from gitops.decide.ingress import IngressTable
from gitops.decide.status import SyncStatus
from gitops.model.applied import Unstarted
from gitops.model.live import LiveState
from gitops.model.logs import LogQuery, LogStream
from gitops.model.rollouts import RolloutRecord
from gitops.state.eventlog import EventLog
from gitops.state.lastlogs import KeptLogs
from gitops.state.moves import Moves


class ReadModel(Protocol):
    @property
    def status(self) -> SyncStatus: ...

    @property
    def desired(self) -> DesiredState | None: ...

    @property
    def endpoints(self) -> Sequence[PortEndpoints]: ...

    @property
    def ingress(self) -> IngressTable: ...

    @property
    def unstarted(self) -> Sequence[Unstarted]: ...

    @property
    def pending(self) -> Sequence[Pending]: ...

    @property
    def blocked(self) -> Sequence[Blocked]: ...

    @property
    def trigger(self) -> str: ...  # what the last pass ran for, as Argo CD's initiatedBy

    @property
    def triggered(self) -> Mapping[str, float]: ...  # when a pass for each reason last ended

    @property
    def changes(self) -> Sequence[str]: ...  # the last pass's plan, as ``gitops diff`` says it

    @property
    def fetches_started(self) -> int: ...

    @property
    def fetches_finished(self) -> int: ...

    def restart_counts(self) -> Mapping[str, int]: ...

    def probe_ready(self, container_id: str) -> bool | None: ...

    def latest_rollout(self, key: tuple[str, str]) -> RolloutRecord | None: ...

    def look(self) -> LiveState: ...

    @property
    def last_look(self) -> tuple[float, LiveState, int] | None: ...  # when, ``moves`` then

    @property
    def autoscaled(self) -> Mapping[tuple[str, str], Found]: ...  # each autoscaler's last sample

    @property
    def moves(self) -> Moves: ...  # steps carried out, changes the engines told, so far

    # A container's log from the node holding it (``Node.read_logs``), and the logs kept of
    # crashed pods since removed.
    def read_logs(self, node: str, container_id: str, query: LogQuery) -> LogStream: ...

    # What running containers use now (``Node.usage``), of one node.
    def usage(self, node: str, container_ids: list[str]) -> dict[str, tuple[int, int]]: ...

    @property
    def kept_logs(self) -> KeptLogs: ...

    @property
    def events(self) -> EventLog | None: ...

    # The one request it takes: a run of a CronJob now (``gitops create job --from``); the
    # run's name, None when the applied commit has no such CronJob.
    def run_cronjob(self, namespace: str, name: str) -> str | None: ...
