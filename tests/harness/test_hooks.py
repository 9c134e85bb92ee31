"""Sync hooks on the harness (the real Reconciler, in-memory nodes, a real git repository):
a PreSync Job runs before the commit's workloads change, and a failed one holds them at the
commit they run, with the Job's reason, exit and last log lines in status; the fixed commit
runs the Job, then rolls; PostSync runs once the workloads are Healthy; delete policies; a
commit that changes no workload runs no hook again."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from gitops.decide.delivery import FAILED_DELIVERY, judge
from gitops.errors import Reason
from gitops.model.verdicts import Health, Result
from tests.harness.harness import Harness
from tests.helpers import deployment, job, secret


def web(image: str = "reg/web:v1") -> dict[str, Any]:
    return deployment(image=image, replicas=2)


def hook(command: str = "migrate", **spec: Any) -> dict[str, Any]:
    return job(hook="PreSync", command=["sh", "-c", command], backoffLimit=0, **spec)


def harness(tmp_path: Path) -> Harness:
    h = Harness(tmp_path)
    h.clock.now = time.time()  # the memory engine stamps containers with the real clock
    return h


def finish(h: Harness, name: str, code: int, output: str = "") -> None:
    """The running pod of ``name`` exits with ``code``, having written ``output``."""
    [pod] = [p for p in h.pods(name) if p.running]
    node = h.nodes[pod.node]
    node.output[pod.containers[0].id] = output
    node.crash(pod.containers[0].id, code)


def test_a_failed_presync_job_holds_the_rollout_and_the_fixed_commit_rolls(
    tmp_path: Path,
) -> None:
    h = harness(tmp_path)
    h.push("web.yaml", web())
    h.run()
    assert h.images() == {"reg/web:v1"}
    h.push("db.yaml", secret("db", password="s3cr3t-pw"))
    migrate = hook()
    migrate["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}
    ]
    h.push("migrate.yaml", migrate)
    h.push("web.yaml", web("reg/web:v2"))
    h.run()
    assert len([p for p in h.pods("migrate") if p.running]) == 1
    assert h.images() == {"reg/web:v1"}  # nothing rolls while the migration runs
    res = {r.name: r for r in h.rec.status.resources}
    assert "waiting for PreSync hook Job demo/migrate" in res["web"].message
    finish(h, "migrate", 3, "connecting with s3cr3t-pw\nrelation users already exists\n")
    outcome = h.run()
    st = outcome.status
    assert (st.result, st.reason) == (Result.FAILED, Reason.HOOK_FAILED)
    assert "PreSync hook Job demo/migrate failed (BackoffLimitExceeded)" in st.message
    assert "container task exited with 3" in st.message
    assert any("relation users already exists" in e for e in st.errors)
    assert not any("s3cr3t-pw" in e for e in st.errors)  # the Secret's value is masked
    assert h.images() == {"reg/web:v1"} and all(p.running for p in h.pods())
    res = {r.name: r for r in st.resources}
    assert res["web"].health == Health.HEALTHY and "previous commit runs" in res["web"].message
    verdict = judge(st.applied, st, {}, lambda a, b: True)
    assert verdict.state == FAILED_DELIVERY and "exited with 3" in verdict.message
    # A crashed pod of the held Deployment is still healed (at the commit it runs).
    [first, _] = h.pods()
    h.nodes[first.node].delete(first.containers[0].id)
    h.run()
    assert len(h.pods()) == 2 and h.images() == {"reg/web:v1"}
    # The fixed commit runs the Job, then rolls.
    h.push("migrate.yaml", hook("migrate --if-not-exists"))
    h.run()
    assert h.images() == {"reg/web:v1"}
    finish(h, "migrate", 0)
    outcome = h.run()
    assert h.images() == {"reg/web:v2"}
    assert outcome.status.result == Result.SUCCEEDED
    # A commit that changes no workload runs no hook again.
    h.push("README.md.yaml", {"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "readme", "namespace": "demo"}})  # fmt: skip
    outcome = h.run()
    assert outcome.plan is not None and not outcome.plan.create


def test_a_new_workload_waits_for_the_presync_job_of_its_commit(tmp_path: Path) -> None:
    h = harness(tmp_path)
    h.push("app.yaml", web(), hook())
    h.run()
    assert h.pods() == [] and len(h.pods("migrate")) == 1
    [res] = [r for r in h.rec.status.resources if r.name == "web"]
    assert (res.health, res.sync) == (Health.MISSING, "OutOfSync")
    finish(h, "migrate", 0)
    h.run()
    assert len(h.pods()) == 2


def test_post_sync_runs_once_every_workload_is_healthy(tmp_path: Path) -> None:
    h = harness(tmp_path)
    h.push("app.yaml", web(), job("smoke", hook="PostSync", command=["sh", "-c", "check"]))
    h.rec.reconcile("test")
    assert h.pods("smoke") == []  # the Deployment is not yet Healthy
    [res] = [r for r in h.rec.status.resources if r.name == "smoke"]
    assert "PostSync hook: waits" in res.message
    h.run()
    assert len(h.pods()) == 2 and len(h.pods("smoke")) == 1


def test_hook_succeeded_deletes_the_hooks_pods_and_its_end_is_kept(tmp_path: Path) -> None:
    h = harness(tmp_path)
    h.push("app.yaml", web(), hook(annotations={"argocd.argoproj.io/hook-delete-policy":
                                                "HookSucceeded"}))  # fmt: skip
    h.run()
    finish(h, "migrate", 0)
    outcome = h.run()
    assert h.pods("migrate") == [] and len(h.pods()) == 2
    [res] = [r for r in outcome.status.resources if r.name == "migrate"]
    assert res.condition == "Complete"


def test_a_running_hook_is_never_cut_short_by_a_newer_commit(tmp_path: Path) -> None:
    h = harness(tmp_path)
    h.push("web.yaml", web())
    h.run()
    h.push("migrate.yaml", hook("migrate 0042"))
    h.push("web.yaml", web("reg/web:v2"))
    h.run()
    [first] = h.pods("migrate")
    h.push("web.yaml", web("reg/api:v1"))  # a newer commit while the migration runs
    h.run()
    assert [p.name for p in h.pods("migrate")] == [first.name] and first.running
    assert h.images() == {"reg/web:v1"}
    finish(h, "migrate", 0)
    h.run()  # the earlier run ended: the newer one runs, then the new image rolls
    [second] = [p for p in h.pods("migrate") if p.running]
    assert second.name != first.name
    finish(h, "migrate", 0)
    h.run()
    assert h.images() == {"reg/api:v1"}
