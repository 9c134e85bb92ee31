"""Read YAML files into raw documents, each tagged with its file and document index.

Stage: manifests, first half. In: ``{relative path: bytes}`` of one commit (already narrowed to
the configured sub-path). Out: ``RawDoc`` values and, for what cannot be read, ``FieldError``s.
Syntax errors never stop the scan: every file is read so that every error is reported at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gitops.errors import FieldError

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class RawDoc:
    path: str
    doc: int
    data: Any


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys, as ``kubectl`` does."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"mapping key {key!r} already defined", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def is_manifest_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return path.endswith(MANIFEST_SUFFIXES) and not name.startswith(".")


def _docs(path: str, content: bytes) -> Iterator[RawDoc | FieldError]:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield FieldError(path, 0, "", "", f"not UTF-8 text: {exc}")
        return
    index = 0
    loader = _StrictLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            data = loader.construct_document(node)
            if data is not None:  # an empty document (a stray '---') is no resource
                yield RawDoc(path, index, data)
            index += 1
    except yaml.YAMLError as exc:
        yield FieldError(path, index, "", "", f"YAML syntax error: {_describe(exc)}")
    finally:
        loader.dispose()


def _describe(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"line {mark.line + 1} column {mark.column + 1}: {exc.problem}"
    return str(exc).replace("\n", " ")


def load_documents(files: Mapping[str, bytes]) -> tuple[list[RawDoc], list[FieldError]]:
    docs: list[RawDoc] = []
    errors: list[FieldError] = []
    for path in sorted(files):
        if not is_manifest_file(path):
            continue
        for item in _docs(path, files[path]):
            if isinstance(item, RawDoc):
                docs.append(item)
            else:
                errors.append(item)
    return docs, errors


def read_manifest_files(root: Path) -> dict[str, bytes]:
    """The manifest files under ``root`` (a checkout or a plain directory), by relative path."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.parts and is_manifest_file(str(p.relative_to(root)))
    }
