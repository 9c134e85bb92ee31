"""Apply stage: carry out a ``Plan`` through the node adapters.

In: the plan, the nodes by name, the desired state (to name file, document and field in
errors). Out: ``ApplyResult`` with counts and per-deployment failures. A failure is contained
to its deployment: when an image cannot be pulled, none of that deployment's pods are touched
(old pods keep serving) while the other deployments proceed.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from gitops.decide.actions import Create, NameProxy, Remove, Restart
from gitops.decide.desired import DesiredState
from gitops.decide.health import Backoff
from gitops.decide.plan import Plan
from gitops.decide.pullauth import credentials
from gitops.errors import (
    GitopsError,
    ImagePullError,
    NodeUnavailable,
    Reason,
    SandboxGone,
    internal,
)
from gitops.model.applied import ApplyResult, Failure, Unstarted
from gitops.model.live import PodInfo
from gitops.model.templates import RegistryAuth
from gitops.nodes.base import Node

log = logging.getLogger(__name__)
T = TypeVar("T")
Progress = Callable[[str], None]


class _Applier:
    def __init__(
        self,
        plan: Plan,
        nodes: Mapping[str, Node],
        desired: DesiredState,
        progress: Progress,
        workers: int,
        pulls: Backoff,
        now: float,
        before_remove: Callable[[PodInfo], None],
    ) -> None:
        self.plan, self.nodes, self.desired = plan, nodes, desired
        self.progress, self.workers = progress, workers
        self.pulls, self.now = pulls, now
        self.before_remove = before_remove
        self.result = ApplyResult()

    def fail(
        self, namespace: str, deployment: str, reason: str, message: str, backoff: bool = False
    ) -> None:
        if self.result.failure_for(namespace, deployment) is None:
            self.result.failures.append(Failure(namespace, deployment, reason, message, backoff))
            log.error("%s/%s: %s", namespace, deployment, message)

    def pull_images(self) -> None:
        """Make sure every node has the images its new pods need, before touching any pod."""
        wanted: dict[tuple[str, str], tuple[str, list[tuple[str, str, str]]]] = {}
        auths: dict[tuple[str, str], RegistryAuth | None] = {}
        for c in self.plan.create:
            for spec in c.template.all_containers():
                _, users = wanted.setdefault((c.node, spec.image), (spec.pull_policy, []))
                users.append((c.template.namespace, c.template.deployment, spec.source))
                if spec.pull_policy == "Always":
                    wanted[(c.node, spec.image)] = ("Always", users)
                if auths.get((c.node, spec.image)) is None:  # the first pod with credentials
                    auths[(c.node, spec.image)] = credentials(
                        self.desired.manifests, c.template, spec.image
                    )

        def ensure(item: tuple[tuple[str, str], tuple[str, list[tuple[str, str, str]]]]) -> None:
            (node_name, image), (policy, users) = item
            node = self.nodes[node_name]
            key = f"{node_name}/{image}"
            waiting = False
            try:
                if policy == "Always" or not node.has_image(image):
                    if policy == "Never":
                        raise ImagePullError(
                            f"node {node_name}: image {image} is not present and "
                            "imagePullPolicy is Never (ErrImageNeverPull)"
                        )
                    wait = self.pulls.not_before(key, self.now) - self.now
                    if wait > 0:
                        waiting = True
                        raise ImagePullError(
                            f"node {node_name}: back-off pulling image {image} "
                            f"(next try in {wait:.0f}s, after {self.pulls.count(key)} failures)"
                        )
                    self.progress(f"pulling {image} on {node_name}")
                    started = time.monotonic()
                    try:
                        node.pull(image, auths.get((node_name, image)))
                    except ImagePullError:
                        self.pulls.record(key, self.now)
                        raise
                    self.pulls.clear(key)
                    self.result.pulled[(node_name, image)] = time.monotonic() - started
            except Exception as exc:
                if not isinstance(exc, GitopsError):
                    log.exception("pulling %s on %s failed", image, node_name)
                reason = exc.reason if isinstance(exc, GitopsError) else Reason.INTERNAL
                text = str(exc) if isinstance(exc, GitopsError) else internal(exc)
                for ns, dep, source in users:
                    self.fail(ns, dep, reason, f"{source}.image: {text}", backoff=waiting)

        self._parallel(ensure, list(wanted.items()))
        for c in self.plan.create:
            failed = self.result.failure_for(c.template.namespace, c.template.deployment)
            if failed is not None:
                self.result.unstarted.append(
                    Unstarted(
                        c.template.namespace, c.template.deployment, c.pod, c.node,
                        c.template.template_hash, c.template.commit,
                        "ImagePullBackOff" if failed.backoff else "ErrImagePull", failed.message,
                    )
                )  # fmt: skip

    def _parallel(self, fn: Callable[[T], None], items: list[T]) -> None:
        if not items:
            return
        with ThreadPoolExecutor(max_workers=min(self.workers, len(items))) as pool:
            list(pool.map(fn, items))  # fn handles its own errors

    def _act(
        self,
        namespace: str,
        deployment: str,
        where: str,
        action: Callable[[], None],
        node: str = "",
    ) -> bool:
        """Run one pod action; a failure is recorded against its deployment, not raised."""
        try:
            action()
        except GitopsError as exc:
            self.fail(namespace, deployment, exc.reason, f"{where}: {exc}")
            if isinstance(exc, NodeUnavailable) and node:
                self.result.silent[node] = str(exc)  # one key each: safe across the pool
            return False
        except Exception as exc:  # a bug or an adapter's surprise: this deployment's, only
            log.exception("%s/%s: %s failed", namespace, deployment, where)
            self.fail(namespace, deployment, Reason.INTERNAL, f"{where}: {internal(exc)}")
            return False
        return True

    def create(self, item: Create) -> bool:
        t = item.template
        dep = self.desired.deployment(t.namespace, t.deployment)
        where = dep.origin if dep else f"Deployment/{t.deployment}"
        if not self._act(
            t.namespace,
            t.deployment,
            where,
            lambda: self.nodes[item.node].create_pod(t, item.pod),
            item.node,
        ):
            return False
        self.result.created += 1
        self.progress(f"created pod {t.namespace}/{item.pod} on {item.node} ({item.why})")
        return True

    def _name(self, proxy: NameProxy, make: bool) -> None:
        """Make (or remove) a Service's name proxy. A convenience: a failure is logged and the
        pass goes on; the next one tries again."""
        node = self.nodes[proxy.node]
        try:
            if make:
                node.ensure_service(proxy.namespace, proxy.service, list(proxy.ports))
            else:
                node.remove_service(proxy.namespace, proxy.service)
        except GitopsError as exc:
            where = f"{proxy.namespace}/{proxy.service} on {proxy.node}"
            log.warning("service name %s: %s", where, exc)

    def create_slowly(self, pool: ThreadPoolExecutor, creates: list[Create]) -> None:
        """Each deployment's new pods under the ReplicaSet controller's slow start: never more
        started than twice the number that started well, plus one (its batches of 1, 2, 4, ...
        end at exactly that), and none after one fails. So a template whose containers cannot
        start costs one attempt a pass, not a flood; what is left is planned again by the
        next pass. Pipelined, not in batches: a pod starts as soon as the bound allows, without
        waiting for the slowest of a batch. The plan's ``unthrottled`` workloads (Jobs, bounded by
        their parallelism) start all their new pods at once."""
        queues: dict[tuple[str, str], deque[Create]] = {}
        for c in creates:
            queues.setdefault((c.template.namespace, c.template.deployment), deque()).append(c)
        started = dict.fromkeys(queues, 0)
        succeeded = dict.fromkeys(queues, 0)
        failed: set[tuple[str, str]] = set()
        running: dict[Future[bool], tuple[str, str]] = {}

        unthrottled = set(self.plan.unthrottled)

        def launch(key: tuple[str, str]) -> None:
            while (
                queues[key]
                and key not in failed
                and (key in unthrottled or started[key] < 2 * succeeded[key] + 1)
            ):
                started[key] += 1
                running[pool.submit(self.create, queues[key].popleft())] = key

        for key in queues:
            launch(key)
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                key = running.pop(future)
                if future.result():
                    succeeded[key] += 1
                else:
                    failed.add(key)
                launch(key)
        for key in sorted(failed):
            if queues[key]:
                log.info(
                    "%s/%s: %d pod(s) not created this pass: one before them failed",
                    *key, len(queues[key]),
                )  # fmt: skip

    def restart(self, item: Restart) -> None:
        pod, node = item.pod, self.nodes[item.pod.node]

        grace = pod.containers[0].meta.grace

        def start_all() -> None:
            try:
                for cid in item.container_ids:
                    if cid in item.running:
                        node.restart_container(cid, grace)
                    else:
                        node.start_container(cid)
            except SandboxGone as exc:  # no restart can work: made again on the next pass
                log.warning("%s/%s: pod %s removed: %s", pod.namespace, pod.deployment,
                            pod.name, exc)  # fmt: skip
                self.before_remove(pod)
                node.remove_pod(pod)

        verb = "restart" if item.restarts else "start"
        if self._act(pod.namespace, pod.deployment, f"{verb} {pod.name}", start_all, pod.node):
            if item.restarts:
                self.result.restarted += 1
            self.progress(f"{verb}ed pod {pod.namespace}/{pod.name} ({item.why})")

    def remove(self, item: Remove) -> None:
        pod = item.pod

        def remove() -> None:
            self.before_remove(pod)  # out of every Service first, then stopped
            self.nodes[pod.node].remove_pod(pod)

        if self._act(pod.namespace, pod.deployment, f"remove {pod.name}", remove, pod.node):
            self.result.removed += 1
            self.progress(f"removed pod {pod.namespace}/{pod.name} ({item.why})")

    def records(self, write: bool) -> None:
        """Finished Jobs remembered on every node, or forgotten. A node that fails is told
        again by the next pass (each pass writes where a record is missing)."""
        for rec in self.plan.records_write if write else self.plan.records_remove:
            node = self.nodes[rec.node]
            try:
                node.write_record(rec) if write else node.remove_record(rec)
            except GitopsError as exc:
                log.warning("job %s/%s record on %s: %s", rec.namespace, rec.job, rec.node, exc)

    def run(self) -> ApplyResult:
        for node_name, ns in self.plan.networks_create:
            self.nodes[node_name].ensure_network(ns)
        for proxy in self.plan.names_create:
            self._name(proxy, make=True)
        self.records(write=True)  # remembered before its pods go
        self.pull_images()
        # One pool for every pod action: a replacement starts while the pod it replaces stops
        # (the plan's arithmetic already allows both), not a whole grace period later.
        # The plan says which actions need a deployment's images; those of one whose images
        # could not be had wait (its old pods keep serving).
        blocked = {(f.namespace, f.deployment) for f in self.result.failures}

        def allowed(action: Create | Restart | Remove) -> bool:
            return self.plan.gate(action) not in blocked

        actions: list[Callable[[], None]] = [
            *(functools.partial(self.restart, r) for r in self.plan.restart if allowed(r)),
            *(functools.partial(self.remove, r) for r in self.plan.remove if allowed(r)),
        ]
        creates = [c for c in self.plan.create if allowed(c)]
        if actions or creates:
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                started = [pool.submit(action) for action in actions]
                self.create_slowly(pool, creates)
                for future in started:
                    future.result()  # each action handles its own errors
        for vol in self.plan.volumes_remove:  # a retention policy's Delete, never a prune's
            try:
                self.nodes[vol.node].remove_volume(vol.name)
                log.warning("deleted volume %s of PersistentVolumeClaim %s/%s on %s: its "
                            "StatefulSet's persistentVolumeClaimRetentionPolicy says Delete",
                            vol.name, *vol.key, vol.node)  # fmt: skip
            except GitopsError as exc:
                log.warning("volume %s on %s stays: %s", vol.name, vol.node, exc)
        self.records(write=False)
        for proxy in self.plan.names_remove:
            self._name(proxy, make=False)
        for node_name, ns in self.plan.networks_remove:
            try:
                self.nodes[node_name].remove_network(ns)
            except GitopsError as exc:  # e.g. an unmanaged container still attached
                log.warning("network %s on %s stays: %s", ns, node_name, exc)
        return self.result


def apply_plan(
    plan: Plan,
    nodes: Mapping[str, Node],
    desired: DesiredState,
    progress: Progress | None = None,
    workers: int = 8,
    pulls: Backoff | None = None,
    now: float = 0.0,
    before_remove: Callable[[PodInfo], None] = lambda _: None,
) -> ApplyResult:
    """Carry out ``plan``. Raises ``NodeUnavailable`` only when a network cannot be made."""
    try:
        applier = _Applier(
            plan,
            nodes,
            desired,
            progress or log.info,
            workers,
            pulls or Backoff(),
            now,
            before_remove,
        )
        return applier.run()
    except NodeUnavailable:
        raise
    except GitopsError as exc:  # pragma: no cover - every step handles its own errors
        return ApplyResult(failures=[Failure("", "", Reason.INTERNAL, str(exc))])
