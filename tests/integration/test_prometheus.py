"""gitops under a real Prometheus (Debian's): ``promtool check metrics`` on a live scrape,
``promtool check config|rules`` and ``test rules`` on deploy/prometheus, a Prometheus server
scraping a running reconciler and answering a query for a deployment's ready replicas, and
every Grafana panel's query evaluated by that server against real series."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.integration.test_run import free_port, server, wait_for  # noqa: F401 - fixture

DEPLOY = ROOT / "deploy"
pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None or shutil.which("promtool") is None,
    reason="Debian's prometheus package is not installed (scripts/host-setup installs it)",
)


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], input=stdin, capture_output=True, text=True, timeout=60
    )


def test_deploy_config_and_alert_rules_pass_promtool() -> None:
    where = DEPLOY / "prometheus"
    for args in (
        ("check", "config", str(where / "prometheus.yml")),
        ("check", "rules", str(where / "alerts.yml")),
        ("test", "rules", str(where / "alerts_test.yml")),
    ):
        out = promtool(*args)
        assert out.returncode == 0, out.stdout + out.stderr
    names = {r["alert"] for g in yaml.safe_load((where / "alerts.yml").read_text())["groups"]
             for r in g["rules"]}  # fmt: skip
    # what the issue asks alerts for: sync failing, degraded, rollback, node NotReady
    assert {"GitopsSyncFailing", "GitopsDeploymentDegraded", "GitopsRollbackHappened",
            "GitopsNodeNotReady"} <= names  # fmt: skip


@pytest.fixture
def prometheus(
    server: tuple[str, Any],  # noqa: F811 - test_run's fixture: a running reconciler
    tmp_path: Path,
) -> Iterator[tuple[str, str]]:
    url, _ = server
    target = urllib.parse.urlsplit(url).netloc
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["scrape_configs"][0]["static_configs"] = [{"targets": [target]}]
    config["rule_files"] = [str(DEPLOY / "prometheus" / "alerts.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("w"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(base), 60, 0.2)
        yield url, base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/-/ready", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def query(base: str, expr: str) -> dict[str, Any]:
    q = urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(f"{base}/api/v1/query?{q}", timeout=10) as resp:
        data: dict[str, Any] = json.load(resp)
    return data


def test_prometheus_scrapes_gitops_and_every_dashboard_query_finds_its_series(
    prometheus: tuple[str, str],
) -> None:
    url, base = prometheus
    with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
        exposition = resp.read().decode()
    lint = promtool("check", "metrics", stdin=exposition)
    assert lint.returncode == 0, lint.stdout + lint.stderr

    def ready_replicas() -> float | None:
        found = query(
            base, 'gitops_deployment_replicas_ready{namespace="runtest",deployment="web"}'
        )
        result = found["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    wait_for(lambda: ready_replicas() == 2.0, 60, 0.5)
    up = query(base, 'up{job="gitops"}')["data"]["result"]
    assert [r["value"][1] for r in up] == ["1"]

    # the alert rules are loaded and evaluated against real series (healthy: none firing)
    with urllib.request.urlopen(base + "/api/v1/rules", timeout=10) as resp:
        groups = json.load(resp)["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) >= 7 and all(r["health"] in ("ok", "unknown") for r in rules), rules

    # every Grafana panel: a valid query whose metrics this reconciler exposes
    dashboard = json.loads((DEPLOY / "grafana" / "gitops.json").read_text())
    # Families from their TYPE lines: a labelled counter no event has touched yet has no
    # sample, but it is declared, so a panel over it is right (and shows zero, then data).
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    exposed = {
        name.removesuffix("_total") + suffix
        for name, kind in re.findall(r"^# TYPE (gitops_\w+) (\w+)", exposition, re.M)
        for suffix in suffixes.get(kind, ("",))
    }
    checked = 0
    for panel in dashboard["panels"]:
        if "haproxy_backend" in json.dumps(panel):
            continue  # the Ingress panels: tests/integration/test_ingress.py evaluates them
        for target in panel["targets"]:
            expr = target["expr"].replace("$job", ".*")
            names = set(re.findall(r"\bgitops_\w+", expr))
            assert names and names <= exposed, (panel["title"], names - exposed)
            answer = query(base, expr)
            assert answer["status"] == "success", (panel["title"], answer)
            checked += 1
    print(f"\n{checked} dashboard queries evaluated by Prometheus; {len(rules)} alert rules loaded")
