"""``gitops get``, ``status`` and ``history``: what the running reconciler says, as kubectl
shows it (``-o wide|json|yaml``)."""

from __future__ import annotations

import argparse
import calendar
import difflib
import json
import sys
import time
from typing import Any
from urllib.parse import urlencode

from gitops.cli import client
from gitops.cli.common import ERROR, FAILED, OK, emit, table
from gitops.config.durations import format_duration

KIND_ALIASES = {
    "deployments": "deployments",
    "deployment": "deployments",
    "deploy": "deployments",
    "statefulsets": "statefulsets",
    "statefulset": "statefulsets",
    "sts": "statefulsets",
    "daemonsets": "daemonsets",
    "daemonset": "daemonsets",
    "ds": "daemonsets",
    "jobs": "jobs",
    "job": "jobs",
    "cronjobs": "cronjobs",
    "cronjob": "cronjobs",
    "cj": "cronjobs",
    "replicasets": "replicasets",
    "replicaset": "replicasets",
    "rs": "replicasets",
    "replicationcontrollers": "replicationcontrollers",
    "replicationcontroller": "replicationcontrollers",
    "rc": "replicationcontrollers",
    "persistentvolumeclaims": "persistentvolumeclaims",
    "persistentvolumeclaim": "persistentvolumeclaims",
    "pvc": "persistentvolumeclaims",
    "poddisruptionbudgets": "poddisruptionbudgets",
    "poddisruptionbudget": "poddisruptionbudgets",
    "pdb": "poddisruptionbudgets",
    "pods": "pods",
    "pod": "pods",
    "po": "pods",
    "services": "services",
    "service": "services",
    "svc": "services",
    "namespaces": "namespaces",
    "namespace": "namespaces",
    "ns": "namespaces",
    "nodes": "nodes",
    "node": "nodes",
    "no": "nodes",
    "endpoints": "endpoints",
    "ep": "endpoints",
    "ingresses": "ingresses",
    "ingress": "ingresses",
    "ing": "ingresses",
    "horizontalpodautoscalers": "horizontalpodautoscalers",
    "horizontalpodautoscaler": "horizontalpodautoscalers",
    "hpa": "horizontalpodautoscalers",
    "configmaps": "configmaps",
    "configmap": "configmaps",
    "cm": "configmaps",
    "secrets": "secrets",
    "secret": "secrets",
    "events": "events",
    "event": "events",
    "ev": "events",
    "all": "all",
}


def _conditions(row: dict[str, Any]) -> str:
    """The conditions not as they should be, as ``type=reason``, else ``-``."""
    odd = [f"{c['type']}={c['reason']}" for c in row["conditions"]
           if (c["status"] == "True") == (c["type"] == "ScalingLimited")]  # fmt: skip
    return ",".join(odd) or "-"


def _age(created: float) -> str:
    return format_duration(max(0.0, time.time() - created)) if created else "-"


def _ago(when: float | None) -> str:
    return f"{format_duration(max(0.0, time.time() - when))} ago" if when else "<none>"


def _in(when: float | None) -> str:
    return f"in {format_duration(max(0.0, when - time.time()))}" if when else "<none>"


def _duration(job: dict[str, Any]) -> str:
    """How long a Job ran (so far): from its start to its end, or to now."""
    start = job.get("startTime") or 0
    if not start:
        return "-"
    end = job.get("finishedTime") or time.time()
    return format_duration(max(0.0, end - start))


# -- verbs ----------------------------------------------------------------------------------


def cmd_get(args: argparse.Namespace) -> int:
    word, _, named = args.kind.partition("/")
    if word.lower() not in KIND_ALIASES:
        near = difflib.get_close_matches(word.lower(), list(KIND_ALIASES), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        print(f'gitops: the server doesn\'t have a resource type "{word}"{hint}', file=sys.stderr)
        return ERROR
    kind = KIND_ALIASES[word.lower()]
    names = [named, *args.names] if named else list(args.names)
    if kind == "all":
        return _get_all(args)
    if kind == "events":
        return _get_events(args)
    if args.watch:
        return _watch_rows(args, kind)
    kube = args.output in ("json", "yaml", "name") or args.output.startswith(
        ("jsonpath=", "custom-columns=")
    )
    found = _objects(args, kind, names) if kube or args.selector or args.sort_by or (
        args.show_labels) else None  # fmt: skip
    if found is not None:
        missing = _missing(kind, names, {o["metadata"]["name"] for o in found})
        if kube:
            code = _print_objects(args, found, len(names) == 1)
            return FAILED if missing else code
        order = {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): i
                 for i, o in enumerate(found)}  # fmt: skip
        labels = {key: found[i]["metadata"].get("labels") or {} for key, i in order.items()}
    ns = "" if args.all_namespaces or not args.namespace else f"?namespace={args.namespace}"
    rows = client.get(args.server, f"/api/v1/{kind}{ns}")
    if found is None:
        missing = _missing(kind, names, {r["name"] for r in rows})
    if names:
        rows = [r for r in rows if r["name"] in names]
    if found is not None:
        rows = sorted((r for r in rows if (r.get("namespace", ""), r["name"]) in order),
                      key=lambda r: order[(r.get("namespace", ""), r["name"])])  # fmt: skip
    wide = args.output == "wide"
    if not rows:
        if not names:
            print(f"No {kind} found.", file=sys.stderr)
        return FAILED if missing else OK
    shown = _table(kind, rows, wide)
    if shown is None:
        return OK
    cells, header = shown
    if args.show_labels:
        header = [*header, "LABELS"]
        cells = [
            [*c, ",".join(f"{k}={v}" for k, v in sorted(
                labels.get((r.get("namespace", ""), r["name"]), {}).items())) or "<none>"]
            for c, r in zip(cells, rows, strict=True)
        ]  # fmt: skip
    table(cells, header)
    return FAILED if missing else OK


def _missing(kind: str, names: list[str], present: set[str]) -> list[str]:
    """The names asked for that are not there, each said as kubectl says it."""
    missing = [n for n in names if n not in present]
    for n in missing:
        print(f'Error from server (NotFound): {kind} "{n}" not found', file=sys.stderr)
    return missing


def _objects(args: argparse.Namespace, kind: str, names: list[str]) -> list[dict[str, Any]]:
    """The Kubernetes-shaped objects (``/k8s`` + the kind's API path), chosen and sorted."""
    from gitops.cli.output import sort_key
    from gitops.model.apis import API, path

    if kind not in API:
        print(f"gitops: {kind} have no Kubernetes form here", file=sys.stderr)
        raise SystemExit(ERROR)
    namespace = None if args.all_namespaces else args.namespace
    query = f"?{urlencode({'labelSelector': args.selector})}" if args.selector else ""
    items = list(client.get(args.server, "/k8s" + path(kind, namespace) + query)["items"])
    if names:
        items = [o for o in items if o["metadata"]["name"] in names]
    if args.sort_by:
        try:
            items.sort(key=sort_key(args.sort_by))
        except ValueError as exc:
            print(f"gitops: --sort-by: {exc}", file=sys.stderr)
            raise SystemExit(ERROR) from exc
    return items


def _print_objects(args: argparse.Namespace, items: list[dict[str, Any]], one: bool) -> int:
    from gitops.cli.output import custom_columns, name_of, render_template
    from gitops.serve.objects import as_list

    doc = items[0] if one and len(items) == 1 else as_list(items)
    form = args.output
    try:
        if form in ("json", "yaml"):
            emit(doc, form)
        elif form == "name":
            for o in items:
                print(name_of(o))
        elif form.startswith("jsonpath="):
            print(render_template(form.removeprefix("jsonpath="), doc), end="")
            print()
        else:
            rows = custom_columns(form.removeprefix("custom-columns="), items)
            table(rows[1:], rows[0])
    except ValueError as exc:
        print(f"gitops: -o {form.partition('=')[0]}: {exc}", file=sys.stderr)
        return ERROR
    return OK


def _table(
    kind: str, rows: list[dict[str, Any]], wide: bool
) -> tuple[list[list[str]], list[str]] | None:
    """The columns kubectl shows of a kind (None: printed already, as nodes are)."""
    if kind == "nodes":
        print_nodes(rows, wide)
        return None
    if kind == "pods":
        header = ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        header += ["IP", "NODE", "COMMIT", "IMAGES"] if wide else []
        cells = [
            [
                r["namespace"],
                r["name"],
                r["ready"],
                r["status"],
                str(r["restarts"]),
                _age(r["created"]),
            ]
            + (
                [
                    r.get("ip") or "<none>",
                    r["node"],
                    r["commit"][:12],
                    ",".join(c["image"] for c in r["containers"]),
                ]
                if wide
                else []
            )
            for r in rows
        ]
    elif kind == "statefulsets":
        header = ["NAMESPACE", "NAME", "READY", "SYNC", "HEALTH", "AGE"]
        header += ["IMAGES", "MESSAGE"] if wide else []
        cells = [
            [r["namespace"], r["name"], r["ready"], r["sync"], r["health"], _age(r["created"])]
            + ([",".join(r["images"]), r["message"]] if wide else [])
            for r in rows
        ]
    elif kind == "deployments":
        header = ["NAMESPACE", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "SYNC", "HEALTH", "AGE"]
        header += ["IMAGES", "COMMITS", "MESSAGE"] if wide else []
        cells = [
            [
                r["namespace"],
                r["name"],
                r["ready"],
                str(r["upToDate"]),
                str(r["available"]),
                r["sync"],
                r["health"],
                _age(r["created"]),
            ]
            + ([",".join(r["images"]), ",".join(r["commits"]), r["message"]] if wide else [])
            for r in rows
        ]
    elif kind == "daemonsets":  # kubectl's columns; NODE SELECTOR is in -o json's source
        header = ["NAMESPACE", "NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE"]
        header += ["SYNC", "HEALTH", "AGE"] + (["NODES", "IMAGES", "MESSAGE"] if wide else [])
        cells = [
            [
                r["namespace"], r["name"], str(r["desired"]), str(r["current"]),
                r["ready"].partition("/")[0], str(r["upToDate"]), str(r["available"]),
                r["sync"], r["health"], _age(r["created"]),
            ]
            + ([",".join(r["nodes"]), ",".join(r["images"]), r["message"]] if wide else [])
            for r in rows
        ]  # fmt: skip
    elif kind == "ingresses":  # kubectl's columns; -o wide: each route and certificate
        header = ["NAMESPACE", "NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "HEALTH"]
        header += ["ROUTES", "TLS EXPIRES", "MESSAGE"] if wide else []
        cells = [
            [
                r["namespace"], r["name"], r["class"], ",".join(r["hosts"]), r["address"],
                ", ".join(map(str, r["ports"])), r["health"] or r["sync"],
            ]
            + ([_routes(r), _expiry(r), r["message"]] if wide else [])
            for r in rows
        ]  # fmt: skip
    elif kind == "horizontalpodautoscalers":  # kubectl's columns; -o wide: the last scale
        header = ["NAMESPACE", "NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS"]
        header += ["LAST SCALE", "REASON", "CONDITIONS"] if wide else []
        cells = [
            [
                r["namespace"], r["name"], r["reference"], ", ".join(r["targets"]),
                str(r["minPods"]), str(r["maxPods"]), str(r["replicas"]),
            ]
            + ([_ago(r["lastScaleTime"]), r["reason"] or "-", _conditions(r)] if wide else [])
            for r in rows
        ]  # fmt: skip
    elif kind == "jobs":  # kubectl's columns
        header = ["NAMESPACE", "NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
        header += ["REASON", "IMAGES", "PODS"] if wide else []
        cells = [
            [
                r["namespace"], r["name"], r["status"], r["completions"], _duration(r),
                _age(r["created"]),
            ]
            + ([r["reason"] or "-", ",".join(r["images"]), ",".join(r["pods"])] if wide else [])
            for r in rows
        ]  # fmt: skip
    elif kind == "cronjobs":  # kubectl's columns, and when it runs next and how it last went
        header = ["NAMESPACE", "NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE"]
        header += ["LAST SCHEDULE", "NEXT SCHEDULE", "LAST RESULT", "AGE"]
        header += ["HEALTH", "MESSAGE"] if wide else []
        cells = [
            [
                r["namespace"], r["name"], r["schedule"], r["timeZone"] or "<none>",
                str(r["suspend"]), str(r["active"]), _ago(r["lastScheduleTime"]),
                _in(r["nextScheduleTime"]), r["lastResult"] or "-", _age(r["lastScheduleTime"]),
            ]
            + ([r["health"], r["message"]] if wide else [])
            for r in rows
        ]  # fmt: skip
    elif kind in ("replicasets", "replicationcontrollers"):
        header = ["NAMESPACE", "NAME", "DESIRED", "CURRENT", "READY", "SYNC", "HEALTH", "AGE"]
        header += ["IMAGES", "MESSAGE"] if wide else []
        cells = [
            [
                r["namespace"],
                r["name"],
                str(r["desired"]),
                str(r["current"]),
                r["ready"].partition("/")[0],
                r["sync"],
                r["health"],
                _age(r["created"]),
            ]
            + ([",".join(r["images"]), r["message"]] if wide else [])
            for r in rows
        ]
    elif kind == "persistentvolumeclaims":
        header = ["NAMESPACE", "NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES"]
        header += ["STORAGECLASS", "NODE", "USED BY", "AGE"]
        modes = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX",
                 "ReadWriteOncePod": "RWOP"}  # fmt: skip
        cells = [
            [
                r["namespace"], r["name"], r["status"], r["volume"] or "-", r["capacity"],
                ",".join(modes.get(x, x) for x in r["accessModes"]), r["storageClass"],
                r["node"] or "-", ",".join(r["usedBy"]) or "<none>", _age(r["created"]),
            ]
            for r in rows
        ]  # fmt: skip
    elif kind == "poddisruptionbudgets":
        header = ["NAMESPACE", "NAME", "MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS"]
        header += ["HEALTH", "MESSAGE"] if wide else []
        cells = [
            [
                r["namespace"],
                r["name"],
                "N/A" if r["minAvailable"] is None else str(r["minAvailable"]),
                "N/A" if r["maxUnavailable"] is None else str(r["maxUnavailable"]),
                str(r["status"].get("disruptionsAllowed", 0)),
            ]
            + ([r["health"], r["message"]] if wide else [])
            for r in rows
        ]
    elif kind == "services":
        header = ["NAMESPACE", "NAME", "TYPE", "PORTS", "ENDPOINTS"] + (
            ["SELECTOR"] if wide else []
        )
        cells = [
            [r["namespace"], r["name"], r["type"], r["ports"], str(len(r["endpoints"]))]
            + ([r["selector"]] if wide else [])
            for r in rows
        ]
    elif kind == "endpoints":
        header = ["NAMESPACE", "NAME", "PORT", "ENDPOINTS"] + (["PODS"] if wide else [])
        cells = [
            [
                r["namespace"],
                r["name"],
                f"{r['port']}" + (f":{r['nodePort']}" if r["nodePort"] else ""),
                ",".join(f"{e['ip']}:{e['port']}" for e in r["endpoints"]) or "<none>",
            ]
            + ([",".join(e["pod"] for e in r["endpoints"])] if wide else [])
            for r in rows
        ]
    elif kind in ("configmaps", "secrets"):
        header = ["NAMESPACE", "NAME"] + (["TYPE"] if kind == "secrets" else []) + ["DATA"]
        cells = [
            [r["namespace"], r["name"]]
            + ([r["type"]] if kind == "secrets" else [])
            + [str(r["data"]) + (f" ({','.join(r['keys'])})" if wide else "")]
            for r in rows
        ]
    else:
        header = ["NAME", "STATUS", "SYNC"]
        cells = [[r["name"], r["status"], r["sync"]] for r in rows]
    return cells, header


def _events_query(args: argparse.Namespace, **more: str) -> str:
    params = {k: v for k, v in (("namespace", "" if args.all_namespaces else args.namespace or ""),
                                ("for", args.for_ or ""), *more.items()) if v}  # fmt: skip
    return "/api/v1/events" + (f"?{urlencode(params)}" if params else "")


def _last_seen(e: dict[str, Any]) -> str:
    """kubectl's LAST SEEN: the age of the last one, and how many over how long."""
    last, first = _stamp(e["lastTimestamp"]), _stamp(e["firstTimestamp"])
    seen = _age(last)
    if e["count"] > 1:
        seen += f" (x{e['count']} over {format_duration(max(0.0, last - first))})"
    return seen


def _stamp(text: str) -> float:
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def _event_row(e: dict[str, Any], spaces: bool) -> list[str]:
    obj = e["involvedObject"]
    return ([obj["namespace"] or "-"] if spaces else []) + [
        _last_seen(e), e["type"], e["reason"], f"{obj['kind'].lower()}/{obj['name']}",
        e["message"],
    ]  # fmt: skip


def _get_events(args: argparse.Namespace) -> int:
    """kubectl's ``events``: oldest first, LAST SEEN, TYPE, REASON, OBJECT, MESSAGE; ``-w``
    then prints each new or repeated one as it happens."""
    listed = client.get(args.server, _events_query(args))
    items = listed["items"]
    spaces = args.all_namespaces or not args.namespace
    header = (["NAMESPACE"] if spaces else []) + ["LAST SEEN", "TYPE", "REASON", "OBJECT",
                                                   "MESSAGE"]  # fmt: skip
    if args.output in ("json", "yaml") and not args.watch:
        emit(listed, args.output)
        return OK
    if args.output in ("json", "yaml"):
        for e in items:
            print(json.dumps(e), flush=True)
    elif items:
        table([_event_row(e, spaces) for e in items], header)
    elif not args.watch:
        print("No events found.", file=sys.stderr)
    if not args.watch:
        return OK
    path = _events_query(args, watch="true", resourceVersion=listed["metadata"]["resourceVersion"])
    try:
        for change in client.stream(args.server, path):
            e = json.loads(change)["object"]
            if args.output in ("json", "yaml"):
                print(json.dumps(e), flush=True)
            else:
                print("   ".join(_event_row(e, spaces)), flush=True)
    except KeyboardInterrupt:
        return OK
    return OK


def _watch_rows(args: argparse.Namespace, kind: str) -> int:
    """``get -w``: the table, then a row each time one changes (or comes, or goes), looked
    up again whenever the event stream says something happened."""
    ns = "" if args.all_namespaces or not args.namespace else f"?namespace={args.namespace}"

    def rows() -> dict[str, str]:
        found = client.get(args.server, f"/api/v1/{kind}{ns}")
        return {f"{r['namespace']}/{r['name']}": _watch_line(r) for r in found}

    shown = rows()
    for line in shown.values():
        print(line, flush=True)
    listed = client.get(args.server, _events_query(args))
    path = _events_query(args, watch="true", resourceVersion=listed["metadata"]["resourceVersion"])
    try:
        for _ in client.stream(args.server, path):
            now = rows()
            for key, line in now.items():
                if shown.get(key) != line:
                    print(line, flush=True)
            for key in shown.keys() - now.keys():
                print(f"{shown[key]}   (gone)", flush=True)
            shown = now
    except KeyboardInterrupt:
        return OK
    return OK


def _watch_line(r: dict[str, Any]) -> str:
    state = r.get("status") or r.get("health") or ""
    cells = [r["namespace"], r["name"], str(r.get("ready", "")), str(state),
             str(r.get("restarts", "")), str(r.get("node", ""))]  # fmt: skip
    return "   ".join(c for c in cells if c)


def _get_all(args: argparse.Namespace) -> int:
    """Every resource of the applied commit, those gitops skips among them (with the reason),
    as ``kubectl get all`` lists a namespace's objects."""
    resources = client.get(args.server, "/api/v1/status")["resources"]
    if not args.all_namespaces and args.namespace:
        resources = [r for r in resources if r["namespace"] in (args.namespace, "")]
    if args.output in ("json", "yaml"):
        emit(resources, args.output)
        return OK
    if not resources:
        print("No resources found.", file=sys.stderr)
        return OK
    table(
        [
            [
                r["namespace"] or "-",
                f"{r['kind'].lower()}/{r['name']}",
                r["sync"],
                r["health"],
                r["message"],
            ]
            for r in resources
        ],
        ["NAMESPACE", "NAME", "SYNC", "HEALTH", "MESSAGE"],
    )
    return OK


def print_status(st: dict[str, Any], fmt: str) -> None:
    if fmt != "table":
        emit(st, fmt)
        return
    print(f"revision: {st['revision'][:12] or '-'}   applied: {st['applied'][:12] or '-'}")
    print(f"result:   {st['result']} ({st['reason']}) {st['message']}")
    if st.get("renderer"):
        print(f"rendered: {st['renderer']}")
    for err in st["errors"]:
        print(f"  {err}")
    for warning in st.get("warnings", []):
        print(f"  Warning: {warning}")
    rows = [
        [r["kind"], r["namespace"] or "-", r["name"], r["sync"], r["health"], r["message"]]
        for r in st["resources"]
    ]
    if rows:
        print()
        table(rows, ["KIND", "NAMESPACE", "NAME", "SYNC", "HEALTH", "MESSAGE"])


def cmd_status(args: argparse.Namespace) -> int:
    st = client.get(args.server, "/api/v1/status")
    print_status(st, args.output)
    return FAILED if st["result"] == "Failed" else OK


def _cores(millis: int) -> str:
    return f"{millis}m"


def _bytes(n: int) -> str:
    return f"{n // 1024**2}Mi"


def cmd_top(args: argparse.Namespace) -> int:
    """kubectl's ``top pods|nodes``: CPU(cores) in millicores and MEMORY(bytes) in Mi."""
    if args.what in ("nodes", "node", "no"):
        rows = client.get(args.server, "/api/v1/top/nodes")
        if args.output != "table":
            emit(rows, args.output)
            return OK

        def pct(value: int | None) -> str:
            return "<unknown>" if value is None else f"{value}%"

        cells = [[r["name"], _cores(r["cpuMillis"]), pct(r["cpuPercent"]),
                  _bytes(r["memoryBytes"]), pct(r["memoryPercent"])] for r in rows]  # fmt: skip
        table(cells, ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"])
        return OK
    ns = "" if args.all_namespaces or not args.namespace else f"?namespace={args.namespace}"
    rows = client.get(args.server, f"/api/v1/top/pods{ns}")
    if args.output != "table":
        emit(rows, args.output)
        return OK
    if not rows:
        print("No resources found.", file=sys.stderr)
        return OK
    if args.containers:
        table([[r["namespace"], r["name"], c["name"], _cores(c["cpuMillis"]),
                _bytes(c["memoryBytes"])] for r in rows for c in r["containers"]],
              ["NAMESPACE", "POD", "NAME", "CPU(cores)", "MEMORY(bytes)"])  # fmt: skip
    else:
        table([[r["namespace"], r["name"], _cores(r["cpuMillis"]), _bytes(r["memoryBytes"])]
               for r in rows], ["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"])  # fmt: skip
    return OK


def cmd_version(args: argparse.Namespace) -> int:
    """kubectl's ``version``: the client's, then the server's (``GET /version``)."""
    from gitops.config import build

    answer: dict[str, Any] = {"clientVersion": build.info()}
    if args.output == "table":  # the client's first: it is known whatever the server does
        print(f"Client Version: {answer['clientVersion']['gitVersion']}", flush=True)
    code = OK
    if not args.client:
        try:
            status, body = client.request(args.server, "/version", timeout=5.0)
        except SystemExit:  # unreachable: said on stderr already
            status, body = 0, None
        if status == 200 and isinstance(body, dict):
            answer["serverVersion"] = body
        else:
            code = ERROR
            if status:
                print(f"gitops: {args.server}/version answered {status}", file=sys.stderr)
    if args.output != "table":
        emit(answer, args.output)
    elif "serverVersion" in answer:
        print(f"Server Version: {answer['serverVersion']['gitVersion']}")
    return code


def cmd_history(args: argparse.Namespace) -> int:
    rows = client.get(args.server, f"/api/v1/history?limit={args.limit}")
    if args.output != "table":
        emit(rows, args.output)
        return OK
    table(
        [
            [
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["started"])),
                r["revision"][:12],
                r["result"],
                r["reason"],
                f"+{r['created']} -{r['removed']} ~{r['restarted']}",
                (r["message"].splitlines() or [""])[0][:80],
            ]
            for r in rows
        ],
        ["TIME", "REVISION", "RESULT", "REASON", "PODS", "MESSAGE"],
    )
    return OK


def _quantity(milli: int | None, unit: str) -> str:
    if milli is None:
        return "-"
    if unit == "cpu":
        return f"{milli / 1000:g}" if milli % 1000 == 0 else f"{milli}m"
    return f"{milli / 1024**2:.0f}Mi"


def print_nodes(rows: list[dict[str, Any]], wide: bool) -> None:
    header = ["NAME", "STATUS", "PODS", "CPU (REQ/ALLOC)", "MEMORY (REQ/ALLOC)", "VERSION"]
    header += ["ADDRESS", "ENDPOINT", "LABELS", "MESSAGE"] if wide else []
    out = []
    for r in rows:
        line = [
            r["name"],
            r["status"],
            str(r["pods"]),
            f"{_quantity(r['requested_cpu_millis'], 'cpu')}/{_quantity(r['cpu_millis'], 'cpu')}",
            f"{_quantity(r['requested_memory'], 'mem')}/{_quantity(r['memory'], 'mem')}",
            r["version"] or "-",
        ]
        if wide:
            labels = ",".join(f"{k}={v}" for k, v in sorted(r["labels"].items())) or "<none>"
            line += [r["address"], r["endpoint"], labels, r["message"]]
        out.append(line)
    table(out, header)


def _routes(row: dict[str, Any]) -> str:
    """host/path→service:port (ready endpoints), as kubectl describe ingress lists them."""
    return (
        ",".join(
            f"{r['host']}{r['path']}→{r['service']}:{r['port']}({r['endpoints']})"
            for r in row["rules"]
        )
        or "-"
    )


def _expiry(row: dict[str, Any]) -> str:
    ends = [t["notAfter"] for t in row["tls"] if t["notAfter"]]
    return time.strftime("%Y-%m-%d", time.gmtime(min(ends))) if ends else "-"
