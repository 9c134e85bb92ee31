"""One raw document -> a resource model, a Skipped resource, or field errors.

Stage: manifests, inside validation. The kind decides the route (``gitops.manifests.kinds``):
a kind gitops runs is built by its model (``gitops.manifests.model``), mended where it is
wrong so that the checks relating fields still run on it (``gitops.manifests.partial``); a
kind gitops skips is checked against Kubernetes' schema (``gitops.manifests.schemas``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from gitops.errors import FieldError
from gitops.manifests import kinds, quotas, schemas
from gitops.manifests import model as m
from gitops.manifests.autoscaling import HorizontalPodAutoscaler
from gitops.manifests.checks import name_problem
from gitops.manifests.entries import Entry, Policy
from gitops.manifests.load import RawDoc
from gitops.manifests.partial import clean_loc, repaired

_PRETTY = {
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
}
KINDS: dict[str, tuple[str, type[m.Resource]]] = {
    **m.KINDS, "HorizontalPodAutoscaler": ("autoscaling/v2", HorizontalPodAutoscaler),
    **quotas.KINDS,
}  # fmt: skip
RUNS = {kind: api for kind, (api, _) in KINDS.items()}  # the kinds gitops runs, and as what
# Older versions of a kind that are read as the one it runs (as the API server converts them).
ALSO = {"HorizontalPodAutoscaler": ("autoscaling/v1",)}


def field_path(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in clean_loc(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _message(err: Mapping[str, Any]) -> str:
    msg = _PRETTY.get(err["type"], err["msg"])
    return str(msg).removeprefix("Value error, ")


def _display(data: Mapping[str, Any]) -> str:
    kind = data.get("kind") if isinstance(data.get("kind"), str) else "?"
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return f"{kind}/{name if isinstance(name, str) else '<unnamed>'}"


@dataclass(frozen=True)
class Parsed:
    """A document that validated (``errors`` empty), or what is left of one that did not
    (``entry`` then holds a mended copy, or None), for the checks that relate fields."""

    entry: Entry[Any] | None
    errors: list[FieldError]
    mended: tuple[str, ...] = ()


def parse(doc: RawDoc, policy: Policy) -> Parsed:
    def err(fld: str, msg: str, res: str = "") -> Parsed:
        return Parsed(None, [FieldError(doc.path, doc.doc, res, fld, msg)])

    if not isinstance(doc.data, dict):
        return err("", f"a manifest must be a mapping, not {type(doc.data).__name__}")
    kind, api = doc.data.get("kind"), doc.data.get("apiVersion")
    res = _display(doc.data)
    if not isinstance(kind, str) or not kind:
        return err("kind", "required field is missing", res)
    if not isinstance(api, str) or not api:
        return err("apiVersion", "required field is missing", res)
    verdict = kinds.judge(kind, api, RUNS, policy.skip_api_groups, ALSO)
    if verdict.action == "error":
        return err(verdict.field, verdict.reason, res)
    if verdict.action == "skip":
        return _skipped(doc, kind, api, verdict.reason, res)
    cls = KINDS[kind][1]
    try:
        resource = cls.model_validate(doc.data)
    except ValidationError as exc:
        errors = [
            FieldError(doc.path, doc.doc, res, field_path(e["loc"]), _message(e))
            for e in exc.errors()
        ]
        _explain_generate_name(doc.data, errors)
        mended_model, mended = repaired(cls, doc.data, exc)
        paths = tuple(field_path(loc) for loc in mended)
        if mended_model is not None:
            return Parsed(Entry(doc.path, doc.doc, mended_model), errors, paths)
        # The name is checked even when the shape is wrong, so one pass reports both.
        meta = doc.data.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        problem = name_problem(kind, name) if isinstance(name, str) else None
        if problem:
            errors.append(FieldError(doc.path, doc.doc, res, "metadata.name", problem))
        return Parsed(None, errors)
    return Parsed(Entry(doc.path, doc.doc, resource), [])


def _explain_generate_name(data: Mapping[str, Any], errors: list[FieldError]) -> None:
    meta = data.get("metadata")
    if not isinstance(meta, dict) or "name" in meta or "generateName" not in meta:
        return
    for i, e in enumerate(errors):
        if e.field == "metadata.name":
            errors[i] = replace(
                e,
                message="required field is missing: generateName cannot be applied (kubectl "
                "apply refuses it too), since each pass would make a new object; give a name",
            )


def _skipped(doc: RawDoc, kind: str, api: str, reason: str, res: str) -> Parsed:
    """A kind gitops does not run: checked against Kubernetes' schema, then kept as Skipped."""
    errors = [
        FieldError(doc.path, doc.doc, res, field_path(loc), message)
        for loc, message in schemas.check(doc.data)
    ]
    meta = doc.data.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        if not any(e.field.startswith("metadata") for e in errors):
            errors.append(
                FieldError(doc.path, doc.doc, res, "metadata.name", "required field is missing")
            )
        return Parsed(None, errors)
    namespace = meta.get("namespace")
    cluster = kind in kinds.CLUSTER_SCOPED
    try:
        resource = m.Skipped(
            api_version=api,
            kind=kind,
            metadata=m.ObjectMeta(
                name=name,
                namespace=None if cluster or not isinstance(namespace, str) else namespace,
            ),
            reason=reason,
            cluster_scoped=cluster,
        )
    except ValidationError as exc:
        errors.extend(
            FieldError(doc.path, doc.doc, res, field_path(("metadata", *e["loc"][1:])), _message(e))
            for e in exc.errors()
        )
        return Parsed(None, errors)
    return Parsed(Entry(doc.path, doc.doc, resource), errors)


def _short(text: str) -> str:
    return text if len(text) <= 63 else text[:60] + "..."


def related(field: str, mended: tuple[str, ...]) -> bool:
    """Is a finding about a value that was mended, or inside or around it? Then it is a
    consequence of the mending, not news."""
    for path in mended:
        for a, b in ((field, path), (path, field)):
            if a == b or b.startswith(a + ".") or b.startswith(a + "["):
                return True
    return False
