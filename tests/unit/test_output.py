"""kubectl's output forms on plain objects: jsonpath templates (range, literals, filters),
custom columns, -o name and --sort-by keys."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from gitops.cli.output import custom_columns, name_of, output_form, render_template, sort_key

PODS: dict[str, Any] = {"apiVersion": "v1", "kind": "List", "items": [
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-b", "labels": {"app": "web"}},
     "spec": {"nodeName": "n2"}, "status": {"phase": "Running", "containerStatuses": [
         {"name": "web", "restartCount": 3, "ready": True}]}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-a", "labels": {}},
     "spec": {"nodeName": "n1"}, "status": {"phase": "Pending", "containerStatuses": []}},
]}  # fmt: skip


@pytest.mark.parametrize(
    ("template", "shown"),
    [
        ("{.items[*].metadata.name}", "web-b web-a"),
        ("{.items[0].status.containerStatuses[0].restartCount}", "3"),
        ('{range .items[*]}{.metadata.name}{"\\t"}{.spec.nodeName}{"\\n"}{end}',
         "web-b\tn2\nweb-a\tn1\n"),
        ("{range .items[*]}{.metadata.name}:{.status.phase} {end}", "web-b:Running web-a:Pending "),
        ('{.items[?(@.spec.nodeName=="n1")].metadata.name}', "web-a"),
        ("names: {.items[*].metadata.name}\\n", "names: web-b web-a\n"),
        ("{.items[0].status.containerStatuses[0].ready}", "true"),
        ("{.items[5].metadata.name}", ""),
    ],
)  # fmt: skip
def test_jsonpath_templates_as_kubectl_renders_them(template: str, shown: str) -> None:
    assert render_template(template, PODS) == shown


def test_custom_columns_name_and_sort() -> None:
    rows = custom_columns("NAME:.metadata.name,NODE:.spec.nodeName,APP:.metadata.labels.app",
                          PODS["items"])  # fmt: skip
    assert rows == [["NAME", "NODE", "APP"], ["web-b", "n2", "web"], ["web-a", "n1", "<none>"]]
    assert [name_of(p) for p in PODS["items"]] == ["pod/web-b", "pod/web-a"]
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}
    assert name_of(deploy) == "deployment.apps/web"
    ordered = sorted(PODS["items"], key=sort_key(".metadata.name"))
    assert [p["metadata"]["name"] for p in ordered] == ["web-a", "web-b"]
    with pytest.raises(ValueError, match="HEADER:PATH"):
        custom_columns("NAME", PODS["items"])


@pytest.mark.parametrize("bad", ["xml", "jsonpath={.items[", "custom-columns"])
def test_an_unknown_output_form_is_refused(bad: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        output_form(bad)
