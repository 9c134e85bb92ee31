"""A PreSync migration Job on a real ``gitops run``, engine and HAProxy: the failing migration
holds the Deployment at the old version, which serves every request through its Service
throughout, while status names the Job, its exit and its last log lines; the fixed commit
runs the Job, and only then rolls the Deployment."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import docker

from tests.conftest import GitRemote, Images, containers_of, start_gitops, stop_gitops
from tests.helpers import job, namespace
from tests.integration.test_hostile_run import status
from tests.integration.test_run import free_port, wait_for
from tests.integration.test_services import NS, Load, endpoints, node_port, service, web

__all__ = ["node_port"]  # a fixture

FAILING = 'echo "applying 0042_users"; echo "ERROR: relation users already exists" >&2; exit 1'


def migrate(images: Images, script: str) -> dict[str, Any]:
    return job("migrate", NS, images["v1"], "PreSync", ["sh", "-c", script], backoffLimit=0)


def _created(c: Any) -> float:
    return datetime.fromisoformat(c.attrs["Created"][:26].rstrip("Z")).timestamp()


def test_a_failed_presync_migration_holds_the_rollout_and_the_fixed_one_runs_first(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    node_port: int,
    instance: str,
    tmp_path: Path,
) -> None:
    remote.write("ns.yaml", namespace(NS))
    remote.write("web.yaml", web(images, "v1"), service("web", node_port, {"app": "web"}))
    remote.push("web v1")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_gitops(remote.bare, instance, tmp_path / "state", port, tmp_path / "gitops.log")
    try:
        wait_for(lambda: len(endpoints(url, "web")) == 3, 60, 0.2)
        v1, v2 = (images[v].rsplit(":", 1)[1] for v in ("v1", "v2"))
        with Load(node_port, limit=40_000, seconds=170) as load:
            remote.write("migrate.yaml", migrate(images, FAILING))
            remote.write("web.yaml", web(images, "v2"), service("web", node_port, {"app": "web"}))
            remote.push("web v2, after migration 0042")
            wait_for(lambda: status(url).get("reason") == "PreSyncHookFailed", 60, 0.2)
            st = status(url)
            assert "PreSync hook Job svc/migrate failed (BackoffLimitExceeded)" in st["message"]
            assert "container task exited with 1" in st["message"]
            assert any("relation users already exists" in e for e in st["errors"]), st["errors"]
            res = {r["name"]: r for r in st["resources"] if r["kind"] != "Service"}
            assert res["migrate"]["health"] == "Degraded"
            assert "the previous commit runs" in res["web"]["message"], res["web"]
            held = len(load.seen)
            wait_for(lambda: len(load.seen) >= held + 300, 30, 0.1)  # still serving, held
            assert set(load.seen) == {v1}
            apps = [c for c in containers_of(engine, instance, infra=False)
                    if c.labels.get("io.gitops.deployment") == "web"]  # fmt: skip
            assert len(apps) == 3 and all(c.image.tags == [images["v1"]] for c in apps)
            remote.write("migrate.yaml", migrate(images, "echo migrated; sleep 1"))
            remote.push("migration 0042 fixed")
            wait_for(lambda: load.seen[-20:] == [v2] * 20, 120, 0.2)
        assert load.failures == [], load.failures[:5]
        print(f"\npresync: {len(load.seen)} requests, 0 failed, v1 held through the failure")
        seen = load.seen
        assert set(seen[: seen.index(v2)]) == {v1}
        # The fixed Job completed before the first v2 pod was made.
        runs = [c for c in containers_of(engine, instance, infra=False)
                if c.labels.get("io.gitops.deployment") == "migrate"]  # fmt: skip
        done = max(
            datetime.fromisoformat(c.attrs["State"]["FinishedAt"][:26].rstrip("Z")).timestamp()
            for c in runs
            if c.attrs["State"]["ExitCode"] == 0
        )
        # (v1's last pod may still be stopping in its grace period: only v2's containers.)
        new = [c for c in containers_of(engine, instance, infra=False)
               if c.labels.get("io.gitops.deployment") == "web"
               and c.attrs["Config"]["Image"] == images["v2"]]  # fmt: skip
        assert new
        assert min(_created(c) for c in new) >= done

        def healths() -> tuple[str, str, str]:
            st = status(url)
            res = {r["name"]: r for r in st.get("resources", []) if r["kind"] != "Service"}
            return (st.get("result", ""), res.get("migrate", {}).get("health", ""),
                    res.get("web", {}).get("health", ""))  # fmt: skip

        # Healthy once v1's last pod has stopped (its grace period).
        wait_for(lambda: healths() == ("Succeeded", "Healthy", "Healthy"), 30, 0.2)
    finally:
        stop_gitops(proc)
