"""What is left of a document the models refused, so that every check still runs on it.

Stage: manifests, inside validation. In: a raw document and the errors pydantic found in it.
Out: a copy in which each refused value is taken out (so its default applies) and each missing
required one is filled with a placeholder of its type, plus the paths so repaired; or None when
no copy validates. ``gitops.manifests.validate`` runs the checks that relate fields and
resources (a probe's port name, a nodePort used twice, a reference to a Secret) on that copy,
so one run reports every error of a commit instead of one stage at a time. The copy is never
applied: a commit with any error is refused.
"""

from __future__ import annotations

import copy
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

Loc = tuple[str | int, ...]
MAX_ROUNDS = 8


def clean_loc(loc: Sequence[str | int]) -> Loc:
    """A pydantic location without its union and validator steps: the manifest's own path."""
    return tuple(
        p
        for p in loc
        if not (isinstance(p, str) and (p.startswith("[") or p.startswith("function-")))
    )


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = options[0]
        else:
            return annotation


def _field(model: type[BaseModel], key: str) -> Any:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info.annotation
    return None


def _annotation_at(model: type[BaseModel], loc: Loc) -> Any:
    annotation: Any = model
    for part in loc:
        annotation = _unwrap(annotation)
        origin = typing.get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            annotation = _field(annotation, str(part))
        elif origin is list:
            annotation = typing.get_args(annotation)[0]
        elif origin is dict:
            annotation = typing.get_args(annotation)[1]
        else:
            return None
        if annotation is None:
            return None
    return _unwrap(annotation)


def _placeholder(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return typing.get_args(annotation)[0]
    if origin is list or annotation is list:
        return []
    if origin is dict or annotation is dict:
        return {}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return {}
    if annotation is int:
        return 1
    if annotation is bool:
        return False
    return "placeholder"  # a valid name, image, key or path


def _parent(data: Any, loc: Loc) -> Any:
    for part in loc:
        in_map = isinstance(data, Mapping) and part in data
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not (in_map or in_list):
            return None
        data = data[part]
    return data


def _repair(model: type[BaseModel], data: Any, error: Mapping[str, Any]) -> Loc | None:
    """Mend one error in place; the path mended, or None when it cannot be."""
    loc = clean_loc(error["loc"])
    if error["type"] == "missing":
        parent = _parent(data, loc[:-1])
        if not isinstance(parent, dict) or not loc:
            return None
        parent[loc[-1]] = _placeholder(_annotation_at(model, loc))
        return loc
    while loc and isinstance(loc[-1], int):
        # A bad item: the item's own value cannot simply go (the indexes after it would
        # move), so its parent value is mended instead.
        loc = loc[:-1]
    if not loc:
        return None
    parent = _parent(data, loc[:-1])
    if isinstance(parent, dict) and loc[-1] in parent:
        del parent[loc[-1]]
        return loc
    return None


def repaired(model: type[BaseModel], data: Any, exc: ValidationError) -> tuple[Any, set[Loc]]:
    """A validated model of what is left of ``data``, and the paths mended; (None, ...) when
    the document cannot be mended."""
    work = copy.deepcopy(data)
    mended: set[Loc] = set()
    errors = exc.errors()
    for _ in range(MAX_ROUNDS):
        for error in errors:
            loc = _repair(model, work, error)
            if loc is None:
                return None, mended
            mended.add(loc)
        try:
            return model.model_validate(work), mended
        except ValidationError as again:
            errors = again.errors()
    return None, mended
