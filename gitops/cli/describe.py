"""``gitops describe KIND NAME`` (or ``KIND/NAME``), as kubectl describes: who it is, the spec
that matters, its conditions and verdict, its pods and where they run with their commits, a
Service's endpoints, a workload's last rollout, and the object's events at the bottom.

Read from the running reconciler's API: the Kubernetes-shaped object (``/k8s``), the pods and
endpoints rows, the rollout records and the event log."""

from __future__ import annotations

import argparse
import calendar
import os
import sys
import time
from typing import Any
from urllib.parse import quote, urlencode

from gitops.cli import client
from gitops.cli.common import ERROR, FAILED, OK, emit, table
from gitops.config.durations import format_duration

KINDS = {
    **dict.fromkeys(("deployment", "deployments", "deploy"), "deployments"),
    **dict.fromkeys(("statefulset", "statefulsets", "sts"), "statefulsets"),
    **dict.fromkeys(("daemonset", "daemonsets", "ds"), "daemonsets"),
    **dict.fromkeys(("replicaset", "replicasets", "rs"), "replicasets"),
    **dict.fromkeys(("pod", "pods", "po"), "pods"),
    **dict.fromkeys(("service", "services", "svc"), "services"),
    **dict.fromkeys(("node", "nodes", "no"), "nodes"),
    **dict.fromkeys(("job", "jobs"), "jobs"),
    **dict.fromkeys(("cronjob", "cronjobs", "cj"), "cronjobs"),
    **dict.fromkeys(("persistentvolumeclaim", "persistentvolumeclaims", "pvc"),
                    "persistentvolumeclaims"),
    **dict.fromkeys(("ingress", "ingresses", "ing"), "ingresses"),
    **dict.fromkeys(("namespace", "namespaces", "ns"), "namespaces"),
    **dict.fromkeys(("horizontalpodautoscaler", "horizontalpodautoscalers", "hpa"),
                    "horizontalpodautoscalers"),
}  # fmt: skip
WORKLOADS = ("deployments", "statefulsets", "daemonsets", "replicasets", "jobs")
ROLLING = ("deployments", "statefulsets", "daemonsets")


def add_parser(sub: Any, server: str) -> None:
    p = sub.add_parser("describe", help="show one object in detail, with its pods and events",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("kind", metavar="KIND[/NAME]", help="deployment, statefulset, daemonset, pod, "
                   "service, node, job, cronjob, pvc, ingress, namespace, hpa")  # fmt: skip
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("-n", "--namespace", default=os.environ.get("GITOPS_NAMESPACE", "default"))
    p.add_argument("-o", "--output", choices=("text", "json", "yaml"), default="text",
                   help="json/yaml: the object, its pods, rollouts and events as data")  # fmt: skip
    p.add_argument("--server", default=server, help="the running reconciler's API")


def cmd(args: argparse.Namespace) -> int:
    from gitops.model.apis import path

    word, _, named = args.kind.partition("/")
    kind, name = KINDS.get(word.lower()), named or args.name
    if kind is None or not name:
        print(f"gitops: describe KIND NAME, KIND one of {', '.join(sorted(set(KINDS.values())))}",
              file=sys.stderr)  # fmt: skip
        return ERROR
    ns = None if kind in ("nodes", "namespaces") else args.namespace
    code, obj = client.request(args.server, "/k8s" + path(kind, ns, quote(name, safe="")))
    if code == 404:
        print(f'Error from server (NotFound): {kind} "{name}" not found', file=sys.stderr)
        return FAILED
    if code != 200:
        print(f"gitops: {obj.get('error', obj) if isinstance(obj, dict) else obj}", file=sys.stderr)
        return ERROR
    ref = f"{obj['kind'].lower()}/{name}"
    query = {"for": ref, **({"namespace": ns} if ns else {})}
    events = client.get(args.server, f"/api/v1/events?{urlencode(query)}")["items"]
    pods = _pods(args, kind, name, ns)
    rollouts = (client.get(args.server, f"/api/v1/rollouts/{quote(ns or '')}/{quote(name)}?limit=3")
                ["rollouts"] if kind in ROLLING else [])  # fmt: skip
    if args.output != "text":
        emit({"object": obj, "pods": pods, "rollouts": rollouts, "events": events}, args.output)
        return OK
    _describe(kind, obj, pods, rollouts, events, args)
    return OK


def _pods(args: argparse.Namespace, kind: str, name: str, ns: str | None) -> list[dict[str, Any]]:
    if kind not in (*WORKLOADS, "nodes", "services", "persistentvolumeclaims"):
        return []
    rows = client.pods(args.server, ns)
    if kind == "nodes":
        return [p for p in rows if p["node"] == name]
    if kind == "services":
        eps = client.get(args.server, f"/api/v1/endpoints?namespace={quote(ns or '')}")
        serving = {e["pod"] for r in eps if r["name"] == name for e in r["endpoints"]}
        return [p for p in rows if p["name"] in serving]
    if kind == "persistentvolumeclaims":
        claims = client.get(
            args.server, f"/api/v1/persistentvolumeclaims?namespace={quote(ns or '')}"
        )
        users = {u for c in claims if c["name"] == name for u in c["usedBy"]}
        return [p for p in rows if p["name"] in users]
    return [p for p in rows if p["deployment"] == name]


def _line(label: str, value: Any, indent: int = 0) -> None:
    print(f"{' ' * indent}{label + ':':<{max(18 - indent, len(label) + 2)}}{value}")


def _pairs(values: dict[str, Any] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((values or {}).items())) or "<none>"


def _describe(
    kind: str, obj: dict[str, Any], pods: list[dict[str, Any]], rollouts: list[dict[str, Any]],
    events: list[dict[str, Any]], args: argparse.Namespace,
) -> None:  # fmt: skip
    meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    _line("Name", meta["name"])
    if meta.get("namespace"):
        _line("Namespace", meta["namespace"])
    _line("Labels", _pairs(meta.get("labels")))
    _line("Annotations", _pairs(meta.get("annotations")))
    if meta.get("creationTimestamp"):
        _line("CreationTimestamp", meta["creationTimestamp"])
    if kind == "pods":
        _pod(obj)
    elif kind == "nodes":
        _node(obj)
    elif kind == "namespaces":
        _namespace(status)
    else:
        _spec(kind, spec)
        for label in ("health", "sync", "message"):
            if status.get(label):
                _line(label.capitalize(), status[label])
        conditions = status.get("conditions") or []
        if conditions:
            print("Conditions:")
            cells = [["  " + c.get("type", ""), c.get("status", ""),
                      c.get("reason", "") or c.get("message", "")] for c in conditions]  # fmt: skip
            table(cells, ["  Type", "Status", "Reason"])
    if rollouts:
        last = rollouts[0]
        print("Last Rollout:")
        _line("Revision", f"{last['revision']} of commit {last['commit'][:12]} "
              f"({last.get('subject', '')})", 2)  # fmt: skip
        _line("Result", last["result"] + (f": {last['reason']}" if last.get("reason") else ""), 2)
        if last.get("rolled_back_to"):
            _line("Rolled Back To", last["rolled_back_to"][:12], 2)
    if pods or kind in (*WORKLOADS, "services", "nodes"):
        print("Pods:" if kind != "services" else "Endpoints:")
        if pods:
            table([["  " + p["name"], p["ready"], p["status"], str(p["restarts"]), p["node"],
                    p.get("ip") or "-", (p.get("commit") or "")[:12]] for p in pods],
                  ["  NAME", "READY", "STATUS", "RESTARTS", "NODE", "IP", "COMMIT"])  # fmt: skip
        else:
            print("  <none>")
    _events(events)


def _namespace(status: dict[str, Any]) -> None:
    """Its quotas, used against hard, and its limit ranges, as kubectl describes them."""
    _line("Status", status.get("status", "Active"))
    quotas = status.get("quotas") or []
    if not quotas:
        print("No resource quota.")
    for q in quotas:
        print("Resource Quotas")
        _line("Name", q["name"], 2)
        if q.get("scopes"):
            _line("Scopes", ", ".join(q["scopes"]), 2)
        table([["  " + r["resource"], r["used"], r["hard"]] for r in q["resources"]],
              ["  Resource", "Used", "Hard"])  # fmt: skip
    limits = status.get("limitRanges") or []
    if not limits:
        print("No LimitRange resource.")
        return
    print("Resource Limits")
    table([[" " + r["type"], r["resource"], r["min"], r["max"], r["defaultRequest"],
            r["defaultLimit"], r["maxLimitRequestRatio"]] for r in limits],
          [" Type", "Resource", "Min", "Max", "Default Request", "Default Limit",
           "Max Limit/Request Ratio"])  # fmt: skip


def _spec(kind: str, spec: dict[str, Any]) -> None:
    """The spec that matters of a workload, Service, claim or Ingress."""
    if "replicas" in spec:
        _line("Replicas", spec["replicas"])
    if "selector" in spec:
        selector = spec["selector"]
        _line("Selector", _pairs(selector.get("matchLabels", selector)))
    for key, label in (("type", "Type"), ("schedule", "Schedule"), ("suspend", "Suspend"),
                       ("storageClassName", "StorageClass"), ("accessModes", "Access Modes"),
                       ("ingressClassName", "Class")):  # fmt: skip
        if key in spec:
            _line(label, spec[key])
    strategy = spec.get("strategy") or spec.get("updateStrategy")
    if strategy:
        _line("StrategyType", strategy.get("type", ""))
    for p in spec.get("ports") or []:
        _line("Port", f"{p.get('name', '<unset>')} {p.get('port')}/{p.get('protocol', 'TCP')} -> "
              f"{p.get('targetPort', p.get('port'))}"
              + (f" (NodePort {p['nodePort']})" if p.get("nodePort") else ""))  # fmt: skip
    for rule in spec.get("rules") or []:
        for path in (rule.get("http") or {}).get("paths") or []:
            svc = (path.get("backend") or {}).get("service") or {}
            port = svc.get("port") or {}
            _line("Rule", f"{rule.get('host', '*')}{path.get('path', '/')} -> {svc.get('name')}:"
                  f"{port.get('number') or port.get('name')}")  # fmt: skip
    template = spec.get("template") or (spec.get("jobTemplate") or {}).get("spec", {}).get(
        "template"
    )
    if template:
        print("Pod Template:")
        _line("Labels", _pairs((template.get("metadata") or {}).get("labels")), 2)
        _containers((template.get("spec") or {}).get("containers") or [])


def _containers(containers: list[dict[str, Any]]) -> None:
    print("  Containers:")
    for c in containers:
        print(f"   {c['name']}:")
        _line("Image", c.get("image", ""), 4)
        ports = ", ".join(f"{p.get('containerPort')}/{p.get('protocol', 'TCP')}"
                          for p in c.get("ports") or [])  # fmt: skip
        if ports:
            _line("Ports", ports, 4)
        if c.get("command") or c.get("args"):
            _line("Command", " ".join([*c.get("command", []), *c.get("args", [])]), 4)
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if c.get(probe):
                _line(probe.removesuffix("Probe").capitalize(), _probe(c[probe]), 4)
        env = [e["name"] + ("" if "value" in e else " (from a source)") for e in c.get("env", [])]
        if env:
            _line("Environment", ", ".join(env), 4)  # values stay out: they may be secret


def _probe(p: dict[str, Any]) -> str:
    how = next((k for k in ("httpGet", "tcpSocket", "exec", "grpc") if k in p), "?")
    target = p.get(how) or {}
    what = (" ".join(target.get("command", [])) if how == "exec"
            else f"{target.get('path', '')} :{target.get('port', '')}".strip())  # fmt: skip
    return (f"{how} {what} period={p.get('periodSeconds', 10)}s "
            f"#failure={p.get('failureThreshold', 3)}")  # fmt: skip


def _pod(obj: dict[str, Any]) -> None:
    spec, status = obj["spec"], obj["status"]
    owners = obj["metadata"].get("ownerReferences") or []
    _line("Node", spec.get("nodeName") or "<none>")
    _line("Status", status.get("reason") or status.get("phase", ""))
    if status.get("message"):
        _line("Message", status["message"])
    _line("IP", status.get("podIP") or "<none>")
    if owners:
        _line("Controlled By", f"{owners[0]['kind']}/{owners[0]['name']}")
    print("Containers:")
    for c in status.get("containerStatuses") or []:
        print(f"  {c['name']}:")
        _line("Container ID", c["containerID"], 4)
        _line("Image", c["image"], 4)
        state, detail = next(iter(c["state"].items()), ("unknown", {}))
        _line("State", state.capitalize() + "".join(f", {k} {v}" for k, v in detail.items()), 4)
        _line("Ready", c["ready"], 4)
        _line("Restart Count", c["restartCount"], 4)
    print("Conditions:")
    table([["  " + c["type"], c["status"]] for c in status.get("conditions") or []],
          ["  Type", "Status"])  # fmt: skip


def _node(obj: dict[str, Any]) -> None:
    status = obj["status"]
    _line("Unschedulable", obj["spec"].get("unschedulable", False))
    for a in status.get("addresses") or []:
        _line(a["type"], a["address"])
    _line("Allocatable", _pairs(status.get("allocatable")))
    _line("Runtime", status.get("nodeInfo", {}).get("containerRuntimeVersion", ""))
    print("Conditions:")
    table([["  " + c["type"], c["status"], c.get("message", "")] for c in status["conditions"]],
          ["  Type", "Status", "Message"])  # fmt: skip


def _events(events: list[dict[str, Any]]) -> None:
    print("Events:")
    if not events:
        print("  <none>")
        return
    rows = []
    for e in events[-20:]:
        last = calendar.timegm(time.strptime(e["lastTimestamp"], "%Y-%m-%dT%H:%M:%SZ"))
        age = format_duration(max(0.0, time.time() - last))
        count = f" (x{e['count']})" if e["count"] > 1 else ""
        source = e["source"].get("host") or e["source"]["component"]
        rows.append(["  " + e["type"], e["reason"], age + count, source, e["message"]])
    table(rows, ["  Type", "Reason", "Age", "From", "Message"])
