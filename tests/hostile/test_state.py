"""Secrets at rest: the state directory (git mirror, history, API token) is its owner's only."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops.runner import secure_state_dir
from gitops.state.history import History

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def umask() -> Iterator[None]:
    before = os.umask(0o022)
    yield
    os.umask(before)


def modes(root: Path) -> dict[str, int]:
    return {
        str(p.relative_to(root)): stat.S_IMODE(p.lstat().st_mode) for p in [root, *root.rglob("*")]
    }


def test_an_old_state_directory_is_tightened_and_new_files_are_private(
    tmp_path: Path, umask: None
) -> None:
    state = tmp_path / "state"
    (state / "source" / "mirror.git").mkdir(parents=True)
    (state / "source" / "mirror.git" / "packed-refs").write_text("x")
    (state / "gitops.db").write_text("")
    os.chmod(state, 0o755)
    os.chmod(state / "gitops.db", 0o644)
    secure_state_dir(state)
    History(state / "new")  # made after: under umask 077
    found = modes(state)
    assert found["."] == 0o700
    assert all(mode & 0o077 == 0 for mode in found.values()), found


def test_the_service_unit_keeps_the_state_private_and_descriptors_ample() -> None:
    unit = (ROOT / "deploy" / "gitops.service").read_text()
    assert "StateDirectoryMode=0700" in unit and "UMask=0077" in unit
    assert "LimitNOFILE=65536" in unit
