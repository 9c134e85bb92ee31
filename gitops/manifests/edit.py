"""Edit manifest files in place, keeping comments and layout (ruamel round-trip). Pure.

In: file text and a document index (as ``gitops.manifests.load`` counts them). Out: new text.
Used by commands that change git on the user's behalf (``rollout undo``, ``restart``,
``pause``, ``resume``), so their commits read like a person's: only the touched fields differ.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping
from typing import Any

from ruamel.yaml import YAML

from gitops.manifests.entries import DEFAULT_NAMESPACE
from gitops.manifests.load import load_documents

Key = tuple[str, str, str]  # kind, namespace ("" for a Namespace), name


_KEY_LINE = re.compile(r"^(\s*)(?:- )?[^\s#-][^:#]*:\s*(#.*)?$")
_DASH_LINE = re.compile(r"^(\s*)- ")


def guess_indent(text: str) -> tuple[int, int]:
    """(mapping indent, dash offset) as the file writes them; Kubernetes' usual (2, 2) else."""
    mapping = offset = None
    parent: int | None = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        dash = _DASH_LINE.match(line)
        if dash and parent is not None and offset is None:
            offset = len(dash.group(1)) - parent
        elif mapping is None and parent is not None and indent > parent and not dash:
            mapping = indent - parent
        key = _KEY_LINE.match(line)
        parent = (indent + (2 if dash else 0)) if key and line.rstrip().endswith(":") else None
        if mapping is not None and offset is not None:
            break
    return mapping or 2, 2 if offset is None else max(offset, 0)


def _yaml(text: str) -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    mapping, offset = guess_indent(text)  # keep the file's own layout
    y.indent(mapping=mapping, sequence=offset + 2, offset=offset)
    return y


def key_of(data: Any) -> Key | None:
    if not isinstance(data, Mapping) or not isinstance(data.get("kind"), str):
        return None
    meta = data.get("metadata")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
        return None
    kind = str(data["kind"])
    namespace = "" if kind == "Namespace" else str(meta.get("namespace") or DEFAULT_NAMESPACE)
    return kind, namespace, str(meta["name"])


def locate(files: Mapping[str, bytes], key: Key) -> tuple[str, int] | None:
    docs, _ = load_documents(files)
    return next(((d.path, d.doc) for d in docs if key_of(d.data) == key), None)


def documents(text: str) -> list[Any]:
    return list(_yaml(text).load_all(text))


def dump(text_like: str, docs: list[Any]) -> str:
    out = io.StringIO()
    _yaml(text_like).dump_all(docs, out)
    return out.getvalue()


def edit(text: str, index: int, change: Callable[[Any], None]) -> str:
    docs = documents(text)
    change(docs[index])
    return dump(text, docs)


def document(text: str, index: int) -> Any:
    return documents(text)[index]


def put(text: str | None, index: int | None, doc: Any) -> str:
    """Replace document ``index`` of ``text`` with ``doc``, or append it (index None)."""
    if not text:
        return dump("", [doc])
    docs = documents(text)
    if index is None:
        docs.append(doc)
    else:
        docs[index] = doc
    return dump(text, docs)


def references(doc: Any) -> set[Key]:
    """ConfigMaps and Secrets a Deployment document uses (env, envFrom, volumes)."""
    ns = (key_of(doc) or ("", DEFAULT_NAMESPACE, ""))[1]
    spec = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
    found: set[Key] = set()
    for c in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
        for env in c.get("env") or []:
            src = env.get("valueFrom") or {}
            if src.get("configMapKeyRef"):
                found.add(("ConfigMap", ns, src["configMapKeyRef"]["name"]))
            if src.get("secretKeyRef"):
                found.add(("Secret", ns, src["secretKeyRef"]["name"]))
        for src in c.get("envFrom") or []:
            if src.get("configMapRef"):
                found.add(("ConfigMap", ns, src["configMapRef"]["name"]))
            if src.get("secretRef"):
                found.add(("Secret", ns, src["secretRef"]["name"]))
    for vol in spec.get("volumes") or []:
        if vol.get("configMap"):
            found.add(("ConfigMap", ns, vol["configMap"]["name"]))
        if vol.get("secret"):
            found.add(("Secret", ns, vol["secret"]["secretName"]))
    return found
