"""Which files of a tree are manifests, read with the limits every reader shares.

Stage: manifests, first step. In: a ``Tree`` (a commit of the git source, or a directory for
``gitops validate``): its listing, and a way to read one file. Out: a ``FileSet``, the bytes of
the manifest files only, and a ``FieldError`` for each file that should have been one but
cannot be read (over the size limit, a symbolic link). Both readers go through
``read_manifests``, so ``validate`` and the reconciler see the same files and reach the same
verdict.

The repository chooses its manifests: only ``.yaml``, ``.yml`` and ``.json`` files that are not
hidden, less what a ``.gitopsignore`` (gitignore syntax, in any directory, for the files below
it) or an ``--exclude`` glob leaves out, and, when ``--include`` globs are given, only the files
they match (as Argo CD's directory source has ``include`` and ``exclude``). Nothing outside the
set is read into memory: the listing gives names and sizes.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pathspec

from gitops.errors import FieldError

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
IGNORE_FILE = ".gitopsignore"
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_IGNORE_BYTES = 64 * 1024


@dataclass(frozen=True)
class TreeItem:
    path: str  # relative, '/'-separated
    size: int
    link: bool = False  # a symbolic link (not followed)


class Tree(Protocol):
    def listing(self) -> Iterable[TreeItem]: ...

    def read(self, path: str) -> bytes: ...


@dataclass(frozen=True)
class Rules:
    """``--include``/``--exclude`` globs (gitignore syntax, relative to the manifest root;
    ``{a,b}`` alternatives as Argo CD writes them)."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileSet:
    files: Mapping[str, bytes] = field(default_factory=dict)
    problems: tuple[FieldError, ...] = ()


def is_manifest_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return path.endswith(MANIFEST_SUFFIXES) and not name.startswith(".")


def is_candidate(path: str) -> bool:
    """May ``read_manifests`` read this file: a manifest by its name, or an ignore file?"""
    return is_manifest_file(path) or path.rsplit("/", 1)[-1] == IGNORE_FILE


def expand_braces(pattern: str) -> list[str]:
    """``apps/{web,api}/*.yaml`` -> ``apps/web/*.yaml``, ``apps/api/*.yaml`` (nested too)."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [out for alt in match.group(1).split(",") for out in expand_braces(head + alt + tail)]


def _spec(patterns: Iterable[str]) -> pathspec.GitIgnoreSpec | None:
    lines = [p for raw in patterns for p in expand_braces(raw.strip()) if p]
    return pathspec.GitIgnoreSpec.from_lines(lines) if lines else None


class _Ignores:
    """Every ``.gitopsignore`` of the tree; a deeper one decides last, as in git."""

    def __init__(self, specs: Mapping[str, pathspec.GitIgnoreSpec]) -> None:
        self.specs = sorted(specs.items(), key=lambda kv: kv[0].count("/") if kv[0] else -1)

    def ignored(self, path: str) -> bool:
        verdict = False
        for base, spec in self.specs:
            if base and not path.startswith(base + "/"):
                continue
            checked = spec.check_file(path[len(base) + 1 :] if base else path)
            if checked.include is not None:
                verdict = bool(checked.include)
        return verdict


def read_manifests(tree: Tree, rules: Rules | None = None) -> FileSet:
    """The manifest files of ``tree`` and, for those that cannot be read, why."""
    items = sorted(tree.listing(), key=lambda i: i.path)
    problems: list[FieldError] = []
    specs: dict[str, pathspec.GitIgnoreSpec] = {}
    for item in items:
        base, _, name = item.path.rpartition("/")
        if name != IGNORE_FILE:
            continue
        if item.link or item.size > MAX_IGNORE_BYTES:
            problems.append(_problem(item, MAX_IGNORE_BYTES))
            continue
        spec = _spec(tree.read(item.path).decode("utf-8", "replace").splitlines())
        if spec is not None:
            specs[base] = spec
    ignores = _Ignores(specs)
    rules = rules or Rules()
    include, exclude = _spec(rules.include), _spec(rules.exclude)
    files: dict[str, bytes] = {}
    for item in items:
        path = item.path
        if not is_manifest_file(path) or ignores.ignored(path):
            continue
        if include is not None and not include.match_file(path):
            continue
        if exclude is not None and exclude.match_file(path):
            continue
        if item.link or item.size > MAX_FILE_BYTES:
            problems.append(_problem(item, MAX_FILE_BYTES))
            continue
        files[path] = tree.read(path)
    return FileSet(files, tuple(problems))


def _problem(item: TreeItem, limit: int) -> FieldError:
    if item.link:
        why = (
            "is a symbolic link; gitops does not follow links (commit the file itself, or "
            f"leave it out with {IGNORE_FILE} or --exclude)"
        )
    else:
        why = f"is {item.size} bytes, over the limit of {limit} bytes"
    return FieldError(item.path, 0, "", "", f"file {why}")


class DirectoryTree:
    """A directory on disk: what ``gitops validate`` and the CLI's edits read. Links are
    listed, never followed, as a commit holds them."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def listing(self) -> Iterator[TreeItem]:
        for top, dirs, names in os.walk(self.root, followlinks=False):
            rel_top = os.path.relpath(top, self.root)
            dirs[:] = sorted(d for d in dirs if d != ".git")
            for name in [*names, *(d for d in dirs if os.path.islink(os.path.join(top, d)))]:
                full = os.path.join(top, name)
                info = os.lstat(full)
                rel = name if rel_top == "." else f"{rel_top}/{name}".replace(os.sep, "/")
                link = stat.S_ISLNK(info.st_mode)
                if link or stat.S_ISREG(info.st_mode):
                    yield TreeItem(rel, info.st_size, link)

    def read(self, path: str) -> bytes:
        return (self.root / path).read_bytes()


def read_directory(root: Path, rules: Rules | None = None) -> FileSet:
    return read_manifests(DirectoryTree(root), rules)
