"""Raw documents -> a validated ``Manifests`` set, or one ``ManifestError`` naming every fault.

Stage: manifests, second half. In: ``RawDoc``s. Out: ``Manifests`` (immutable, every resource
with its origin, and the warnings about fields it ignores) or ``ManifestError`` listing every
problem as ``file:doc: Kind/name: field.path: message``. Each document is parsed alone
(``gitops.manifests.documents``), then the rules relating resources run over all of them
(``gitops.manifests.checks``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from gitops.errors import FieldError, ManifestError
from gitops.manifests import ignored
from gitops.manifests.checks import semantic_errors
from gitops.manifests.documents import parse, related
from gitops.manifests.entries import Entry, Manifests, Policy
from gitops.manifests.load import load_documents


def _qualified(entry: Entry[Any]) -> str:
    return f"{entry.namespace}/{entry.name}" if entry.namespace else entry.name


def parse_manifests(
    files: Mapping[str, bytes],
    problems: Sequence[FieldError] = (),
    policy: Policy | None = None,
    renderer: str = "",
) -> Manifests:
    """Validate one commit's files (``problems``: files that could not be read, see
    ``gitops.manifests.files``). Raises ``ManifestError`` with every problem found."""
    policy = policy or Policy()
    docs, load_errors = load_documents(files)
    errors: list[FieldError] = [*problems, *load_errors]
    entries: list[Entry[Any]] = []
    mended: dict[int, tuple[str, ...]] = {}  # id(entry) -> paths mended, for mended entries
    seen: dict[tuple[str, str, str], Entry[Any]] = {}
    for doc in docs:
        parsed = parse(doc, policy)
        errors.extend(parsed.errors)
        entry = parsed.entry
        if entry is None:
            continue
        if parsed.errors:
            mended[id(entry)] = parsed.mended
            if related("metadata.name", parsed.mended) or related(
                "metadata.namespace", parsed.mended
            ):
                entries.append(entry)  # a placeholder name: no duplicate of anything
                continue
        first = seen.setdefault(entry.key, entry)
        if first is not entry:
            errors.append(
                FieldError(
                    entry.path,
                    entry.doc,
                    entry.display,
                    "metadata.name",
                    f"duplicate {entry.resource.kind} {_qualified(entry)}, "
                    f"first defined at {first.path}:{first.doc}",
                )
            )
            continue
        entries.append(entry)
    manifests = Manifests(tuple(entries))
    by_origin = {(e.path, e.doc): mended[id(e)] for e in entries if id(e) in mended}
    for found in semantic_errors(manifests, policy):
        paths = by_origin.get((found.path, found.doc))
        if paths is None or not related(found.field, paths):
            errors.append(found)
    if errors:
        raise ManifestError(errors)
    return replace(manifests, warnings=ignored.warnings(manifests), renderer=renderer)
