"""The git source adapter: the only module that imports GitPython.

In: a repository URL git can clone (local path, ``file://``, ``ssh://``, ``https://``), a branch
and a sub-path. Out: the newest commit SHA (``fetch``) and, for any commit, a ``Snapshot`` of
its manifest files under the sub-path (``gitops.manifests.files`` chooses them), read straight
from the object store (no work tree, so nothing can race a half-written checkout). Only the
chosen blobs are read, and only commit metadata is cached: a repository's other files, however
large, never enter memory. A token for HTTPS comes from an environment variable through
``GIT_ASKPASS`` and never appears in a command line, a URL or a log.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import git
import git.exc

from gitops.errors import FieldError, PermanentError, SourceUnavailable
from gitops.manifests.files import FileSet, Rules, TreeItem, is_candidate, read_manifests
from gitops.source import kustomize

log = logging.getLogger(__name__)
_LINK_MODE = 0o120000
_ASKPASS = """#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' "${GITOPS_GIT_USERNAME:-x-access-token}" ;;
  *) printf '%s\\n' "$(printenv "$GITOPS_TOKEN_ENV")" ;;
esac
"""
_CREDENTIALS = re.compile(r"(\w+://)[^/@\s]+@")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove credentials embedded in URLs and any known secret value from ``text``."""
    text = _CREDENTIALS.sub(r"\1***@", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


@dataclass(frozen=True)
class CommitInfo:
    commit: str
    author: str
    subject: str
    committed: float


@dataclass(frozen=True)
class Snapshot(CommitInfo):
    files: Mapping[str, bytes] = field(repr=False, default_factory=dict)
    problems: tuple[FieldError, ...] = ()
    renderer: str = ""  # the kustomize that built its kustomizations, if any


def local_git_dir(url: str) -> Path | None:
    """The git directory of a repository on this machine (bare or not), else None."""
    path = Path(url[len("file://") :]) if url.startswith("file://") else Path(url)
    if "://" in url and not url.startswith("file://"):
        return None
    if (path / "refs").is_dir() and (path / "HEAD").exists():
        return path
    if (path / ".git" / "refs").is_dir():
        return path / ".git"
    return None


class GitSource:
    def __init__(
        self,
        url: str,
        cache_dir: Path,
        branch: str = "main",
        path: str = "",
        token_env: str = "GITOPS_GIT_TOKEN",  # noqa: S107 - the variable's name, not a token
        timeout: float = 60.0,
        rules: Rules | None = None,
    ) -> None:
        self.url, self.branch = url, branch
        self.path = path.strip("/")
        self.rules = rules or Rules()
        self.token_env, self.timeout = token_env, timeout
        self.cache_dir = cache_dir
        self._repo: git.Repo | None = None
        self._lock = threading.Lock()
        self._infos: OrderedDict[str, CommitInfo] = OrderedDict()
        self._contains: dict[tuple[str, str], bool] = {}  # (newer, older) -> yes, bounded

    @property
    def display_url(self) -> str:
        return redact(self.url)

    def _env(self) -> dict[str, str]:
        return self._env_for(self.cache_dir)

    def _env_for(self, where: Path) -> dict[str, str]:
        where.mkdir(parents=True, exist_ok=True)
        askpass = where / "askpass.sh"
        if not askpass.exists():
            askpass.write_text(_ASKPASS)
            askpass.chmod(stat.S_IRWXU)
        return {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": str(askpass),
            "GITOPS_TOKEN_ENV": self.token_env,
            "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes"),
        }

    def _mirror(self) -> git.Repo:
        if self._repo is None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            where = self.cache_dir / "mirror.git"
            repo = git.Repo(where) if (where / "HEAD").exists() else git.Repo.init(where, bare=True)
            url = self._remote_url()
            if "origin" in [r.name for r in repo.remotes]:
                if repo.remotes.origin.url != url:
                    repo.remotes.origin.set_url(url)
            else:
                repo.create_remote("origin", url)
            self._repo = repo
        return self._repo

    def _remote_url(self) -> str:
        if "://" in self.url or ":" in self.url.split("/")[0]:
            return self.url
        return str(Path(self.url).resolve())

    def fetch(self) -> str:
        """Fetch the branch; return its newest commit. Raises ``SourceUnavailable``."""
        secrets = (os.environ.get(self.token_env, ""),)
        with self._lock:
            try:
                repo = self._mirror()
                repo.git.fetch(
                    "--no-tags",
                    "--prune",
                    "origin",
                    f"+refs/heads/{self.branch}:refs/heads/{self.branch}",
                    env=self._env(),
                    kill_after_timeout=self.timeout,
                )
                return str(repo.commit(f"refs/heads/{self.branch}").hexsha)
            except (git.exc.GitError, ValueError, OSError) as exc:
                message = redact(str(exc), secrets).strip().replace("\n", " ")
                raise SourceUnavailable(
                    f"cannot fetch {self.display_url} branch {self.branch}: {message}"
                ) from exc

    def contains(self, newer: str, older: str) -> bool:
        """Is ``older`` (a full or abbreviated commit) ``newer`` itself or one of its
        ancestors? False for a commit this mirror has not fetched."""
        if not newer or not older:
            return False
        if newer.startswith(older):
            return True
        key = (newer, older)
        if key in self._contains:
            return True
        with self._lock:
            try:
                self._mirror().git.merge_base("--is-ancestor", older, newer)
                found = True
            except git.exc.GitCommandError:  # exit 1: not an ancestor; 128: unknown commit
                found = False
        if found:  # only a yes is final: an unknown commit may arrive with the next fetch
            self._contains[key] = True
            while len(self._contains) > 256:
                self._contains.pop(next(iter(self._contains)))
        return found

    def _commit(self, commit: str) -> git.Commit:
        try:
            return self._mirror().commit(commit)
        except (git.exc.GitError, git.exc.BadName, git.exc.BadObject, ValueError) as exc:
            # BadName: a SHA (a dashboard link, an undo target) the mirror has no object for.
            raise SourceUnavailable(f"commit {commit} not found: {exc}") from exc

    def describe(self, commit: str) -> CommitInfo:
        """Author, subject and time of ``commit`` (cached: commits never change)."""
        with self._lock:
            cached = self._infos.get(commit)
            if cached is not None:
                self._infos.move_to_end(commit)
                return cached
            obj = self._commit(commit)
            message = obj.message if isinstance(obj.message, str) else obj.message.decode()
            info = CommitInfo(
                commit=obj.hexsha,
                author=f"{obj.author.name} <{obj.author.email}>",
                subject=message.splitlines()[0] if message else "",
                committed=float(obj.committed_date),
            )
            self._infos[commit] = info
            while len(self._infos) > 256:
                self._infos.popitem(last=False)
            return info

    def files_at(self, commit: str) -> Mapping[str, bytes]:
        """The manifest files under the sub-path at ``commit`` (what the dashboard shows and
        diffs). Raises ``SourceUnavailable`` for a commit the mirror does not have."""
        return self.snapshot(commit).files

    def snapshot(self, commit: str) -> Snapshot:
        """The manifest files under the sub-path at ``commit``, read anew each time: callers
        keep what they parse, not the bytes."""
        info = self.describe(commit)
        with self._lock:
            found = _files(self._commit(commit), self.path, self.rules)
        return Snapshot(
            info.commit, info.author, info.subject, info.committed, found.files, found.problems,
            found.renderer,
        )  # fmt: skip


@dataclass(frozen=True)
class Commit:
    sha: str
    diff: str
    pushed: bool
    replaced: str  # the branch head the commit was made on


Edit = Callable[[Path, Callable[[str], dict[str, bytes]]], list[str]]


class NothingToChange(PermanentError):
    """The requested change is already what the repository says."""


class GitWriter:
    """Changes the repository the GitOps way: clone, edit, commit, push.

    ``edit(work_tree, files_at)`` changes files under the work tree and returns the paths it
    changed; ``files_at(commit)`` gives the manifests under the sub-path at any commit. A push
    that loses a race (non-fast-forward) is retried on a fresh clone, edit included."""

    def __init__(
        self,
        url: str,
        branch: str = "main",
        path: str = "",
        token_env: str = "GITOPS_GIT_TOKEN",  # noqa: S107 - the variable's name, not a token
    ) -> None:
        self.source = GitSource(url, Path(tempfile.gettempdir()), branch, path, token_env)

    def commit(
        self,
        message: str,
        edit: Edit,
        push: bool,
        attempts: int = 3,
        author: tuple[str, str] | None = None,
    ) -> Commit:
        src = self.source
        env = {**os.environ, **src._env_for(Path(tempfile.mkdtemp(prefix="gitops-askpass-")))}
        secrets = (os.environ.get(src.token_env, ""),)
        name, email = author or ("gitops", "gitops@localhost")
        actor = git.Actor(name, email)
        with tempfile.TemporaryDirectory(prefix="gitops-commit-") as tmp:
            for attempt in range(attempts):
                work = Path(tmp) / f"w{attempt}"
                try:
                    repo = git.Repo.clone_from(src._remote_url(), work, branch=src.branch, env=env)
                except git.exc.GitError as exc:
                    raise SourceUnavailable(
                        f"cannot clone {src.display_url}: {redact(str(exc), secrets)}"
                    ) from exc
                head = repo.head.commit.hexsha

                def files_at(commit: str, repo: git.Repo = repo) -> dict[str, bytes]:
                    return dict(_files(repo.commit(commit), src.path).files)

                changed = edit(work, files_at)
                if not changed or not repo.is_dirty(untracked_files=True):
                    raise NothingToChange("nothing to change: the repository already says so")
                repo.index.add(changed)
                repo.index.commit(message, author=actor, committer=actor)
                diff = repo.git.show("--stat", "--patch", "--format=commit %H%n%n%B", "HEAD")
                sha = repo.head.commit.hexsha
                if not push:
                    return Commit(sha, diff, False, head)
                try:
                    repo.git.push("origin", f"HEAD:refs/heads/{src.branch}", env=env)
                except git.exc.GitCommandError as exc:
                    text = str(exc)
                    if any(w in text for w in ("rejected", "non-fast-forward", "fetch first")):
                        log.info("push of %s lost a race; retrying on a fresh clone", sha[:12])
                        continue
                    raise SourceUnavailable(
                        f"cannot push to {src.display_url}: {redact(text, secrets)}"
                    ) from exc
                return Commit(sha, diff, True, head)
        raise SourceUnavailable(
            f"push to {src.display_url} rejected {attempts} times (busy branch)"
        )


class _CommitTree:
    """One commit's tree under a sub-path, as ``gitops.manifests.files`` reads a tree: names,
    sizes and links from the tree objects; a blob's bytes only when asked."""

    def __init__(self, tree: git.Tree, sub_path: str, whole: git.Tree | None = None) -> None:
        self.tree, self.sub_path = tree, sub_path
        self.whole = whole if whole is not None else tree
        self._blobs: dict[str, git.Blob] = {}

    def context(self) -> tuple[_CommitTree, str]:
        """The commit's whole tree and where this one is in it: a kustomization may use bases
        outside the sub-path (``../base``)."""
        return _CommitTree(self.whole, ""), self.sub_path

    def _relative(self, path: str) -> str:
        return path[len(self.sub_path) + 1 :] if self.sub_path else path

    def listing(self) -> Iterator[TreeItem]:
        for item in self.tree.traverse():
            if not isinstance(item, git.Blob):
                continue
            rel = self._relative(str(item.path))
            self._blobs[rel] = item
            link = item.mode == _LINK_MODE
            # The size is asked of the object store only for files that may be read (every
            # file a kustomize build is given is measured by what it reads).
            size = item.size if not link and is_candidate(rel) else 0
            yield TreeItem(rel, size, link)

    def read(self, path: str) -> bytes:
        return bytes(self._blobs[path].data_stream.read())


def _files(commit: git.Commit, sub_path: str, rules: Rules | None = None) -> FileSet:
    try:
        tree = commit.tree / sub_path if sub_path else commit.tree
    except KeyError:
        return FileSet()
    return read_manifests(
        _CommitTree(tree, sub_path, commit.tree), rules or Rules(), kustomize.render
    )
