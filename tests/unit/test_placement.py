"""Scheduling fields on plain data, through the real scheduler: required and preferred node
affinity, pod anti-affinity and affinity on the node topology, topology spread, taints and
tolerations, each refusing with kube-scheduler's words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gitops.config.nodes import NodeConfigError, load_file, parse_spec
from gitops.decide.affinity import Placed
from gitops.decide.desired import build_desired
from gitops.decide.schedule import NodeView, Scheduler
from gitops.manifests import parse_manifests
from gitops.model.templates import PodTemplate
from tests.helpers import deployment, dump

NODES_ZONE = {"a": "z1", "b": "z1", "c": "z2"}
NODES = [
    NodeView("a", {"zone": "z1", "disk": "ssd"}),
    NodeView("b", {"zone": "z1"}),
    NodeView("c", {"zone": "z2"}, taints=(("gpu", "true", "NoSchedule"),)),
]


def _template(name: str = "web", **pod: Any) -> PodTemplate:
    files = {"d.yaml": dump(deployment(name, namespace="demo", pod=pod))}
    return build_desired(parse_manifests(files), "c").deployments[0].template


def _place(template: PodTemplate, times: int, nodes: list[NodeView] = NODES) -> list[str]:
    scheduler = Scheduler(nodes)
    out = []
    for _ in range(times):
        where = scheduler.place(template, {})
        out.append(where if isinstance(where, str) else where.reason)
    return out


def _expr(key: str, op: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": op, "values": list(values)}


def test_required_and_preferred_node_affinity() -> None:
    required = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [_expr("zone", "In", "z1")]}]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 50, "preference": {"matchExpressions": [_expr("disk", "Exists")]}}
            ],
        }
    }
    assert _place(_template(affinity=required), 3) == ["a", "a", "a"]  # preferred wins the score
    nowhere = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchFields": [_expr("metadata.name", "In", "zz")]}]
            }
        }
    }
    [reason] = _place(_template(affinity=nowhere), 1)
    assert reason == (
        "0/3 nodes are available: 2 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) had untolerated taint {gpu: true}."
    )


def test_anti_affinity_puts_one_replica_per_node_and_affinity_follows_a_pod() -> None:
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": {"app": "web"}},
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        }
    }
    tolerate = [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]
    placed = _place(_template(affinity=anti, tolerations=tolerate), 4)
    assert sorted(placed[:3]) == ["a", "b", "c"]
    assert "node(s) didn't match pod anti-affinity rules" in placed[3]
    by_zone = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "zone"}
            ]
        }
    }
    assert _place(_template(affinity=by_zone, tolerations=tolerate), 3)[:2] in (
        ["a", "c"],
        ["b", "c"],
        ["c", "a"],
        ["c", "b"],
    )
    # A cache pod runs on b; the web pods must share its zone (z1): a or b, never c.
    scheduler = Scheduler(NODES)
    cache = _template("cache")
    scheduler.add("b", (0, 0), Placed("b", "demo", {"app": "cache"}))
    with_cache = {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "cache"}}, "topologyKey": "zone"}
            ]
        }
    }
    web = _template(affinity=with_cache, tolerations=tolerate)
    assert {scheduler.place(web, {}) for _ in range(4)} <= {"a", "b"}
    assert cache.placement is None


def test_topology_spread_keeps_the_skew_and_taints_keep_pods_off() -> None:
    spread = [
        {
            "maxSkew": 1,
            "topologyKey": "zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "web"}},
        }
    ]
    tolerate = [{"key": "gpu", "operator": "Equal", "value": "true"}]
    placed = _place(_template(topologySpreadConstraints=spread, tolerations=tolerate), 4)
    zones = [{"a": "z1", "b": "z1", "c": "z2"}[n] for n in placed]
    assert zones.count("z1") == 2 and zones.count("z2") == 2
    assert "c" not in _place(_template(), 5)  # untolerated NoSchedule taint
    soft = [NodeView("a", taints=(("gpu", "true", "PreferNoSchedule"),)), NodeView("b")]
    assert _place(_template(), 2, soft) == ["b", "b"]  # a PreferNoSchedule taint: elsewhere first
    tolerant = _template(tolerations=[{"operator": "Exists"}])  # tolerates every taint
    assert _place(tolerant, 3)[2] == "c"


def test_taints_come_from_the_node_configuration(tmp_path: Path) -> None:
    assert parse_spec("name=n1,endpoint=unix:///x.sock").taints == ()
    config = tmp_path / "nodes.yaml"
    config.write_text(
        "nodes:\n  - name: gpu-1\n    taints: [{key: gpu, value: 'true', effect: NoSchedule}]\n"
    )
    (node,), _ = load_file(config)
    assert node.taints == (("gpu", "true", "NoSchedule"),)
    config.write_text("nodes:\n  - name: gpu-1\n    taints: [{key: gpu, effect: Sometimes}]\n")
    with pytest.raises(NodeConfigError, match=r"node gpu-1: taints\.0\.effect"):
        load_file(config)


def test_a_node_selector_may_name_the_hostname_label() -> None:
    only_b = _template(nodeSelector={"kubernetes.io/hostname": "b"})
    assert _place(only_b, 2) == ["b", "b"]
