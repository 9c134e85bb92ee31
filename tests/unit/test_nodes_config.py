"""The node list (file and --node specs) and node health on an injected clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops.config.nodes import NodeConfigError, load_file, node_list, parse_spec
from gitops.config.settings import NodeConfig
from gitops.decide.health import NodeTracker
from gitops.nodes.base import probe_place


def test_a_file_gives_nodes_labels_reserve_tls_and_timings(tmp_path: Path) -> None:
    f = tmp_path / "gitops.yaml"
    f.write_text(
        "nodes:\n"
        "  - name: node-1\n"
        "    endpoint: tcp://10.0.0.11:2376\n"
        "    tls: {ca: /etc/ca.pem, cert: /etc/cert.pem, key: /etc/key.pem}\n"
        "    address: 10.0.0.11\n"
        "    labels: {zone: a}\n"
        "    reserve: {cpu: 500m, memory: 512Mi}\n"
        "  - name: node-2\n"
        "    endpoint: ssh://deploy@10.0.0.12\n"
        "nodeGracePeriod: 5s\nevictionTimeout: 1m\n"
    )
    nodes, timing = load_file(f)
    assert nodes[0] == NodeConfig(
        "node-1", "tcp://10.0.0.11:2376", (("zone", "a"),), "10.0.0.11",
        "/etc/ca.pem", "/etc/cert.pem", "/etc/key.pem", 500, 512 * 1024**2,
    )  # fmt: skip
    assert nodes[1].docker_host == "ssh://deploy@10.0.0.12" and nodes[1].tls_ca is None
    assert timing == {"node_grace": 5.0, "eviction_timeout": 60.0}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("nodes:\n  - name: n1\n    endpoint: http://x\n", "node n1: endpoint: Value error, must"),
        ("nodes:\n  - name: n1\n    labes: {a: b}\n", "node n1: labes: Extra inputs"),
        ("nodes:\n  - name: N_1\n", "node N_1: name: String should match pattern"),
        (
            "nodes:\n  - name: n1\n    reserve: {cpu: lots}\n",
            "node n1: reserve: quantities must match",
        ),
        ("nodes:\n  - {name: n1}\n  - {name: n1}\n", "node n1: name: given twice"),
        ("nodes: []\n", "nodes: List should have at least 1 item"),
        ("nodes:\n  - name: n1\n    probes: pod\n", "node n1: probes: Input should be 'auto'"),
        (
            "nodes:\n  - name: n1\n    endpoint: unix:///x\n    tls: {ca: a, cert: b, key: c}\n",
            "node n1: tls: only for a tcp:// endpoint",
        ),
    ],
)
def test_errors_name_the_file_the_node_and_the_field(
    tmp_path: Path, body: str, message: str
) -> None:
    f = tmp_path / "gitops.yaml"
    f.write_text(body)
    with pytest.raises(NodeConfigError) as err:
        load_file(f)
    assert str(err.value).startswith(str(f)) and message in str(err.value)


def test_a_spec_says_the_same_in_one_line() -> None:
    spec = "name=n2,endpoint=unix:///run/n2.sock,address=127.0.0.12,label.zone=b,reserve.memory=1Gi"
    node = parse_spec(spec)
    assert node == NodeConfig("n2", "unix:///run/n2.sock", (("zone", "b"),), "127.0.0.12",
                              reserve_memory=1024**3)  # fmt: skip
    assert node.probes == "auto" and parse_spec("name=n3,probes=node").probes == "node"
    with pytest.raises(NodeConfigError, match="expected key=value"):
        parse_spec("name=n2,endpoint")
    with pytest.raises(NodeConfigError, match="given twice"):
        node_list([spec, spec], None)


def test_node_health_ready_then_not_ready_then_lost() -> None:
    t = NodeTracker(grace=10, eviction=30)
    t.track("n1", 0)
    assert t.ready("n1", 5) and t.usable("n1", 5)
    t.contact("n1", 6, "connection refused")
    assert t.ready("n1", 7) and not t.usable("n1", 7)  # no new work, not NotReady yet
    assert not t.ready("n1", 10) and not t.lost("n1", 29)
    assert t.lost("n1", 30) and t.silent_for("n1", 30) == 30
    t.contact("n1", 31)
    assert t.usable("n1", 31) and not t.lost("n1", 31)


def test_probes_run_from_here_on_this_machine_only_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An engine elsewhere may give its pods addresses that a bridge here also has."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert probe_place(None, "auto") == "auto"  # the local socket
    assert probe_place("unix:///run/n2.sock", "auto") == "auto"
    assert probe_place("tcp://10.0.0.11:2376", "auto") == "node"
    assert probe_place("ssh://deploy@10.0.0.12", "auto") == "node"
    assert probe_place("tcp://10.0.0.11:2376", "here") == "here"
    assert probe_place(None, "node") == "node"
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.0.0.11:2376")
    assert probe_place(None, "auto") == "node"
