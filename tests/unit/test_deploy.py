"""deploy/: the documented configuration matches the program, and the files parse."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from gitops.cli import main as cli
from gitops.config.nodes import load_file

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def run_parser() -> argparse.ArgumentParser:
    sub = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    run: argparse.ArgumentParser = sub.choices["run"]
    return run


def test_every_run_flag_is_documented_in_gitops_env() -> None:
    text = (DEPLOY / "gitops.env").read_text()
    missing = []
    for action in run_parser()._actions:
        longs = [o for o in action.option_strings if o.startswith("--")]
        if not longs or longs[0] in ("--help", "--node"):  # --node: the config file's job
            continue
        name = cli.env_name(longs[0])
        if not re.search(rf"^(# )?{name}=", text, re.M):
            missing.append(name)
    assert not missing, f"deploy/gitops.env does not document {missing}"


def test_every_run_flag_reads_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_NO_AUTO_ROLLBACK", "true")
    monkeypatch.setenv("GITOPS_INTERVAL", "45s")
    monkeypatch.setenv("GITOPS_WEBHOOK_MAX_BYTES", "1024")
    monkeypatch.setenv("GITOPS_RESTART_BACKOFF", "1s,1m,5m")
    args = cli.parser().parse_args(["run"])
    assert args.no_auto_rollback is True and args.interval == 45.0
    assert args.webhook_max_bytes == 1024 and args.restart_backoff == (1.0, 60.0, 300.0)
    # the command line wins
    assert cli.parser().parse_args(["run", "--interval", "5s"]).interval == 5.0
    monkeypatch.setenv("GITOPS_INTERVAL", "soon")
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["run"])


def test_the_config_example_loads() -> None:
    nodes, timing = load_file(DEPLOY / "config.yaml")
    assert [n.name for n in nodes] == ["node-1", "node-2", "node-3"]
    assert nodes[1].tls_ca and nodes[0].labels == (("disk", "ssd"), ("zone", "a"))
    assert timing == {"node_grace": 10.0, "eviction_timeout": 30.0}


def test_the_grafana_dashboard_is_well_formed() -> None:
    board = json.loads((DEPLOY / "grafana" / "gitops.json").read_text())
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)) >= 10
    for panel in board["panels"]:
        # gitops' own series, or HAProxy's per-route ones that gitops' /metrics carries
        assert panel["targets"] and all(
            "gitops_" in t["expr"] or "haproxy_backend_" in t["expr"] for t in panel["targets"]
        )
        assert panel["datasource"]["uid"] == "${datasource}"


def test_the_readme_comparison_is_one_table_and_says_what_exists() -> None:
    readme = (DEPLOY.parent / "README.md").read_text()
    section = readme.split("## How it compares", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.strip().splitlines() if line.startswith("|")]
    block = section.strip().split("\n\n", 1)[0].splitlines()
    assert block == rows and len(rows) >= 12  # no blank line splits it into two tables
    assert "being built" not in readme
