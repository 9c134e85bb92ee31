"""Small things a kubectl user expects of the CLI: ``version`` (and the server's ``/version``
and ``gitops_build_info``), "did you mean" for a mistyped verb, and ``GITOPS_NAMESPACE``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from prometheus_client.parser import text_string_to_metric_families

from gitops import __version__
from gitops.cli.main import parser
from gitops.config import build
from gitops.report.metrics import Metrics


def gitops(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gitops", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, **env})  # fmt: skip


def test_version_says_the_client_and_the_build_info_metric_says_the_same() -> None:
    shown = gitops("version", "--client", "-o", "json")
    assert shown.returncode == 0
    client = json.loads(shown.stdout)["clientVersion"]
    assert client == build.info() and client["gitVersion"] == f"v{__version__}"
    assert client["platform"].startswith("linux/")
    unreachable = gitops("version", "--server", "http://127.0.0.1:9")
    assert unreachable.returncode == 2 and unreachable.stdout == f"Client Version: v{__version__}\n"
    [info] = [f for f in text_string_to_metric_families(Metrics().exposition().decode())
              if f.name == "gitops_build_info"]  # fmt: skip
    assert info.samples[0].labels["version"] == client["gitVersion"] and info.samples[0].value == 1


def test_a_mistyped_verb_gets_the_nearest_ones() -> None:
    typo = gitops("gt", "pods")
    assert typo.returncode == 2 and "did you mean 'get'?" in typo.stderr
    assert "Traceback" not in typo.stderr
    far = gitops("xyzzy")
    assert far.returncode == 2 and "not a gitops verb" in far.stderr and "mean" not in far.stderr
    assert gitops("--log-format", "json", "version", "--client").returncode == 0


def test_gitops_namespace_is_every_verbs_default_namespace() -> None:
    os.environ["GITOPS_NAMESPACE"] = "team-a"
    try:
        top = parser()
        assert top.parse_args(["get", "pods"]).namespace == "team-a"
        assert top.parse_args(["logs", "web"]).namespace == "team-a"
        assert top.parse_args(["scale", "deployment/web", "--replicas", "2"]).namespace == "team-a"
        assert top.parse_args(["rollout", "restart", "deployment/web"]).namespace == "team-a"
        assert top.parse_args(["get", "pods", "-n", "b"]).namespace == "b"
    finally:
        del os.environ["GITOPS_NAMESPACE"]
    assert (
        parser().parse_args(["scale", "deployment/web", "--replicas", "2"]).namespace == "default"
    )
