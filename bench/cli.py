"""Benchmark: how fast ``gitops get pods`` answers, beside ``docker ps`` on the same pods.

    python bench/cli.py [--reps 21] [--replicas 5]

In one run, on this machine's engine: ``gitops run`` with a Deployment of ``--replicas`` pods,
then, interleaved, ``gitops get pods`` (a new process: start-up, one API call to the running
reconciler, which looks at the engine afresh, and the table) and ``docker ps`` filtered to the
same pods (the Docker CLI, a Go binary, asking the engine directly): the peer a Docker-host
user types instead. Also the time to import the CLI alone (``python -X importtime``). Medians
and p90 of ``--reps``; writes bench/results/cli.json and its section of docs/benchmarks.md.
It reports; it does not assert. Needs scripts/host-setup.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.docs import write_section
from bench.proxy import ROOT, free_port, get, launch, teardown, wait, workload

REPO = "127.0.0.1:5000/gitops-bench/web"
TARGET_MS = 150.0


def timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    return (time.perf_counter() - started) * 1000


def import_ms() -> float:
    """The CLI's own imports, as Python counts them (microseconds, cumulative, top level)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import gitops.cli.main"],
                         capture_output=True, text=True, check=True).stderr  # fmt: skip
    found = re.search(r"\|\s*(\d+) \| gitops\.cli\.main$", out, re.M)
    return int(found[1]) / 1000 if found else float("nan")


def stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median": statistics.median(values), "p90": ordered[int(0.9 * (len(ordered) - 1))],
            "min": ordered[0], "max": ordered[-1]}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--reps", type=int, default=21)
    ap.add_argument("--replicas", type=int, default=5)
    ap.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = ap.parse_args()
    subprocess.run([str(ROOT / "scripts" / "host-setup")], check=True)
    image = f"{REPO}:cli"
    subprocess.run([str(ROOT / "scripts" / "build-images"), REPO, "cli"], check=True)
    instance = f"bench{secrets.token_hex(2)}"
    api_port = free_port()
    work = Path(tempfile.mkdtemp(prefix="gitops-bench-cli-"))
    text = workload(image).replace("replicas: 1", f"replicas: {args.replicas}")
    proc = launch(work, text, instance, api_port)
    try:
        api = f"http://127.0.0.1:{api_port}"
        wait(lambda: sum(p["status"] == "Running" for p in get(api + "/api/v1/pods"))
             == args.replicas, 120, "the pods")  # fmt: skip
        env = {**os.environ, "GITOPS_SERVER": api}
        ours = [sys.executable, "-m", "gitops", "get", "pods", "-n", "bench"]
        peer = ["docker", "ps", "--filter", f"label=io.gitops.instance={instance}"]
        samples: dict[str, list[float]] = {"gitops get pods": [], "docker ps": []}
        for cmd in (ours, peer):  # warm the page cache and the engine's answer once
            timed(cmd, env)
        for rep in range(args.reps):
            for name, cmd in (("gitops get pods", ours), ("docker ps", peer)):
                samples[name].append(timed(cmd, env))
            print(f"rep {rep + 1}/{args.reps}: " + ", ".join(
                f"{k} {v[-1]:.0f} ms" for k, v in samples.items()), file=sys.stderr)  # fmt: skip
        imports = [import_ms() for _ in range(5)]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        teardown(instance, image, work)
    result = {k: stats(v) for k, v in samples.items()}
    result["imports"] = stats(imports)
    ratio = result["gitops get pods"]["median"] / result["docker ps"]["median"]
    setup = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "reps": args.reps,
             "replicas": args.replicas, "cpus": os.cpu_count()}  # fmt: skip
    for name, r in result.items():
        print(f"{name:16s} median {r['median']:6.1f} ms  p90 {r['p90']:6.1f} ms "
              f"({r['min']:.0f}-{r['max']:.0f})")  # fmt: skip
    print(f"gitops get pods / docker ps: {ratio:.2f}; target: median under {TARGET_MS:.0f} ms")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "cli.json").write_text(json.dumps({"setup": setup, "result": result,
                                              "ratio": ratio}, indent=2))  # fmt: skip
    write_section(args.docs, "cli", _section(setup, result, ratio))
    return 0


def _section(setup: dict[str, Any], result: dict[str, Any], ratio: float) -> str:
    ours = result["gitops get pods"]["median"]
    rows = [
        "## CLI: `gitops get pods` beside `docker ps`",
        "",
        f"Latest run: {setup['date']}, {setup['reps']} interleaved runs each, "
        f"{setup['replicas']} pods, {setup['cpus']} CPUs: `python bench/cli.py`. A new process "
        "each time. `gitops get pods` asks the running reconciler, which looks at the engine "
        "afresh; `docker ps` (Docker's Go CLI) asks the engine itself.",
        "",
        "| what | median | p90 | min-max |",
        "| --- | --- | --- | --- |",
    ]
    names = {"gitops get pods": "`gitops get pods`", "docker ps": "`docker ps` (peer)",
             "imports": "importing the CLI (`-X importtime`)"}  # fmt: skip
    for key, what in names.items():
        r = result[key]
        rows.append(f"| {what} | {r['median']:.0f} ms | {r['p90']:.0f} ms | "
                    f"{r['min']:.0f}-{r['max']:.0f} ms |")  # fmt: skip
    rows += [
        "",
        f"`gitops get pods` / `docker ps`: {ratio:.2f}. Target: under {TARGET_MS:.0f} ms, "
        f"{'met' if ours < TARGET_MS else '**missed**'} ({ours:.0f} ms; 213 ms before the verbs "
        "imported lazily what they do not use: git, the manifest model, YAML).",
    ]
    return "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())
