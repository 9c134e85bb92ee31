"""Kubernetes' own OpenAPI schemas: the catalogue of kinds, and strict checks of the documents
of kinds gitops does not run.

Stage: manifests. The schemas are those ``kubectl`` validates against, as bundled (converted to
JSON Schema, strict: unknown fields refused) by the ``kubernetes-validate`` package; only its
data is used, read once per process. Hand-written models exist only for the kinds gitops runs
(``gitops.manifests.model``); every other kind is still checked field by field here, so a typo
in a Role is found at commit time as ``kubectl apply`` would find it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import jsonschema
from referencing import Registry, Resource

_PACKAGE = "kubernetes_validate"


@cache
def _schema_dir() -> Traversable:
    """The newest strict schema set the installed package carries."""
    root = resources.files(_PACKAGE).joinpath("kubernetes-json-schema")
    dirs = [p.name for p in root.iterdir() if p.name.endswith("-local-strict")]

    def version(name: str) -> tuple[int, ...]:
        return tuple(int(x) for x in name[1:].split("-", maxsplit=1)[0].split("."))

    return root.joinpath(max(dirs, key=version))


def kubernetes_version() -> str:
    """The Kubernetes release whose schemas are used, for example ``1.35``."""
    name = _schema_dir().name
    return ".".join(name[1:].split("-")[0].split(".")[:2])


@cache
def _definitions() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_schema_dir().joinpath("_definitions.json").read_text())
    return data


def api_version(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


@cache
def catalogue() -> Mapping[str, tuple[str, ...]]:
    """Every top-level kind Kubernetes serves, with the apiVersions it is served as."""
    out: dict[str, list[str]] = {}
    for definition in _definitions()["$defs"].values():
        props = definition.get("properties", {})
        if "metadata" not in props or "apiVersion" not in props:
            continue  # a part of an object, or a list
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            if gvk["kind"].endswith("List"):
                continue
            out.setdefault(gvk["kind"], []).append(api_version(gvk["group"], gvk["version"]))
    return {kind: tuple(versions) for kind, versions in out.items()}


@cache
def _registry() -> Registry[Any]:
    # The per-kind schemas refer to "/api/_definitions.json#/$defs/...".
    registry: Registry[Any] = Registry().with_resource(
        "/api/_definitions.json", Resource.from_contents(_definitions())
    )
    return registry


def _file_name(kind: str, api: str) -> str:
    # kubernetes-validate's names: "role-rbac-v1.json", "serviceaccount-v1.json".
    group, _, version = api.rpartition("/")
    prefix = f"{group.split('.')[0]}-" if group else ""
    return f"{kind.lower()}-{prefix}{version}.json"


@cache
def _validator(kind: str, api: str) -> jsonschema.protocols.Validator | None:
    ref = _schema_dir().joinpath(_file_name(kind, api))
    if not ref.is_file():
        return None
    schema = json.loads(ref.read_text())
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator: jsonschema.protocols.Validator = cls(schema, registry=_registry())
    return validator


def has_schema(kind: str, api: str) -> bool:
    return _validator(kind, api) is not None


def check(data: Mapping[str, Any]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every way ``data`` departs from its kind's schema, as (field path, message). The
    messages never quote the document's values: they may be anything, a secret among them."""
    validator = _validator(str(data.get("kind")), str(data.get("apiVersion")))
    if validator is None:
        return
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path))):
        yield from _explain(error)


def _explain(error: jsonschema.ValidationError) -> Iterator[tuple[tuple[str | int, ...], str]]:
    path = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind = error.validator
    value = error.validator_value
    values: list[Any] = list(value) if isinstance(value, list | tuple) else [value]
    if kind == "additionalProperties":
        allowed = set(schema.get("properties", {}))
        instance = error.instance if isinstance(error.instance, dict) else {}
        for key in sorted(set(instance) - allowed):
            yield (*path, key), "unknown field"
    elif kind == "required":
        instance = error.instance if isinstance(error.instance, dict) else {}
        for key in values:
            if key not in instance:
                yield (*path, key), "required field is missing"
    elif kind == "type":
        shown = " or ".join(str(n) for n in values if n != "null")
        yield path, f"must be of type {shown}"
    elif kind == "enum":
        yield path, "must be one of " + ", ".join(repr(v) for v in values)
    elif kind == "format":
        yield path, f"must be in {value} format"
    else:
        yield path, f"does not satisfy the schema's {kind!s} rule"
