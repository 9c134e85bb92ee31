"""Ingress through the front door on in-memory nodes: Healthy once its Service has a ready pod
(Progressing before, naming the backend it waits for), another controller's Skipped, and a
conflicting commit rejected with file, document and field while the applied one keeps running."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gitops.model.verdicts import Health, Result, Sync
from tests.harness.harness import Harness
from tests.helpers import deployment


def service() -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "demo"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]},
    }  # fmt: skip


def ingress(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": "demo"},
        "spec": {"rules": [{"host": "a.example.com", "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}], **spec},
    }  # fmt: skip


def test_an_ingress_is_healthy_once_its_backend_has_a_ready_pod(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.push("web.yaml", deployment(replicas=0), service(), ingress("site"),
           ingress("other", ingressClassName="nginx"))  # fmt: skip
    outcome = h.run()
    by = {r.name: r for r in outcome.status.resources if r.kind == "Ingress"}
    assert (by["site"].health, by["site"].message) == (
        Health.PROGRESSING, "no ready endpoint for web:80",
    )  # fmt: skip
    assert by["other"].sync == Sync.SKIPPED and "nginx is not gitops'" in by["other"].message
    h.push("web.yaml", deployment(replicas=2), service(), ingress("site"))
    outcome = h.run()
    (site,) = [r for r in outcome.status.resources if r.kind == "Ingress"]
    assert (site.sync, site.health) == (Sync.SYNCED, Health.HEALTHY)
    routes = h.rec.ingress
    assert [len(p.endpoints) for p in routes.pools] == [2]

    h.push("clash.yaml", ingress("clash"))  # the same host and path: refused, nothing lost
    outcome = h.run()
    assert outcome.status.result == Result.FAILED
    # Both are named (the one in the later file, by git's order, carries the error).
    assert any("web.yaml:2: Ingress/site: spec.rules[0].http.paths[0].path" in e
               and "Ingress demo/clash (clash.yaml:0" in e for e in outcome.status.errors), outcome.status.errors  # fmt: skip
    assert len(h.pods()) == 2 and len(h.rec.ingress.pools[0].endpoints) == 2
