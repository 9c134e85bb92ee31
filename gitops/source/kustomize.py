"""Kustomize builds, as Argo CD and Flux run them: ``kustomize build DIR``, or ``kubectl
kustomize DIR`` when only kubectl is on PATH.

The adapter of the kustomize binary (``gitops.manifests.files.Render``). A directory on disk
is built in place; a commit's whole tree (bases may lie outside the sub-path) is written to a
private temporary directory (mode 0700), bounded in size, and removed after. The build runs
with a timeout and without the network: a remote base would be fetched from the internet, so a
resource that is a URL is refused before kustomize runs, and the process gets a proxy that
refuses every connection. Kustomize's own error line is passed on (bounded): it names files
and resource ids, not their values.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from gitops.manifests.files import KUSTOMIZATION_FILES, DirectoryTree, RenderError, Tree

TIMEOUT = 60.0
MAX_TREE_BYTES = 64 * 1024 * 1024  # what one build may be given
MAX_OUTPUT_BYTES = 64 * 1024 * 1024
_KLOG = re.compile(r"^[EWI]\d{4} [\d:.]+\s+\d+ \S+\] ")
_REMOTE = re.compile(r"^\s*-\s*(?:https?://|git@|ssh://|github\.com/|gitlab\.com/)", re.M)
_OFFLINE = {
    "HTTP_PROXY": "http://127.0.0.1:9",  # discard port: nothing leaves this machine
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ALLOW_PROTOCOL": "file",
}


@functools.cache
def command() -> tuple[tuple[str, ...], str] | None:
    """The build command and what to call it in status, or None when neither is installed."""
    if shutil.which("kustomize"):
        return ("kustomize", "build"), "kustomize " + _version(["kustomize", "version"])
    if shutil.which("kubectl"):
        text = _version(["kubectl", "version", "--client"])
        found = re.search(r"Kustomize Version:\s*(\S+)", text)
        return ("kubectl", "kustomize"), f"kubectl kustomize {found[1] if found else ''}".strip()
    return None


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "(version unknown)"
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


def render(tree: Tree, directory: str) -> tuple[bytes, str]:
    found = command()
    if found is None:
        raise RenderError(
            "neither kustomize nor kubectl is installed on the reconciler's machine "
            "(scripts/host-setup installs kubectl's where the package manager has it)"
        )
    cmd, renderer = found
    if isinstance(tree, DirectoryTree):  # on disk already: built in place, bases around it
        return _build(cmd, tree.root / directory, str(tree.root)), renderer
    full, prefix = tree.context()
    with tempfile.TemporaryDirectory(prefix="gitops-kustomize-") as tmp:
        root = Path(tmp)
        _write(full, root)
        target = root / prefix / directory
        return _build(cmd, target, tmp), renderer


def _build(cmd: tuple[str, ...], target: Path, hide: str) -> bytes:
    for name in KUSTOMIZATION_FILES:
        kfile = target / name
        if kfile.is_file() and _REMOTE.search(kfile.read_text("utf-8", "replace")):
            raise RenderError(
                f"{name} uses a remote resource (a URL); gitops builds offline: vendor the "
                "base into the repository"
            )
    try:
        out = subprocess.run(
            [*cmd, str(target)],
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
            cwd=target,
            env={**os.environ, **_OFFLINE},
        )
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"timed out after {TIMEOUT:g}s") from exc
    except OSError as exc:
        raise RenderError(f"{cmd[0]} did not start: {exc.strerror}") from exc
    if out.returncode != 0:
        text = out.stderr.decode("utf-8", "replace").replace(hide + "/", "").strip()
        last = text.splitlines()[-1] if text else f"exit code {out.returncode}"
        raise RenderError(_KLOG.sub("", last)[:500])
    if len(out.stdout) > MAX_OUTPUT_BYTES:
        raise RenderError(f"the build rendered over {MAX_OUTPUT_BYTES} bytes")
    return out.stdout


def _write(tree: Tree, root: Path) -> None:
    total = 0
    for item in tree.listing():
        if item.link:
            continue  # never followed, as everywhere else
        data = tree.read(item.path)
        total += len(data)
        if total > MAX_TREE_BYTES:
            raise RenderError(f"the repository is over {MAX_TREE_BYTES} bytes to build from")
        path = root / item.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
