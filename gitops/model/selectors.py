"""Kubernetes label selectors as ``-l`` and ``labelSelector`` take them: ``k=v``, ``k==v``,
``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k`` (exists) and ``!k`` (does not exist),
comma-joined (every requirement must hold). Pure; ``ValueError`` names what is wrong."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

Requirement = Callable[[Mapping[str, str]], bool]
_KEY = r"(?:[A-Za-z0-9.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET = re.compile(rf"\s*(?P<key>{_KEY})\s+(?P<op>in|notin)\s+\((?P<values>[^()]*)\)\s*")
_EQ = re.compile(rf"\s*(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>{_VALUE})\s*")
_EXISTS = re.compile(rf"\s*(?P<neg>!?)\s*(?P<key>{_KEY})\s*")


def parse(text: str) -> Callable[[Mapping[str, str]], bool]:
    """A matcher of label sets for the selector ``text``."""
    reqs = [_requirement(part) for part in _split(text)]
    return lambda labels: all(r(labels) for r in reqs)


def _split(text: str) -> list[str]:
    """Commas outside parentheses separate requirements."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    if depth != 0:
        raise ValueError(f"{text!r}: unbalanced parentheses")
    if not any(p.strip() for p in parts):
        raise ValueError("an empty selector")
    return parts


def _requirement(part: str) -> Requirement:
    if m := _SET.fullmatch(part):
        key, values = m["key"], {v.strip() for v in m["values"].split(",") if v.strip()}
        if not values:
            raise ValueError(f"{part.strip()!r}: {m['op']} needs at least one value")
        if m["op"] == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if m := _EQ.fullmatch(part):
        key, value = m["key"], m["value"]
        if m["op"] == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if m := _EXISTS.fullmatch(part):
        key, negated = m["key"], bool(m["neg"])
        return lambda labels: (key in labels) != negated
    raise ValueError(f"{part.strip()!r} is not a label selector requirement (k=v, k!=v, "
                     "k in (a,b), k notin (a,b), k, !k)")  # fmt: skip
