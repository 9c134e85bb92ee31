"""``-l`` label selectors, every operator, on plain label sets (as kubectl reads them)."""

from __future__ import annotations

import pytest

from gitops.model.selectors import parse

PODS = {
    "a": {"app": "web", "tier": "front", "env": "prod"},
    "b": {"app": "web", "tier": "back"},
    "c": {"app": "db", "env": "dev"},
}


@pytest.mark.parametrize(
    ("selector", "chosen"),
    [
        ("app=web", "ab"), ("app==web", "ab"), ("app!=web", "c"), ("app = web", "ab"),
        ("env in (prod, dev)", "ac"), ("env notin (prod)", "bc"), ("env", "ac"), ("!env", "b"),
        ("app=web,tier in (front,back),!env", "b"), ("app=web, env", "a"),
        ("example.com/team=x", ""), ("app=", ""),
    ],
)  # fmt: skip
def test_each_operator_chooses_as_kubernetes_does(selector: str, chosen: str) -> None:
    match = parse(selector)
    assert "".join(name for name, labels in PODS.items() if match(labels)) == chosen


@pytest.mark.parametrize("bad", ["", ",", "app in ()", "app in (a", "app=>b", "=web", "a b"])
def test_a_bad_selector_says_what_is_wrong(bad: str) -> None:
    with pytest.raises(ValueError):
        parse(bad)
