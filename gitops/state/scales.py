"""Each HorizontalPodAutoscaler's scale of its target, what it remembers between samples, and
what it last found, for passes (the replicas to run) and readers (status, ``get hpa``).

The scale is kept in the state database (``Facts.scales``): a restarted reconciler resumes at
it instead of dropping to the manifest's ``replicas``. While an autoscaler targets a workload,
that scale replaces the manifest's ``replicas`` (``scaled``): the manifest's count is the
starting point, not a drift to correct, as Argo CD users get by ignoring the field. Once the
autoscaler leaves git, its scale is forgotten and the manifest's count holds again.
"""

from __future__ import annotations

import threading
from dataclasses import replace

from gitops.decide.autoscalers import Autoscaler, Found, MetricRead, autoscalers_of
from gitops.decide.desired import DesiredState
from gitops.decide.scaling import Memory, Scale
from gitops.state.facts import Facts, Key


class Scales:
    def __init__(self, facts: Facts) -> None:
        self._facts = facts
        self._lock = threading.Lock()  # the sampler's thread writes, passes read
        self._scales: dict[Key, int] = facts.scales()
        self._memory: dict[Key, Memory] = {}
        self._found: dict[Key, Found] = {}

    def reload(self) -> None:
        """The scales the state database holds (a leader before this one decided them)."""
        scales = self._facts.scales()
        with self._lock:
            self._scales = scales

    def current(self, scaler: Autoscaler, starting: int) -> int:
        """The target's scale: the autoscaler's, else the manifest's ``starting`` count."""
        return self._scales.get(scaler.key, starting)

    def memory(self, key: Key) -> Memory:
        return self._memory.get(key, Memory())

    def found(self) -> dict[Key, Found]:
        return dict(self._found)

    def scaled(self, desired: DesiredState) -> DesiredState:
        """``desired`` with each autoscaled workload at its autoscaler's scale; autoscalers
        gone from git forgotten."""
        scalers = autoscalers_of(desired)
        self._forget({s.key for s in scalers})
        scale = {s.target_key: self._scales[s.key] for s in scalers if s.key in self._scales}
        if not scale:
            return desired
        return replace(desired, deployments=tuple(
            replace(d, replicas=scale[d.key]) if d.key in scale else d
            for d in desired.deployments
        ))  # fmt: skip

    def record(
        self, scaler: Autoscaler, current: int, scale: Scale, reads: tuple[MetricRead, ...],
        now: float,
    ) -> bool:  # fmt: skip
        """What one sample decided; True when the scale or a condition changed (a pass then
        says so in status)."""
        with self._lock:
            before = self._found.get(scaler.key)
            changed = scale.replicas != current
            said = before is None or before.conditions != scale.conditions
            last, reason = (before.last_scale, before.reason) if before else (0.0, "")
            if changed:
                last, reason = now, scale.reason
                self._scales[scaler.key] = scale.replicas
                self._facts.set_scales(dict(self._scales))
            self._memory[scaler.key] = scale.memory
            self._found[scaler.key] = Found(current, scale.replicas, reads, scale.conditions,
                                            now, last, reason)  # fmt: skip
            return changed or said

    def _forget(self, keep: set[Key]) -> None:
        with self._lock:
            gone = set(self._scales) - keep
            for key in gone:
                del self._scales[key]
            for table in (self._memory, self._found):
                for key in set(table) - keep:
                    del table[key]
            if gone:
                self._facts.set_scales(dict(self._scales))
