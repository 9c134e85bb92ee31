"""The corpus of real public manifests (tests/corpus/sources.yaml: 84 files of 9 repositories,
each with its commit): every file that uses only what a Docker host can honour validates, and
every rejection is one the sources list names, with why.

The files are public data that this repository does not commit; with ``GITOPS_CORPUS`` naming a
copy (``OWNER__NAME/PATH``) each directory is validated as gitops reads one, its own files only
(kustomizations built).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from gitops.errors import ManifestError
from gitops.manifests import parse_manifests
from gitops.manifests.files import Rules, is_manifest_file, read_directory
from gitops.source import kustomize

SOURCES = Path(__file__).resolve().parents[1] / "corpus" / "sources.yaml"
CORPUS = os.environ.get("GITOPS_CORPUS", "")


def test_the_sources_list_names_repositories_commits_and_files() -> None:
    sources = yaml.safe_load(SOURCES.read_text())
    repos = sources["repositories"]
    manifests = [f for r in repos for f in r["files"] if is_manifest_file(f)]
    assert len(repos) >= 8 and len(manifests) >= 60
    assert all(len(r["commit"]) == 40 for r in repos)
    listed = {f"{r['repository']}:{f}" for r in repos for f in r["files"]}
    assert set(sources["rejected"]) <= listed


@pytest.mark.skipif(not CORPUS, reason="GITOPS_CORPUS names no copy of the corpus (not committed)")
def test_every_corpus_file_validates_unless_it_is_listed_as_rejected() -> None:
    sources = yaml.safe_load(SOURCES.read_text())
    rejected: set[str] = set()
    for repo in sources["repositories"]:
        base = Path(CORPUS) / repo["repository"].replace("/", "__")
        for directory in sorted({str(Path(f).parent) for f in repo["files"]}):
            found = read_directory(base / directory, Rules(exclude=("/*/",)), kustomize.render)
            try:
                parse_manifests(found.files, found.problems, renderer=found.renderer)
            except ManifestError as exc:
                for e in exc.errors:
                    inside = f"{directory}/{e.path}" if directory != "." else e.path
                    rejected.add(f"{repo['repository']}:{inside}")
    assert rejected == set(sources["rejected"])
