"""gitops side by side with Docker Swarm on the same engine: the issue-7 scenarios.

    python bench/compare.py [--reps 3] [--only converge,update,heal,rollback,reaction]

As root, with the engine and the registry up (scripts/host-setup). Builds its images, runs each
scenario against gitops and against Swarm (``docker swarm init`` and ``leave`` by the harness)
``--reps`` times, prints medians with min-max and the ratio gitops/Swarm, and writes
``bench/results/compare.json`` and ``docs/benchmarks.md``. It reports; it does not assert.
Each figure is wall time from the user's action (``git push`` / ``docker service
create|update`` / a container killed) until the state is observed, polled every 50 ms on both
sides.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import batch, daemon, stateful
from bench.docs import sections
from bench.sides import GWBRIDGE, ROOT, Gitops, Swarm, digest, manifest, swarm_leave, wait
from bench.steady import steady

REPO = "127.0.0.1:5000/gitops-bench/web"
Result = dict[str, Any]


def images(engine: docker.DockerClient) -> dict[str, str]:
    subprocess.run([str(ROOT / "scripts" / "build-images"), REPO, "v1", "v2", "v3-unready"],
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    return {v: f"{REPO}:{v}" for v in ("v1", "v2", "v3-unready")}


# -- scenarios: each returns seconds for (gitops, swarm) ------------------------------------


def converge(engine: Any, img: dict[str, str], n: int) -> tuple[float, float, float]:
    g = Gitops(engine)
    try:
        t0 = g.push(manifest(img["v1"], n, 1, 0), f"{n} replicas")
        wait(lambda: g.ready(img["v1"], n), 300)
        gitops = time.monotonic() - t0
    finally:
        g.stop()
    s = Swarm(engine)
    image = digest(engine, img["v1"])
    try:
        t0 = s.create(image, n, 1, True)
        wait(lambda: s.ready(image, n), 300)
        swarm = time.monotonic() - t0
    finally:
        s.remove()
    return gitops, swarm, engine_floor(engine, img["v1"], n)


def engine_floor(engine: Any, image: str, n: int) -> float:
    """The engine alone: ``n`` containers created and started through the SDK, 8 at a time, on
    a user-defined bridge with an init, nothing waited for. No orchestrator can go below it."""
    api = engine.api
    net = api.create_network("gitops-bench-floor", driver="bridge")["Id"]
    ids: list[str] = []

    def one(i: int) -> None:
        host = api.create_host_config(init=True, network_mode="gitops-bench-floor")
        cid = api.create_container(image, name=f"gitops-bench-floor-{i}", host_config=host)["Id"]
        ids.append(cid)
        api.start(cid)

    try:
        t0 = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(n)))
        return time.monotonic() - t0
    finally:
        for cid in ids:
            api.remove_container(cid, force=True)
        api.remove_network(net)


def update(engine: Any, img: dict[str, str], n: int, start_first: bool) -> tuple[float, float]:
    return _change(engine, img, n, start_first, "v2", "v2")


def _change(
    engine: Any, img: dict[str, str], n: int, start_first: bool, new: str, final: str
) -> tuple[float, float]:
    """v1 running and ready; then ``new`` is pushed / updated to: until ``final`` alone serves
    (``new`` for an update; v1 again when ``new`` never becomes ready and is rolled back)."""
    surge, unavailable = (1, 0) if start_first else (0, 1)
    deadline = 5 if new != final else 60  # a backstop: with fail-fast the failed pod ends it
    g = Gitops(engine)
    try:
        g.push(manifest(img["v1"], n, surge, unavailable, deadline), "v1")
        wait(lambda: g.ready(img["v1"], n) and g.complete(), 300)
        t0 = g.push(manifest(img[new], n, surge, unavailable, deadline), new)
        wait(lambda: any(c["image"] == img[new] for p in g.pods() for c in p["containers"]), 60)
        wait(lambda: g.ready(img[final], n), 300)
        gitops = time.monotonic() - t0
    finally:
        g.stop()
    s = Swarm(engine)
    by_digest = {v: digest(engine, img[v]) for v in ("v1", new, final)}
    try:
        s.create(by_digest["v1"], n, 1, start_first)
        wait(lambda: s.ready(by_digest["v1"], n), 300)
        t0 = s.update(by_digest[new], 1, start_first)
        sha = by_digest[new].rsplit("@")[-1]
        wait(lambda: any(sha in c["Image"] for c in s.running()), 60)
        wait(lambda: s.ready(by_digest[final], n), 300)
        swarm = time.monotonic() - t0
    finally:
        s.remove()
    return gitops, swarm


def heal(engine: Any, img: dict[str, str]) -> tuple[float, float]:
    n = 3
    g = Gitops(engine)
    try:
        g.push(manifest(img["v1"], n, 1, 0), "v1")
        wait(lambda: g.ready(img["v1"], n), 300)
        victim = g.containers()[0]
        t0 = time.monotonic()
        victim.kill()
        wait(lambda: _gitops_replaced(g, img["v1"], n, victim.id), 120)
        gitops = time.monotonic() - t0
    finally:
        g.stop()
    s = Swarm(engine)
    v1 = digest(engine, img["v1"])
    try:
        s.create(v1, n, 1, True)
        wait(lambda: s.ready(v1, n), 300)
        victim = s.running()[0]["Id"]
        t0 = time.monotonic()
        engine.api.kill(victim)
        wait(lambda: s.ready(v1, n) and victim not in {c["Id"] for c in s.running()}, 120)
        swarm = time.monotonic() - t0
    finally:
        s.remove()
    return gitops, swarm


def _gitops_replaced(g: Gitops, image: str, n: int, victim: str) -> bool:
    """All ``n`` ready again (gitops' verdict: its readiness probe passed after the restart),
    the killed container running again in its pod, or replaced."""
    if not g.ready(image, n):
        return False
    running = {c.id for c in g.containers()}
    gone = victim not in {c.id for c in g.engine.containers.list(all=True, sparse=True)}
    return victim in running or gone


def rollback(engine: Any, img: dict[str, str]) -> tuple[float, float]:
    """A new version that never becomes ready: until the old version serves alone again."""
    return _change(engine, img, 3, True, "v3-unready", "v1")


def reaction(engine: Any, img: dict[str, str], webhook: bool) -> float:
    """git push (watched local repository, or a GitHub webhook) -> the first new container."""
    extra = ("--no-watch",) if webhook else ()
    g = Gitops(engine, extra)
    try:
        g.push(manifest(img["v1"], 1, 1, 0), "v1")
        if webhook:
            _github(g)
        wait(lambda: g.ready(img["v1"], 1), 120)
        before = {c.id for c in g.containers()}
        t0 = g.push(manifest(img["v2"], 1, 1, 0), "v2")
        if webhook:
            _github(g)
        wait(lambda: any(c.id not in before for c in g.containers()), 60)
        return time.monotonic() - t0
    finally:
        g.stop()


def _github(g: Gitops) -> None:
    body = json.dumps({"ref": "refs/heads/main", "repository": {"clone_url": str(g.bare)}}).encode()
    sig = "sha256=" + hmac.new(g.secret.encode(), body, hashlib.sha256).hexdigest()
    req = urllib.request.Request(
        g.url + "/api/v1/webhooks/github", data=body, method="POST",
        headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": sig},
    )  # fmt: skip
    urllib.request.urlopen(req, timeout=10).close()


# -- the run ----------------------------------------------------------------------------------

SCENARIOS: dict[str, list[tuple[str, Callable[[Any, dict[str, str]], Any]]]] = {
    "converge": [
        ("1. converge 10 replicas", lambda e, i: converge(e, i, 10)),
        ("1. converge 30 replicas", lambda e, i: converge(e, i, 30)),
    ],
    "update": [
        ("2. rolling update 3, start-first", lambda e, i: update(e, i, 3, True)),
        ("2. rolling update 10, start-first", lambda e, i: update(e, i, 10, True)),
        ("2. rolling update 3, stop-first", lambda e, i: update(e, i, 3, False)),
        ("2. rolling update 10, stop-first", lambda e, i: update(e, i, 10, False)),
    ],
    "heal": [("3. heal a killed container", heal)],
    "rollback": [("4. failed update back on v1", rollback)],
    "reaction": [
        ("5. push to first container (ref watch)", lambda e, i: reaction(e, i, False)),
        ("5. push to first container (GitHub webhook)", lambda e, i: reaction(e, i, True)),
    ],
    "stateful": [
        ("8. converge 3 replicas, a volume each", stateful.converge),
        ("8. rolling update 3, a volume each, stop-first", stateful.update),
    ],
    "daemon": [
        ("9. DaemonSet vs --mode global, converge (1 node)", daemon.converge),
        ("9. DaemonSet vs --mode global, rolling update (1 node)", daemon.update),
    ],
    "batch": [("10. Job of 10 completions, 2 at a time, vs --mode replicated-job", batch.run)],
}
# Run once whatever --reps says: each repeats its own measurement inside (30 passes; 3
# interleaved runs per proxy target).
FIGURES: dict[str, tuple[str, Callable[[Any, dict[str, str]], dict[str, Any]]]] = {
    "steady": ("6. no-op reconcile, 300 pods on 3 nodes", steady),
    "proxy": ("7. Service proxy vs direct and Docker's published port", lambda e, i: proxy()),
}


def proxy() -> dict[str, Any]:
    """bench/proxy.py (wrk; 3 interleaved runs of each target), its JSON read back."""
    subprocess.run([sys.executable, str(ROOT / "bench" / "proxy.py"), "--seconds", "4"],
                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    return dict(json.loads((ROOT / "bench" / "results" / "proxy.json").read_text()))


_ORDER = [title for group in SCENARIOS.values() for title, _ in group] + [
    title for title, _ in FIGURES.values()
]


def _timed(
    title: str,
    fn: Callable[[Any, dict[str, str]], Any],
    engine: Any,
    img: dict[str, str],
    reps: int,
) -> Result:
    """``reps`` runs of one scenario: (gitops[, swarm[, engine floor]]) seconds each."""
    runs: dict[str, list[float]] = {"gitops": [], "swarm": [], "floor": []}
    for rep in range(reps):
        out = fn(engine, img)
        shown = []
        for side, value in zip(runs, out if isinstance(out, tuple) else (out,), strict=False):
            runs[side].append(value)
            shown.append(f"{side} {value:.2f}s")
        print(f"{title} [{rep + 1}/{reps}]: {', '.join(shown)}", file=sys.stderr, flush=True)
    row: Result = {"scenario": title}
    for side, seconds in runs.items():
        if seconds:
            row |= {side: summary(seconds), f"{side}_runs": seconds}
    if "swarm" in row:
        row["ratio"] = row["gitops"]["median"] / row["swarm"]["median"]
    return row


def summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument(
        "--only", default=",".join([*SCENARIOS, *FIGURES]), help="comma-separated groups"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "compare.json")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md")
    ap.add_argument(
        "--merge", action="store_true", help="keep the other scenarios' figures from --out"
    )
    ap.add_argument("--render", action="store_true", help="only write --docs from --out")
    args = ap.parse_args()
    if args.render:
        saved = json.loads(args.out.read_text())
        _write_docs(args.docs, saved["meta"], saved["results"])
        return 0
    engine = docker.from_env(timeout=120)
    gwbridge_was_there = bool(engine.networks.list(names=[GWBRIDGE]))
    img = images(engine)
    results: list[Result] = []
    try:
        for group in args.only.split(","):
            if group in FIGURES:
                title, measure = FIGURES[group]
                print(f"{title} ...", file=sys.stderr, flush=True)
                results.append({"scenario": title, "figures": measure(engine, img)})
                continue
            for title, fn in SCENARIOS[group]:
                results.append(_timed(title, fn, engine, img, args.reps))
    finally:
        try:
            swarm_leave(engine, gwbridge_was_there)
        except docker.errors.APIError as exc:
            print(f"swarm leave: {exc}", file=sys.stderr)
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    for r in results:
        r["run"] = now  # rows kept by --merge keep the date of the run that measured them
    meta = {
        "date": now,
        "machine": f"{platform.machine()}, {_cpus()} cores, engine {engine.version()['Version']}",
        "command": f"python bench/compare.py --reps {args.reps} --only {args.only}",
        "reps": args.reps,
    }
    merged = args.merge and args.out.exists()
    if merged:  # keep the other scenarios' latest figures
        ran = {r["scenario"] for r in results}
        kept = [r for r in json.loads(args.out.read_text())["results"] if r["scenario"] not in ran]
        results = sorted(kept + results, key=lambda r: _ORDER.index(r["scenario"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    print(render(meta, results))
    if args.docs and args.merge and not merged:
        # The other scenarios' figures are in no saved run here: writing the page would drop
        # them. The table above is the result; add it to the page by hand.
        print(f"--merge: no {args.out} to merge with; {args.docs} left as it is", file=sys.stderr)
    elif args.docs:
        _write_docs(args.docs, meta, results)
    return 0


def _write_docs(path: Path, meta: dict[str, Any], results: list[Result]) -> None:
    older = sorted({r["run"] for r in results if r.get("run", meta["date"]) != meta["date"]})
    kept = [f"{r['scenario'].split('.')[0]} ({r['run']})" for r in results if r.get("run") in older]
    note = f"Rows kept from an earlier run (`--merge`): {', '.join(kept)}.\n\n"
    findings = (ROOT / "bench" / "findings.md").read_text()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.format(table=render(meta, results), findings=findings, **meta)
    text = text.replace("\n\n" + findings, "\n\n" + (note if kept else "") + findings)
    others = sections(path)  # what other benchmarks wrote (bench/docs.py)
    path.write_text(text.rstrip() + ("\n\n" + others if others else "\n"))


DOC = """# Benchmarks: gitops side by side with Docker Swarm

Latest run: {date}, on {machine} (runs: repetitions of each scenario):

    {command}

{table}

{findings}"""


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


def render(meta: dict[str, Any], results: list[Result]) -> str:
    def cell(s: dict[str, float]) -> str:
        return f"{s['median']:.2f} s ({s['min']:.2f}-{s['max']:.2f})"

    lines = [
        "| scenario | runs | gitops median (min-max) | Swarm median (min-max) | gitops/Swarm "
        "| target | engine alone |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    figures = []
    for r in results:
        if "figures" in r:
            figures.append(r)
            continue
        floor = cell(r["floor"]) if "floor" in r else ""
        if "swarm" in r:
            met = "met" if r["ratio"] <= 0.5 else "**missed**"
            lines.append(f"| {r['scenario']} | {len(r['gitops_runs'])} | {cell(r['gitops'])} | {cell(r['swarm'])} | "
                         f"{r['ratio']:.2f} | <= 0.5: {met} | {floor} |")  # fmt: skip
        else:
            met = "met" if r["gitops"]["median"] < 1.0 else "**missed**"
            lines.append(f"| {r['scenario']} | {len(r['gitops_runs'])} | {cell(r['gitops'])} | (no Swarm equivalent) "
                         f"| | < 1 s: {met} | |")  # fmt: skip
    for r in figures:
        lines += ["", f"**{r['scenario']}**", ""]
        lines += _steady(r["figures"]) if r["scenario"].startswith("6.") else _proxy(r["figures"])
    return "\n".join(lines)


def _steady(f: dict[str, Any]) -> list[str]:
    mib = 1024 * 1024
    rows = [
        f"{f['pods']} pods ({', '.join(f'{n}: {c}' for n, c in f['pods_per_node'].items())}), "
        f"converged by `gitops run` in {f['converge_s']:.0f} s; {PASSES_NOTE}",
        "",
        "| pass | wall median (max) | CPU median | Docker API calls per node | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for kind, title in (("poll", "poll (git fetch first)"), ("event", "event (no fetch)")):
        p = f[kind]
        ok = p["wall_median_s"] < 0.1 and p["api_calls_per_node"] <= 2
        calls = ", ".join(f"`{k}` {v:g}" for k, v in p["api_calls"].items())
        rows.append(
            f"| {title} | {p['wall_median_s'] * 1000:.0f} ms ({p['wall_max_s'] * 1000:.0f}) "
            f"| {p['cpu_median_s'] * 1000:.0f} ms | {p['api_calls_per_node']:g} ({calls}) "
            f"| < 100 ms, <= 2 calls: {'met' if ok else '**missed**'} |"
        )
    rss = f["rss_bytes"] / mib
    rows += [
        "",
        f"`gitops run` resident memory at {f['pods']} pods: {rss:.0f} MiB (peak "
        f"{f['peak_rss_bytes'] / mib:.0f} MiB); target < 150 MB: "
        f"{'met' if f['rss_bytes'] < 150e6 else '**missed**'}. Idle CPU (polls every 5 s, node "
        f"checks, event streams): {f['idle_cpu_share'] * 100:.1f} % of one core.",
    ]
    return rows


PASSES_NOTE = (
    "30 passes of each kind, back to back, in a reconciler built as `gitops run` builds it."
)


def _proxy(f: dict[str, Any]) -> list[str]:
    t, lat, ratios = f["result"]["throughput"], f["result"]["latency"], f["ratios"]
    rows = [
        f"{f['setup']['backend']}; {f['setup']['runs']}.",
        "",
        "| target | req/s at saturation, median (min-max) | p50 one at a time | p99 one at a time |",
        "| --- | --- | --- | --- |",
    ]
    for name, what in (("direct", "direct (in the pod's netns)"), ("service", "gitops Service"),
                       ("published", "Docker published port")):  # fmt: skip
        r = t[name]["rps"]
        rows.append(
            f"| {what} | {r['median']:.0f} ({r['min']:.0f}-{r['max']:.0f}) "
            f"| {lat[name]['p50_ms']['median']:.2f} ms | {lat[name]['p99_ms']['median']:.2f} ms |"
        )
    rows += [
        "",
        f"Service/direct throughput {ratios['service_vs_direct_rps']:.2f}, Service/published "
        f"{ratios['service_vs_published_rps']:.2f}; p99 added by the Service "
        f"{ratios['service_added_p99_ms']:.2f} ms, by Docker's published port "
        f"{ratios['published_added_p99_ms']:.2f} ms (one request at a time).",
    ]
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
