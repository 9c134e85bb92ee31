"""Rollout records and automatic rollback: the doing side of ``gitops.decide.workloads.rollout``.

After each pass every deployment's rollout record is advanced in the history (started,
completed, failed, superseded). A rollout that made no progress for
``progressDeadlineSeconds`` has failed, and so has a fail-fast one (annotation
``gitops.io/fail-fast: "true"``) as soon as a pod of its new template fails. Unless
auto-rollback is off (globally, or by the ``gitops.io/auto-rollback: "false"`` annotation) the
deployment is then *pinned* to the template of the last commit on which its rollout completed,
rebuilt from git. The pin holds until a newer commit changes that deployment's template, so a
failed commit is never retried in a loop; git stays the source of truth, and the pin is a
durable fact in the state directory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from gitops.decide.desired import DesiredDeployment, DesiredState
from gitops.decide.status import ResourceStatus
from gitops.decide.workloads.rollout import (
    DEADLINE_EXCEEDED,
    NEW_POD_FAILED,
    Counts,
    ProgressClock,
    assess,
)
from gitops.errors import GitopsError
from gitops.model.events import (
    ROLLED_BACK,
    ROLLOUT_FAILED,
    ROLLOUT_STARTED,
    ROLLOUT_SUCCEEDED,
    Event,
)
from gitops.model.rollouts import RolloutRecord
from gitops.model.verdicts import Rollout
from gitops.state.facts import Pin
from gitops.state.history import History

log = logging.getLogger(__name__)
Key = tuple[str, str]


@dataclass(frozen=True)
class Questions:
    """What tracking a rollout asks the pass about a deployment."""

    # Why its new pods do not become available ("" when nothing says).
    stuck: Callable[[DesiredDeployment], str] = lambda dep: ""
    # Why a pod of its new template has failed for good ("" when none has).
    failed: Callable[[DesiredDeployment], str] = lambda dep: ""
    # Whether the pass found every pod of a template available (a rollout a newer commit
    # overtook before a pass could record it Complete).
    settled: Callable[[DesiredDeployment, str], bool] = lambda dep, template_hash: False


class Revisions:
    def __init__(
        self,
        history: History,
        load: Callable[[str], DesiredState],
        describe: Callable[[str], tuple[str, str]],
        auto_rollback: bool = True,
        notify: Callable[[Event], None] = lambda event: None,
    ) -> None:
        self.history, self.load, self.describe = history, load, describe
        self.notify = notify
        self.auto_rollback = auto_rollback
        self.progress = ProgressClock()
        self._latest: dict[Key, RolloutRecord | None] = {}

    def forget(self) -> None:
        """Rollout records are read again from the state database (another leader wrote
        since); the progress clocks start again, as a restarted controller's do."""
        self._latest.clear()
        self.progress = ProgressClock()

    # -- pins -------------------------------------------------------------------------------
    def pins(self) -> dict[Key, Pin]:
        return self.history.facts.pins()

    def _save(self, pins: dict[Key, Pin]) -> None:
        self.history.facts.set_pins(pins)

    def apply_pins(self, desired: DesiredState) -> DesiredState:
        """Deployments whose newest template failed run their last good template instead."""
        pins = self.pins()
        if not pins:
            return desired
        kept: dict[Key, Pin] = {}
        deployments = []
        for dep in desired.deployments:
            pin = pins.get(dep.key)
            if pin is None or dep.template.template_hash != pin.failed_hash:
                deployments.append(dep)  # no pin, or a newer commit changed it: git wins
                continue
            kept[dep.key] = pin
            deployments.append(self._pinned(dep, pin))
        if kept != pins:
            self._save(kept)
        return replace(desired, deployments=tuple(deployments))

    def _pinned(self, dep: DesiredDeployment, pin: Pin) -> DesiredDeployment:
        try:
            good = self.load(pin.commit).deployment(*dep.key)
        except GitopsError as exc:
            log.error(
                "cannot load %s to keep %s/%s rolled back: %s", pin.commit[:12], *dep.key, exc
            )
            good = None
        message = (
            f"rolled back: commit {pin.failed_commit[:12]} failed ({pin.reason}); "
            f"running commit {pin.commit[:12]}"
        )
        if good is None:
            return replace(dep, rolled_back=message)
        return replace(
            dep,
            template=good.template,
            strategy=good.strategy,
            max_surge=good.max_surge,
            max_unavailable=good.max_unavailable,
            rolled_back=message,
        )

    # -- records ----------------------------------------------------------------------------
    def latest(self, key: Key) -> RolloutRecord | None:
        if key not in self._latest:
            self._latest[key] = self.history.latest_rollout(*key)
        return self._latest[key]

    def track(
        self,
        desired: DesiredState,
        resources: tuple[ResourceStatus, ...],
        now: float,
        ask: Questions,
    ) -> bool:
        """Advance every deployment's rollout record; True when a rollback was started."""
        rolling = ("Deployment", "StatefulSet", "DaemonSet")
        by_key = {(r.namespace, r.name): r for r in resources if r.kind in rolling}
        rolled_back = False
        for dep in desired.deployments:
            status = by_key.get(dep.key)
            if status is None or status.replicas is None:
                continue
            if (dep.stateful is not None and dep.stateful.on_delete) or (
                dep.kind == "DaemonSet" and dep.strategy == "OnDelete"
            ):
                continue  # nothing rolls by itself (kubectl rollout status says the same)
            reps = status.replicas
            updated = reps["updated"]
            if dep.stateful is not None:  # ordinals below the partition stay old on purpose
                updated = min(reps["desired"], updated + dep.stateful.partition)
            counts = Counts(reps["desired"], reps["current"], updated, reps["available"])
            last = self.progress.update(dep.key, dep.template.template_hash, counts, now)
            latest = self.latest(dep.key)
            failed_pod = ask.failed(dep) if dep.fail_fast else ""
            verdict, why = assess(
                latest,
                dep.template.template_hash,
                counts,
                last,
                dep.progress_deadline_seconds,
                now,
                failed_pod,
            )
            if verdict == "start":
                if latest is not None and latest.result == Rollout.PROGRESSING:
                    # Overtaken: Complete if it had got there (a rollback may return to it).
                    done = ask.settled(dep, latest.template_hash)
                    self._finish(latest, Rollout.COMPLETE if done else Rollout.SUPERSEDED, now)
                self._start(dep, latest, now)
            elif verdict == "complete" and latest is not None:
                self._finish(latest, Rollout.COMPLETE, now)
            elif verdict == "fail" and latest is not None:
                if why == NEW_POD_FAILED:
                    reason = f"{NEW_POD_FAILED}: {failed_pod}"
                else:
                    detail, seconds = ask.stuck(dep), dep.progress_deadline_seconds
                    reason = f"{DEADLINE_EXCEEDED}: no progress for {seconds}s"
                    reason += f"; {detail}" if detail else ""
                rolled_back |= self._fail(dep, latest, reason, now)
        return rolled_back

    def _start(self, dep: DesiredDeployment, latest: RolloutRecord | None, now: float) -> None:
        author, subject = self.describe(dep.template.commit)
        reason = ""
        if dep.rolled_back and latest is not None:
            reason = f"rollback of {latest.commit[:12]} to {dep.template.commit[:12]}"
        record = self.history.start_rollout(
            RolloutRecord(
                namespace=dep.namespace,
                deployment=dep.name,
                commit=dep.template.commit,
                template_hash=dep.template.template_hash,
                started=now,
                author=author,
                subject=subject,
                images=tuple(c.image for c in dep.template.containers),
                reason=reason,
            )
        )
        self._latest[dep.key] = record
        log.info(
            "%s/%s: rollout %d of %s started", *dep.key, record.revision, dep.template.commit[:12]
        )
        text = f"revision {record.revision} of commit {dep.template.commit[:12]} ({subject})"
        if reason:
            text += f": {reason}"
        self.notify(Event(ROLLOUT_STARTED, text, now, *dep.key, dep.template.commit, reason))

    def _finish(
        self, rec: RolloutRecord, result: Rollout, now: float, reason: str = "", back: str = ""
    ) -> None:
        self.history.finish_rollout(rec, result, now, reason, back)
        self._latest[(rec.namespace, rec.deployment)] = replace(
            rec, result=result, finished=now, reason=reason or rec.reason, rolled_back_to=back
        )
        log.info(
            "%s/%s: rollout %d %s %s", rec.namespace, rec.deployment, rec.revision, result, reason
        )
        if result == Rollout.COMPLETE:
            kind = ROLLED_BACK if rec.is_rollback else ROLLOUT_SUCCEEDED
            text = (
                f"{rec.reason}: the old version is serving again"
                if rec.is_rollback
                else f"revision {rec.revision} rolled out ({', '.join(rec.images)})"
            )
            self.notify(
                Event(kind, text, now, rec.namespace, rec.deployment, rec.commit, rec.reason)
            )
        elif result == Rollout.FAILED:
            text = reason + (f"; rolling back to {back[:12]}" if back else "; not rolled back")
            key = (rec.namespace, rec.deployment)
            self.notify(Event(ROLLOUT_FAILED, text, now, *key, rec.commit, reason, back))

    def _fail(self, dep: DesiredDeployment, latest: RolloutRecord, reason: str, now: float) -> bool:
        target = None
        if self.auto_rollback and dep.auto_rollback and not latest.is_rollback:
            target = next(
                (
                    r
                    for r in self.history.rollouts(*dep.key)
                    if r.result == Rollout.COMPLETE and r.template_hash != latest.template_hash
                ),
                None,
            )
        self._finish(latest, Rollout.FAILED, now, reason, target.commit if target else "")
        if target is None:
            return False
        pins = self.pins()
        pins[dep.key] = Pin(latest.template_hash, latest.commit, target.commit, reason)
        self._save(pins)
        log.warning("%s/%s: rolling back to %s: %s", *dep.key, target.commit[:12], reason)
        return True
