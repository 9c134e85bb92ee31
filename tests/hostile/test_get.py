"""``gitops get`` as kubectl has it, over real sockets in front of a reconciler on the in-memory
node: Kubernetes-shaped objects (``/k8s`` paths, ``-o json|yaml``) whose field paths kubectl's
scripts use, NAME and KIND/NAME, ``-l``, ``-o name|jsonpath|custom-columns``, ``--show-labels``,
``--sort-by``, and errors in kubectl's words."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops.nodes.memory import MemoryNode
from gitops.reconciler import Reconciler
from tests.conftest import GitRemote, converge
from tests.helpers import deployment
from tests.hostile.test_front_door import IMAGE, api_of, make


@pytest.fixture
def server(remote: GitRemote, tmp_path: Path) -> Iterator[tuple[str, Reconciler]]:
    web = deployment(image=IMAGE, replicas=2)
    web["metadata"]["labels"] = {"team": "a"}
    db = deployment(name="db", image=IMAGE, replicas=1)
    db["spec"]["template"]["metadata"]["labels"] = {"app": "db", "tier": "data"}
    db["spec"]["selector"] = {"matchLabels": {"app": "db"}}
    remote.write("web.yaml", web, db)
    remote.push("web and db")
    reconciler = make(remote, tmp_path, MemoryNode("local", {IMAGE}))
    converge(reconciler)
    with api_of(reconciler) as (url, _):
        yield url, reconciler


def get(server: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gitops", "get", *args, "--server", server],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def field(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    return obj


def test_get_pods_json_has_kubernetes_field_paths(server: tuple[str, Reconciler]) -> None:
    url, reconciler = server
    shown = get(url, "pods", "-n", "demo", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    listed = json.loads(shown.stdout)
    assert (listed["apiVersion"], listed["kind"]) == ("v1", "List") and len(listed["items"]) == 3
    pod = next(p for p in listed["items"] if p["metadata"]["name"].startswith("web-"))
    live = next(p for p in reconciler.look().pods if p.name == pod["metadata"]["name"])
    expected = {
        "apiVersion": "v1", "kind": "Pod", "metadata.namespace": "demo",
        "metadata.labels.app": "web", "metadata.ownerReferences.0.kind": "Deployment",
        "metadata.ownerReferences.0.name": "web", "spec.nodeName": "local",
        "spec.containers.0.name": "web", "spec.containers.0.image": IMAGE,
        "status.phase": "Running", "status.conditions.1.type": "Ready",
        "status.containerStatuses.0.name": "web", "status.containerStatuses.0.restartCount": 0,
        "status.containerStatuses.0.state.running": {}, "status.podIP": live.ip,
    }  # fmt: skip
    for path, value in expected.items():
        assert field(pod, path) == value, path
        # ... and as a kubectl user's script reads it, with jq (scripts/host-setup has it)
        jq_path = "".join(f"[{p}]" if p.isdigit() else f'["{p}"]' for p in path.split("."))
        read = subprocess.run(["jq", "-c", f'.items[] | select(.metadata.name == "{live.name}")'
                               f" | .{jq_path}"], input=shown.stdout, capture_output=True,
                              text=True, timeout=30, check=True)  # fmt: skip
        assert json.loads(read.stdout) == value, (path, read.stdout)
    assert pod["metadata"]["annotations"]["gitops.io/commit"] == live.commit
    assert pod["metadata"]["creationTimestamp"].endswith("Z")
    assert pod["status"]["containerStatuses"][0]["containerID"].startswith("docker://")

    one = get(url, "deploy/web", "-n", "demo", "-o", "yaml")
    doc = yaml.safe_load(one.stdout)  # one object, not a List, as kubectl prints it
    assert (doc["apiVersion"], doc["kind"], doc["metadata"]["name"]) == ("apps/v1", "Deployment",
                                                                         "web")  # fmt: skip
    assert doc["spec"]["replicas"] == 2 and doc["spec"]["selector"]["matchLabels"] == {"app": "web"}
    assert doc["status"]["readyReplicas"] == 2 and doc["status"]["health"] == "Healthy"
    assert doc["metadata"]["labels"] == {"team": "a"}


def test_a_deployments_age_is_its_own_not_its_last_rollouts(
    server: tuple[str, Reconciler], remote: GitRemote
) -> None:
    url, reconciler = server

    def created() -> str:
        shown = get(url, "deploy/web", "-n", "demo", "-o", "jsonpath={.metadata.creationTimestamp}")
        return shown.stdout.strip()

    born = created()
    time.sleep(1.1)  # the next rollout's pods are a second younger at least
    web = deployment(image=IMAGE, replicas=2, container={"env": [{"name": "V", "value": "2"}]})
    web["metadata"]["labels"] = {"team": "a"}
    remote.write("web.yaml", web)
    remote.push("web v2")
    converge(reconciler)
    pods = json.loads(get(url, "pods", "-l", "app=web", "-o", "json").stdout)["items"]
    assert all(p["metadata"]["creationTimestamp"] > born for p in pods)
    assert created() == born


def test_names_selectors_and_output_forms(server: tuple[str, Reconciler]) -> None:
    url, _ = server
    names = get(url, "pods", "-n", "demo", "-o", "name").stdout.split()
    assert len(names) == 3 and all(n.startswith("pod/") for n in names)
    assert get(url, "deployments", "-o", "name").stdout.split() == [
        "deployment.apps/db", "deployment.apps/web"]  # fmt: skip
    for selector, count in [("app=db", 1), ("app!=db", 2), ("app in (web,db)", 3),
                            ("tier notin (data)", 2), ("tier", 1), ("!tier", 2)]:  # fmt: skip
        chosen = get(url, "pods", "-l", selector, "-o", "name")
        assert len(chosen.stdout.split()) == count, (selector, chosen.stdout, chosen.stderr)
    path = get(url, "pods", "-l", "app=db", "-o",
               'jsonpath={range .items[*]}{.metadata.name}{" "}{.status.phase}{"\\n"}{end}')  # fmt: skip
    assert path.returncode == 0 and path.stdout.strip().endswith(" Running"), path
    columns = get(url, "pods", "-o", "custom-columns=NAME:.metadata.name,NODE:.spec.nodeName",
                  "--sort-by", ".metadata.name")  # fmt: skip
    header, *rows = columns.stdout.splitlines()
    assert header.split() == ["NAME", "NODE"] and [r.split()[1] for r in rows] == ["local"] * 3
    assert [r.split()[0] for r in rows] == sorted(r.split()[0] for r in rows)
    labelled = get(url, "pods", "-n", "demo", "-l", "app=db", "--show-labels")
    header, row = labelled.stdout.splitlines()
    assert header.split()[-1] == "LABELS" and row.split()[-1] == "app=db,tier=data"
    first = names[0].removeprefix("pod/")
    table = get(url, "pods", first, "-n", "demo")
    assert table.returncode == 0 and len(table.stdout.splitlines()) == 2 and first in table.stdout

    missing = get(url, "pods", "nope", "-n", "demo")
    assert missing.returncode == 1 and 'Error from server (NotFound): pods "nope" not found' in (
        missing.stderr)  # fmt: skip
    for args, said in [
        (("pdos",), "doesn't have a resource type \"pdos\"; did you mean 'pods'?"),
        (("pods", "-o", "xml"), "expected one of"),
        (("pods", "-l", "app in ("), "labelSelector"),
        (("pods", "-o", "jsonpath={.items["), "jsonpath"),
        (("pods", "--sort-by", "..[["), "--sort-by"),
    ]:
        bad = get(url, *args)
        assert bad.returncode == 2 and said in bad.stderr, (args, bad.stderr)
        assert "Traceback" not in bad.stderr


def describe(server: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gitops", "describe", *args, "--server", server],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_describe_shows_spec_pods_rollout_and_events(server: tuple[str, Reconciler]) -> None:
    url, reconciler = server
    shown = describe(url, "deployment/web", "-n", "demo")
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    for line in ("Name:             web", "Namespace:        demo", "Replicas:         2",
                 "Selector:         app=web", "StrategyType:     RollingUpdate",
                 "Health:           Healthy", "Last Rollout:", "Result:         Complete",
                 "Pods:", "Events:"):  # fmt: skip
        assert line in text, (line, text)
    pods = sorted(p.name for p in reconciler.look().pods if p.deployment == "web")
    assert all(p in text for p in pods) and "RolloutStarted" in text and "RolloutComplete" in text
    pod = describe(url, "pod", pods[0], "-n", "demo")
    assert pod.returncode == 0 and "Controlled By:    Deployment/web" in pod.stdout
    assert "Restart Count:" in pod.stdout and "Successfully assigned" in pod.stdout
    node = describe(url, "node", "local")
    assert node.returncode == 0 and pods[0] in node.stdout and "Ready" in node.stdout
    data = json.loads(describe(url, "deploy", "web", "-n", "demo", "-o", "json").stdout)
    assert data["object"]["kind"] == "Deployment" and len(data["pods"]) == 2 and data["events"]
    missing = describe(url, "deployment/nope", "-n", "demo")
    assert missing.returncode == 1 and 'deployments "nope" not found' in missing.stderr
    bad = describe(url, "frobnicator/x")
    assert bad.returncode == 2 and "describe KIND NAME" in bad.stderr


def test_top_pods_and_nodes(server: tuple[str, Reconciler]) -> None:
    url, reconciler = server
    node = reconciler.nodes["local"]
    assert isinstance(node, MemoryNode)
    for pod in reconciler.look().pods:
        node.used[pod.app_containers()[0].id] = (5, 3 << 20)
    top = subprocess.run([sys.executable, "-m", "gitops", "top", "pods", "-n", "demo", "--server",
                          url], capture_output=True, text=True, timeout=60)  # fmt: skip
    header, *rows = top.stdout.splitlines()
    assert header.split() == ["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert len(rows) == 3 and all(r.split()[2:] == ["5m", "3Mi"] for r in rows)
    nodes = json.loads(subprocess.run(
        [sys.executable, "-m", "gitops", "top", "nodes", "-o", "json", "--server", url],
        capture_output=True, text=True, timeout=60).stdout)  # fmt: skip
    assert nodes[0]["name"] == "local" and nodes[0]["cpuMillis"] == 15 and nodes[0]["pods"] == 3


def complete(line: str, tmp: Path, server: str = "") -> list[str]:
    out = tmp / "completed"
    env = {"_ARGCOMPLETE": "1", "_ARGCOMPLETE_IFS": "\n", "COMP_LINE": line,
           "COMP_POINT": str(len(line)), "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
           "GITOPS_SERVER": server}  # fmt: skip
    subprocess.run([sys.executable, "-m", "gitops"], env={**os.environ, **env}, timeout=60,
                   capture_output=True)  # fmt: skip
    return out.read_text().split() if out.exists() else []


def test_completion_covers_verbs_kinds_and_live_names(
    server: tuple[str, Reconciler], tmp_path: Path
) -> None:
    url, reconciler = server
    assert complete("gitops ge", tmp_path) == ["get"]
    assert complete("gitops get dep", tmp_path) == ["deploy", "deployment", "deployments"]
    pods = sorted(p.name for p in reconciler.look().pods if p.deployment == "web")
    assert complete("gitops get pods web-", tmp_path, url) == pods
    assert complete("gitops logs deployment/", tmp_path, url) == ["deployment/db",
                                                                 "deployment/web"]  # fmt: skip
    assert complete("gitops get pods web-", tmp_path, "http://127.0.0.1:9") == []  # away: none
    script = subprocess.run([sys.executable, "-m", "gitops", "completion", "bash"],
                            capture_output=True, text=True, timeout=60).stdout  # fmt: skip
    assert "complete " in script and "gitops" in script


def test_ready_counts_the_pods_that_serve_while_a_deployment_is_paused(
    server: tuple[str, Reconciler], remote: GitRemote
) -> None:
    url, reconciler = server
    web = deployment(image=IMAGE, replicas=2, container={"env": [{"name": "V", "value": "2"}]})
    web["spec"]["paused"] = True  # a new template, held back: the old pods go on serving
    remote.write("web.yaml", web)
    remote.push("web v2, paused")
    converge(reconciler)
    table = get(url, "deployments", "web", "-n", "demo")
    header, row = table.stdout.splitlines()
    assert row.split()[header.split().index("READY")] == "2/2", table.stdout
    assert "Suspended" in row
