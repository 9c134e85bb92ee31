"""Changes to git the GitOps way, as the CLI (``rollout undo|restart|pause|resume``, ``set
image``, ``scale``) and the dashboard make them: a ``Change`` is a commit's subject, body and an
``Edit`` of the work tree, which ``GitWriter`` commits and pushes. The reconciler then deploys
the commit like any other; nothing here touches an engine.

Where the change comes from is the caller's: the CLI asks the API for the rollout history, the
dashboard reads it in-process; ``undo_target`` decides on the rows alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops.errors import GitopsError, PermanentError
from gitops.manifests import edit as yedit
from gitops.manifests.files import read_directory
from gitops.source.git import Edit

VERBS: Mapping[str, tuple[str, ...]] = {
    "Deployment": ("restart", "pause", "resume", "undo"),
    "StatefulSet": ("restart", "undo"),  # Kubernetes has no spec.paused for these
    "DaemonSet": ("restart", "undo"),
}
RESTARTED_AT = "gitops.io/restartedAt"  # as kubectl's kubectl.kubernetes.io/restartedAt


class NoSuchChange(PermanentError):
    """The change cannot be made: no such verb for the kind, revision or earlier commit."""


@dataclass(frozen=True)
class Change:
    subject: str
    body: str
    edit: Edit

    @property
    def message(self) -> str:
        return f"{self.subject}\n\n{self.body}"


def set_in(key: yedit.Key, root: Path, path: str, change: Callable[[Any], None]) -> list[str]:
    """Apply ``change`` to the one document ``key`` names, round-trip (comments and order kept);
    the paths changed (none when the file already says so)."""
    base = root / path if path else root
    current = dict(read_directory(base).files)
    where = yedit.locate(current, key)
    if where is None:
        raise GitopsError(f"{key[0]} {key[1]}/{key[2]} not found in the repository")
    text = (base / where[0]).read_text()
    new = yedit.edit(text, where[1], change)
    if new == text:
        return []
    (base / where[0]).write_text(new)
    return [str(Path(path) / where[0]) if path else where[0]]


def restore(
    key: yedit.Key,
    target: str,
    root: Path,
    path: str,
    files_at: Callable[[str], dict[str, bytes]],
) -> list[str]:
    """Write the workload and the ConfigMaps and Secrets it references, as of ``target``, into
    the work tree; a reference absent then (optional) leaves today's as it is."""
    old = files_at(target)
    where = yedit.locate(old, key)
    if where is None:
        raise NoSuchChange(f"{key[0]} {key[1]}/{key[2]} does not exist in commit {target[:12]}")
    base = root / path if path else root
    current = dict(read_directory(base).files)
    workload = yedit.document(old[where[0]].decode(), where[1])
    changed: list[str] = []
    for k in sorted({key} | yedit.references(workload)):
        src = yedit.locate(old, k)
        if src is None:
            continue
        doc = yedit.document(old[src[0]].decode(), src[1])
        dst = yedit.locate(current, k)
        rel = dst[0] if dst else src[0]
        text = (base / rel).read_text() if (base / rel).exists() else None
        new = yedit.put(text, dst[1] if dst else None, doc)
        if new != text:
            (base / rel).parent.mkdir(parents=True, exist_ok=True)
            (base / rel).write_text(new)
            current[rel] = new.encode()
            changed.append(str(Path(path) / rel) if path else rel)
    return changed


def undo_target(
    rows: Sequence[Mapping[str, Any]],
    what: str,
    to_revision: int | None = None,
    to_commit: str = "",
) -> tuple[str, str]:
    """(commit to restore, commit being replaced) from ``what``'s rollout history (``kind
    namespace/name``), newest first, as
    ``rollout undo`` means it: the given revision or commit, else the last completed revision
    with another template. After a rollback by the reconciler, git still asks for the failed
    template while the older one runs: undo brings git in line with what runs."""
    if to_commit:
        return to_commit, ""
    if not rows:
        raise NoSuchChange(f"no rollout of {what} is recorded")
    current = rows[0]
    if to_revision is None and str(current["reason"]).startswith("rollback of"):
        failed = next((r for r in rows[1:] if r["result"] == "Failed"), None)
        return str(current["commit"]), str(failed["commit"]) if failed else ""
    if to_revision is not None:
        found = [r for r in rows if r["revision"] == to_revision]
        if not found:
            raise NoSuchChange(f"revision {to_revision} not found (see `gitops rollout history`)")
        return str(found[0]["commit"]), str(current["commit"])
    for r in rows[1:]:
        if r["result"] == "Complete" and r["template_hash"] != current["template_hash"]:
            return str(r["commit"]), str(current["commit"])
    raise NoSuchChange("no earlier revision completed: nothing to roll back to")


def rollout(
    verb: str,
    key: yedit.Key,
    path: str,
    now: str,
    made_with: str,
    target: str = "",
    replaced: str = "",
    note: str = "",
) -> Change:
    """The commit of ``rollout VERB`` for the workload ``key``: ``now`` (RFC 3339) is the
    restart's stamp, ``target`` and ``replaced`` an undo's commits (``undo_target``),
    ``made_with`` says who made it (``gitops rollout undo``, ``the gitops dashboard``)."""
    kind, namespace, name = key
    if verb not in VERBS.get(kind, ()):
        if verb in ("pause", "resume"):
            raise NoSuchChange(f"a {kind} cannot be paused (Kubernetes has no such field)")
        raise NoSuchChange(f"a {kind} has no rollout {verb[:20]}")
    what = f"{kind.lower()} {namespace}/{name}"
    lines: list[str] = []
    if verb == "undo":
        if not target:
            raise NoSuchChange("undo: no commit to restore")
        subject = f"Roll back {what} to {target[:12]}"
        lines.append(
            f"Restore {kind} {namespace}/{name} and the ConfigMaps and Secrets it uses as they "
            f"were in commit {target}"
            + (f", replacing the version from commit {replaced}." if replaced else ".")
        )

        def edit(root: Path, files_at: Callable[[str], dict[str, bytes]]) -> list[str]:
            return restore(key, target, root, path, files_at)
    else:

        def mutate(doc: Any) -> None:
            spec = doc.setdefault("spec", {})
            if verb == "restart":
                meta = spec.setdefault("template", {}).setdefault("metadata", {})
                meta.setdefault("annotations", {})[RESTARTED_AT] = now
            elif verb == "pause":
                spec["paused"] = True
            elif spec.get("paused"):  # resuming what runs unpaused changes nothing
                spec["paused"] = False

        subject = {"restart": f"Restart {what}", "pause": f"Pause rollout of {what}",
                   "resume": f"Resume rollout of {what}"}[verb]  # fmt: skip

        def edit(root: Path, files_at: Callable[[str], dict[str, bytes]]) -> list[str]:
            return set_in(key, root, path, mutate)

    if note:
        lines.append(note)
    lines.append(f"Made-with: {made_with}")
    return Change(subject, "\n\n".join(lines), edit)
