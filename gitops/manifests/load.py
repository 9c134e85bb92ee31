"""Read YAML files into raw documents, each tagged with its file and document index.

Stage: manifests, second step. In: ``{relative path: bytes}`` of one commit (``gitops.manifests.
files`` chose them). Out: ``RawDoc`` values and, for what cannot be read, ``FieldError``s.
Errors never stop the scan: every file is read so that every error is reported at once.

Any bytes give documents or errors, never an exception. The YAML is read as ``kubectl`` reads
it: libyaml's parser where PyYAML has it (it takes the trailing tabs the pure-Python scanner
refuses, and is several times faster), YAML 1.1 scalars, merge keys (``<<``) with explicit keys
winning, duplicate keys refused. Before anything is built, one walk over the composed nodes
bounds the nesting depth and what aliases would expand to, and refuses an alias inside the
value it names, so a hostile file can neither exhaust the stack nor grow a small file into a
huge tree (libyaml's parser stops at 1,000 levels itself, so composing cannot go deep). A
syntax error gives line, column and the problem, never the text around it (which may hold a
Secret's value).

What the API server would read is what comes out: a ``null`` field is an absent one (as
``kubectl create --dry-run=client -o yaml`` writes ``creationTimestamp: null``), and a
``kind: List`` is unwrapped into its items, as ``kubectl`` unwraps it.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from gitops.errors import FieldError
from gitops.manifests.files import is_manifest_file

try:  # libyaml, as Debian's and PyPI's PyYAML ship it
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - a PyYAML built without libyaml
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

MAX_DEPTH = 100  # nested mappings and sequences; real manifests stay under 20
MAX_NODES = 1_000_000  # values a document may hold once its aliases are expanded
_MERGE = "tag:yaml.org,2002:merge"
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_SAFE_KEY = re.compile(r"[-._/a-zA-Z0-9]{1,63}")


@dataclass(frozen=True)
class RawDoc:
    path: str
    doc: int
    data: Any


class _TooLarge(Exception):
    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.mark = mark


class _Refused(yaml.constructor.ConstructorError):
    """A rule of ours (its message quotes nothing but a key name that passed ``_SAFE_KEY``)."""


class _StrictLoader(_BaseLoader):
    """A safe loader that refuses duplicate and unhashable mapping keys, as ``kubectl`` does."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:
                continue  # merged keys may be overridden by explicit ones
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable) or isinstance(key, list | dict):
                raise _Refused(None, None, "a mapping key must be a scalar", key_node.start_mark)
            if key in seen:
                shown = f" {key!r}" if isinstance(key, str) and _SAFE_KEY.fullmatch(key) else ""
                first = seen[key].line + 1
                raise _Refused(
                    None,
                    None,
                    f"mapping key{shown} already defined at line {first}",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        # Python refuses to turn more than 4,300 digits into an int; say where, and why.
        if len(str(node.value)) > 64:
            raise _Refused(None, None, "integer too large", node.start_mark)
        return super().construct_yaml_int(node)


# YAML 1.1 timestamps stay strings, as kubectl reads them (an annotation "2024-01-01" is text).
def _timestamp(loader: _StrictLoader, node: yaml.Node) -> Any:
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)
_StrictLoader.add_constructor("tag:yaml.org,2002:int", _StrictLoader.construct_yaml_int)


def _collections(node: yaml.Node) -> Iterator[yaml.Node]:
    """The mappings and sequences directly in ``node`` (scalars are counted, not walked)."""
    if isinstance(node, yaml.SequenceNode):
        yield from (c for c in node.value if not isinstance(c, yaml.ScalarNode))
    else:
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode):
                yield k
            if not isinstance(v, yaml.ScalarNode):
                yield v


def _bounded(root: yaml.Node) -> None:
    """Raise ``_TooLarge`` when a document nests deeper than ``MAX_DEPTH``, its aliases would
    expand it past ``MAX_NODES`` values, or an alias refers to the value it is in. Walks the
    composed nodes (an alias is the node it names, shared), before anything is built."""
    if isinstance(root, yaml.ScalarNode):
        return
    sizes: dict[int, tuple[int, int]] = {}  # collection -> (values once expanded, height)
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            open_.discard(key)
            items = len(node.value) * (2 if isinstance(node, yaml.MappingNode) else 1)
            values, height = 1 + items, 1
            for c in _collections(node):
                size, depth = sizes[id(c)]
                values += size - 1
                height = max(height, depth + 1)
            if values > MAX_NODES:
                raise _TooLarge(
                    f"the document would hold more than {MAX_NODES} values once its aliases "
                    "are expanded",
                    node.start_mark,
                )
            if height > MAX_DEPTH:
                raise _TooLarge(f"nesting deeper than {MAX_DEPTH} levels", node.start_mark)
            sizes[key] = (values, height)
        elif key not in sizes:
            if key in open_:
                raise _TooLarge("an alias refers to the value it is part of", node.start_mark)
            open_.add(key)
            stack.append((node, True))
            stack.extend((c, False) for c in _collections(node) if id(c) not in sizes)


def _docs(path: str, content: bytes) -> Iterator[RawDoc | FieldError]:
    def error(index: int, message: str) -> FieldError:
        return FieldError(path, index, "", "", message)

    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield error(0, f"not UTF-8 text: invalid byte at offset {exc.start}")
        return
    index = 0
    try:
        loader = _StrictLoader(text)
        try:
            while loader.check_node():
                node = loader.get_node()
                if node is not None:
                    _bounded(node)
                data = loader.construct_document(node)
                if data is not None:  # an empty document (a stray '---') is no resource
                    yield from _unwrapped(path, index, _without_nulls(data))
                index += 1
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        yield error(index, f"YAML syntax error: {_describe(exc)}")
    except _TooLarge as exc:
        yield error(index, f"YAML refused: {_at(exc.mark)}{exc}")
    except (ValueError, OverflowError, RecursionError, MemoryError) as exc:
        # A scalar no value fits (an integer of thousands of digits), or a tree too big.
        yield error(index, f"YAML cannot be read: {type(exc).__name__}")


def _without_nulls(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _without_nulls(v) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return [_without_nulls(v) for v in data]
    return data


def _unwrapped(path: str, index: int, data: Any) -> Iterator[RawDoc | FieldError]:
    """A ``v1`` ``List``'s items, each a document of its own (at the List's index)."""
    if not (
        isinstance(data, dict) and data.get("kind") == "List" and data.get("apiVersion") == "v1"
    ):
        yield RawDoc(path, index, data)
        return
    items = data.get("items", [])
    if not isinstance(items, list):
        yield FieldError(path, index, "List", "items", "must be a list of resources")
        return
    for item in items:
        yield RawDoc(path, index, item)


def _at(mark: Any) -> str:
    return f"line {mark.line + 1} column {mark.column + 1}: " if mark is not None else ""


def _describe(exc: yaml.YAMLError) -> str:
    """Line, column and the problem; any quoted text of the document left out."""
    if isinstance(exc, yaml.reader.ReaderError):
        return f"unacceptable character at offset {exc.position}"
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        return _at(mark) + (problem if isinstance(exc, _Refused) else _QUOTED.sub("'…'", problem))
    return _QUOTED.sub("'…'", type(exc).__name__)


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
