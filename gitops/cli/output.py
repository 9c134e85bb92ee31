"""kubectl's output forms over Kubernetes-shaped objects (``gitops.serve.objects``):
``-o name``, ``-o jsonpath=TEMPLATE``, ``-o custom-columns=HEADER:PATH,...`` and the paths
``--sort-by`` takes. A template is kubectl's: text with ``{.path}`` expressions,
``{range .items[*]}...{end}`` and ``{"literal"}``; a path's syntax is JSONPath's (filters as
``[?(@.name=="web")]``), read by jsonpath-ng."""

from __future__ import annotations

import json
import re
from typing import Any

FORMS = ("table", "wide", "json", "yaml", "name")
_TOKEN = re.compile(r"\{((?:[^{}\"]|\"(?:[^\"\\]|\\.)*\")*)\}")


def output_form(text: str) -> str:
    """An argparse type: one of ``FORMS``, ``jsonpath=...`` or ``custom-columns=...``."""
    import argparse

    head = text.partition("=")[0]
    if text in FORMS or (head in ("jsonpath", "custom-columns") and "=" in text):
        if head == "jsonpath":
            try:
                render_template(text.partition("=")[2], {})
            except ValueError as exc:
                raise argparse.ArgumentTypeError(f"jsonpath: {exc}") from exc
        return text
    raise argparse.ArgumentTypeError(
        f"{text!r}: expected one of {', '.join(FORMS)}, jsonpath=TEMPLATE or "
        "custom-columns=HEADER:PATH,..."
    )


def find(path: str, data: Any) -> list[Any]:
    """The values at a kubectl-style path (``.metadata.name``, ``{.status.phase}``)."""
    from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
    from jsonpath_ng.ext.parser import parse

    expr = path.strip()
    if expr.startswith("{") and expr.endswith("}"):
        expr = expr[1:-1].strip()
    if not expr or expr == ".":
        return [data]
    try:
        compiled = parse("$" + (expr if expr.startswith((".", "[")) else "." + expr))
    except (JsonPathLexerError, JsonPathParserError, Exception) as exc:
        raise ValueError(f"{path!r} is not a JSONPath expression: {exc}") from exc
    return [m.value for m in compiled.find(data)]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    return (
        json.dumps(value, separators=(",", ":")) if isinstance(value, dict | list) else str(value)
    )


def render_template(template: str, data: Any) -> str:
    """kubectl's ``-o jsonpath``: literal text, ``{expr}`` (several results joined by a
    space), ``{range expr}...{end}`` (the body once per result) and ``{"text"}``."""
    parts: list[tuple[str, str]] = []  # ("text", s) | ("expr", e)
    pos = 0
    for m in _TOKEN.finditer(template):
        if m.start() > pos:
            parts.append(("text", template[pos : m.start()]))
        parts.append(("expr", m.group(1).strip()))
        pos = m.end()
    if "{" in template[pos:] or "}" in template[pos:]:
        raise ValueError(f"{template!r}: an unclosed {{ or a stray }}")
    parts.append(("text", template[pos:]))
    out, _ = _render(parts, 0, data)
    return out


def _render(parts: list[tuple[str, str]], i: int, data: Any) -> tuple[str, int]:
    out = []
    while i < len(parts):
        kind, value = parts[i]
        if kind == "text":
            out.append(value.encode().decode("unicode_escape") if "\\" in value else value)
        elif value == "end":
            return "".join(out), i
        elif value.startswith("range "):
            body_start = i + 1
            end = body_start
            for item in find(value.removeprefix("range "), data):
                chunk, end = _render(parts, body_start, item)
                out.append(chunk)
            if end == body_start:  # no item: skip the body to its end
                _, end = _render(parts, body_start, {})
            i = end
        elif value.startswith('"') and value.endswith('"'):
            out.append(json.loads(value))
        else:
            out.append(" ".join(_text(v) for v in find(value, data)))
        i += 1
    return "".join(out), i


def custom_columns(spec: str, items: list[dict[str, Any]]) -> list[list[str]]:
    """The header and a row per object; a path that finds nothing shows ``<none>``."""
    columns = []
    for part in spec.split(","):
        header, colon, path = part.partition(":")
        if not colon or not header or not path:
            raise ValueError(f"custom-columns: {part!r}: expected HEADER:PATH")
        columns.append((header, path))
    rows = [[h for h, _ in columns]]
    for item in items:
        rows.append([",".join(_text(v) for v in find(p, item)) or "<none>" for _, p in columns])
    return rows


def name_of(obj: dict[str, Any]) -> str:
    """``-o name``: ``kind.group/name`` as kubectl prints it (``pod/web-x``,
    ``deployment.apps/web``)."""
    group = obj["apiVersion"].rpartition("/")[0]
    return f"{obj['kind'].lower()}{'.' + group if group else ''}/{obj['metadata']['name']}"


def sort_key(path: str) -> Any:
    def key(obj: dict[str, Any]) -> tuple[int, Any]:
        found = find(path, obj)
        value = found[0] if found else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return (0, value)
        return (1, "" if value is None else _text(value))

    return key
