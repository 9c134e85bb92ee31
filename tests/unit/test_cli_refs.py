"""The CLI's workload references: ``deployment/NAME`` and ``statefulset/NAME`` (``sts/``) for
``set image``, ``scale`` and ``rollout``; a StatefulSet is edited in git as a Deployment is."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gitops.cli.common import deployment, kind_of
from tests.conftest import git
from tests.unit.test_statefulset import HEADLESS, sts


@pytest.mark.parametrize(
    ("text", "kind"),
    [("deployment/web", "Deployment"), ("deploy/web", "Deployment"),
     ("statefulset/web", "StatefulSet"), ("sts/web", "StatefulSet")],
)  # fmt: skip
def test_a_reference_names_its_kind(text: str, kind: str) -> None:
    ref = deployment(text)
    assert (ref, kind_of(ref)) == ("web", kind)


def test_a_reference_of_another_kind_is_refused() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="daemonset/NAME"):
        deployment("replicaset/web")
    assert kind_of(deployment("ds/agent")) == "DaemonSet"


def test_set_image_and_scale_edit_a_statefulset(tmp_path: Path) -> None:
    bare, work = tmp_path / "r.git", tmp_path / "w"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(tmp_path, "clone", "-q", str(bare), str(work))
    (work / "db.yaml").write_text(yaml.safe_dump_all([HEADLESS, sts(3)], sort_keys=False))
    git(work, "add", "-A")
    git(work, "commit", "-qm", "db")
    git(work, "push", "-q", "origin", "HEAD:main")

    def gitops(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gitops", *args, "-n", "demo", "--repo",
                               str(bare)], capture_output=True, text=True, timeout=60)  # fmt: skip

    image = gitops("set", "image", "statefulset/db", "db=reg/db:v2")
    assert image.returncode == 0, image.stderr
    scale = gitops("scale", "sts/db", "--replicas", "5")
    assert scale.returncode == 0, scale.stderr
    shown = git(bare, "show", "main:db.yaml")
    [doc] = [d for d in yaml.safe_load_all(shown) if d["kind"] == "StatefulSet"]
    assert doc["spec"]["replicas"] == 5
    assert doc["spec"]["template"]["spec"]["containers"][0]["image"] == "reg/db:v2"
    paused = gitops("rollout", "pause", "sts/db")
    assert paused.returncode == 2 and "cannot be paused" in paused.stderr
