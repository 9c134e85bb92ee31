"""/metrics on a running reconciler, scraped over real HTTP and read with Prometheus' own
parser: pass and fetch counters, per-deployment state kube-state-metrics style, nodes,
rollouts from the history database, a crashed container's restart and the drift it corrected."""

from __future__ import annotations

import subprocess
import urllib.request

import docker
from prometheus_client.parser import text_string_to_metric_families

from gitops.model.labels import L_CONTAINER, L_INFRA
from tests.conftest import containers_of
from tests.integration.test_run import server, wait_for  # noqa: F401 - the fixture is used

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> tuple[str, Samples]:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return text, out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_metrics_describe_passes_deployments_nodes_rollouts_and_corrections(
    server: tuple[str, subprocess.Popen[bytes]],  # noqa: F811 - test_run's fixture
    engine: docker.DockerClient,
    instance: str,
) -> None:
    url, _ = server
    dep = {"namespace": "runtest", "deployment": "web"}

    def settled() -> bool:
        m = scrape(url)[1]
        synced = any(k[0] == "gitops_deployment_info" and ("sync_status", "Synced") in k[1]
                     for k in m)  # fmt: skip
        return synced and value(m, "gitops_deployment_replicas_ready", **dep) == 2

    wait_for(settled, 60, 0.2)
    text, m = scrape(url)
    assert (value(m, "gitops_reconcile_total", result="succeeded") or 0) >= 1
    assert (value(m, "gitops_git_fetch_total", result="success") or 0) >= 1
    assert (value(m, "gitops_reconcile_duration_seconds_count") or 0) >= 1
    assert value(m, "gitops_deployment_replicas_desired", **dep) == 2
    assert value(m, "gitops_deployment_replicas_available", **dep) == 2
    infos = [k for k in m if k[0] == "gitops_deployment_info"]
    assert len(infos) == 1 and ("sync_status", "Synced") in infos[0][1]
    assert ("health_status", "Healthy") in infos[0][1]
    assert value(m, "gitops_node_ready", node="local") == 1
    assert value(m, "gitops_last_sync_success") == 1
    wait_for(lambda: (value(scrape(url)[1], "gitops_rollouts_total", result="Complete") or 0)
             >= 1, 30, 0.2)  # fmt: skip
    # Bounded label sets: no counter is labelled with a commit or a pod name.
    for (name, labels), _ in m.items():
        if name.endswith("_total"):
            assert not {k for k, _ in labels} & {"revision", "commit", "pod"}, name

    app = next(c for c in containers_of(engine, instance)
               if c.labels.get(L_INFRA) != "true" and c.labels.get(L_CONTAINER) == "web")  # fmt: skip
    app.kill()
    wait_for(lambda: (value(scrape(url)[1], "gitops_container_restarts_total", **dep) or 0) >= 1,
             60, 0.2)  # fmt: skip
    _, after = scrape(url)
    assert (value(after, "gitops_drift_corrections_total", action="restart") or 0) >= 1
    assert "# HELP gitops_deployment_replicas_ready" in text
