"""``gitops.source.changes`` on plain data: which commit ``rollout undo`` restores from the
rollout history, and what each verb's commit says and edits, on a work tree of files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops.source.changes import NoSuchChange, rollout, undo_target

WHAT = "deployment demo/web"


def row(revision: int, commit: str, result: str = "Complete", reason: str = "",
        template: str = "") -> dict[str, Any]:  # fmt: skip
    return {"revision": revision, "commit": commit, "result": result, "reason": reason,
            "template_hash": template or f"t{revision}"}  # fmt: skip


def test_undo_goes_back_to_the_last_completed_revision_with_another_template() -> None:
    rows = [row(3, "c3", template="same"), row(2, "c2", template="same"), row(1, "c1")]
    assert undo_target(rows, WHAT) == ("c1", "c3")  # c2 ran the same template: not a step back
    assert undo_target(rows, WHAT, to_revision=2) == ("c2", "c3")
    assert undo_target(rows, WHAT, to_commit="abc") == ("abc", "")


def test_after_a_rollback_undo_brings_git_in_line_with_what_runs() -> None:
    rows = [row(3, "c1", reason="rollback of c2: deadline"), row(2, "c2", "Failed"), row(1, "c1")]
    assert undo_target(rows, WHAT) == ("c1", "c2")


def test_undo_says_why_it_cannot() -> None:
    with pytest.raises(NoSuchChange, match="no rollout of deployment demo/web is recorded"):
        undo_target([], WHAT)
    with pytest.raises(NoSuchChange, match="revision 7 not found"):
        undo_target([row(1, "c1")], WHAT, to_revision=7)
    with pytest.raises(NoSuchChange, match="nothing to roll back to"):
        undo_target([row(2, "c2", "Failed"), row(1, "c1", "Failed")], WHAT)


def _tree(tmp_path: Path, spec: dict[str, Any]) -> Path:
    doc = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "namespace": "demo"}, "spec": spec}  # fmt: skip
    (tmp_path / "web.yaml").write_text("# kept\n" + yaml.safe_dump(doc, sort_keys=False))
    return tmp_path


def test_each_verb_edits_the_workload_round_trip_and_says_so(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"replicas": 2, "template": {"spec": {"containers": []}}})
    key = ("Deployment", "demo", "web")
    made = rollout("restart", key, "", "2026-12-03T17:00:00Z", "a test", note="CI #4")
    assert made.subject == "Restart deployment demo/web"
    assert made.message.endswith("CI #4\n\nMade-with: a test")
    assert made.edit(root, lambda c: {}) == ["web.yaml"]
    text = (root / "web.yaml").read_text()
    assert text.startswith("# kept\n") and "gitops.io/restartedAt: '2026-12-03T17:00:00Z'" in text
    resume = rollout("resume", key, "", "", "a test")
    assert resume.edit(root, lambda c: {}) == []  # not paused: nothing to change
    assert rollout("pause", key, "", "", "a test").edit(root, lambda c: {}) == ["web.yaml"]
    assert yaml.safe_load((root / "web.yaml").read_text())["spec"]["paused"] is True


def test_a_verb_the_kind_has_not_is_refused() -> None:
    with pytest.raises(NoSuchChange, match="a StatefulSet cannot be paused"):
        rollout("pause", ("StatefulSet", "demo", "db"), "", "", "a test")
    with pytest.raises(NoSuchChange, match="a Service has no rollout restart"):
        rollout("restart", ("Service", "demo", "web"), "", "", "a test")
