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

A directory with a ``kustomization.yaml`` is built with kustomize, as Argo CD and Flux build
one: its files are the build's inputs, not manifests of their own, and what the build renders
stands in the ``FileSet`` under the kustomization file's name, so that every error names the
kustomization that produced it. A kustomization that another one uses as a resource (a base)
is built only as part of it. The build itself is the caller's (``Render``: a process, which
this stage does not start).
"""

from __future__ import annotations

import os
import posixpath
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
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


@dataclass(frozen=True)
class TreeItem:
    path: str  # relative, '/'-separated
    size: int
    link: bool = False  # a symbolic link (not followed)


class Tree(Protocol):
    def listing(self) -> Iterable[TreeItem]: ...

    def read(self, path: str) -> bytes: ...

    def context(self) -> tuple[Tree, str]:
        """The whole tree this one is part of, and this one's path in it ("" when it is the
        whole): a kustomization may use bases outside the manifest path (``../base``)."""
        ...


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
    renderer: str = ""  # the kustomize that built the kustomizations ("" when none did)


class RenderError(Exception):
    """A kustomization could not be built; the message says why (never quoting values)."""


class Render(Protocol):
    """Builds the kustomization in ``directory`` of ``tree``: the rendered YAML stream, and
    which kustomize rendered it (``kustomize v5.5.0``). Raises ``RenderError``."""

    def __call__(self, tree: Tree, directory: str) -> tuple[bytes, str]: ...


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


def _kustomizations(tree: Tree, items: list[TreeItem]) -> tuple[dict[str, str], set[str]]:
    """{directory: its kustomization file} of every kustomization of the tree, and those of
    them that another uses as a resource (bases, components)."""
    found = {
        item.path.rpartition("/")[0]: item.path
        for item in items
        if item.path.rpartition("/")[2] in KUSTOMIZATION_FILES and not item.link
    }
    from gitops.manifests.load import load_documents  # noqa: PLC0415 - it imports this module

    used: set[str] = set()
    sizes = {i.path: i.size for i in items}
    for directory, path in found.items() if len(found) > 1 else ():
        if sizes.get(path, 0) > MAX_IGNORE_BYTES:
            continue  # the build reports what is wrong with it
        docs, _ = load_documents({f"{path}.yaml": tree.read(path)})  # bounded, as manifests
        data = docs[0].data if docs else None
        if not isinstance(data, dict):
            continue
        for key in ("resources", "bases", "components"):
            entries = data.get(key)
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, str):
                    target = posixpath.normpath(posixpath.join(directory, entry))
                    used.add("" if target == "." else target)
    return found, used & set(found)


def _render(
    tree: Tree, render: Render | None, directory: str, path: str
) -> tuple[str, bytes, str] | FieldError:
    name = path if path.endswith((".yaml", ".yml")) else path + ".yaml"
    if render is None:
        return FieldError(path, 0, "", "", "a kustomization, but this reader builds none")
    try:
        rendered, renderer = render(tree, directory)
    except RenderError as exc:
        return FieldError(path, 0, "", "", f"kustomize build failed: {exc}")
    return name, rendered, renderer


def read_manifests(tree: Tree, rules: Rules | None = None, render: Render | None = None) -> FileSet:
    """The manifest files of ``tree`` and, for those that cannot be read, why; each
    kustomization built by ``render``."""
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
    kustomized, bases = _kustomizations(tree, items)
    renderers: set[str] = set()
    for directory, kpath in sorted(kustomized.items()):
        if directory in bases or ignores.ignored(kpath):
            continue
        built = _render(tree, render, directory, kpath)
        if isinstance(built, FieldError):
            problems.append(built)
        else:
            files[built[0]] = built[1]
            renderers.add(built[2])

    def inside_kustomization(path: str) -> bool:
        return any(not d or path.startswith(d + "/") for d in kustomized)

    for item in items:
        path = item.path
        if not is_manifest_file(path) or ignores.ignored(path) or inside_kustomization(path):
            continue
        if include is not None and not include.match_file(path):
            continue
        if exclude is not None and exclude.match_file(path):
            continue
        if item.link or item.size > MAX_FILE_BYTES:
            problems.append(_problem(item, MAX_FILE_BYTES))
            continue
        files[path] = tree.read(path)
    return FileSet(files, tuple(problems), ", ".join(sorted(renderers)))


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

    def context(self) -> tuple[DirectoryTree, str]:
        return self, ""  # on disk, the bases around it are there already

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


def read_directory(root: Path, rules: Rules | None = None, render: Render | None = None) -> FileSet:
    return read_manifests(DirectoryTree(root), rules, render)
