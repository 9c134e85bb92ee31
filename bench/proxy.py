"""Benchmark: the gitops service proxy against direct access and Docker's published port.

    python bench/proxy.py [--seconds 5] [--runs 3] [--connections 16]

In one run, on this machine's engine, with wrk (Debian's package) as the load generator:
- direct: wrk inside the pod's own network namespace (nsenter), to 127.0.0.1:8080;
- service: wrk to the pod's NodePort Service on 127.0.0.1, through `gitops run`'s proxy;
- published: wrk to an identical container published by Docker on 127.0.0.1 (docker-proxy).
Prints median and min-max of requests/s and p50/p99 latency per target, the ratios, and writes
bench/results/proxy.json. It reports; it does not assert. All traffic stays on loopback or
inside the pod. Needs root (nsenter), scripts/host-setup and wrk; installs wrk when missing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REPO = "127.0.0.1:5000/gitops-bench/web"
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def sh(*cmd: str, **kw: Any) -> str:
    return str(subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout).strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(predicate: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"bench: {what} not ready within {seconds}s")


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)


def wrk(
    url: str,
    seconds: int,
    connections: int,
    netns_pid: int | None = None,
    headers: tuple[str, ...] = (),
) -> dict[str, float]:
    cmd = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    cmd += [*(a for h in headers for a in ("-H", h)), url]
    if netns_pid is not None:
        cmd = ["nsenter", f"--net=/proc/{netns_pid}/ns/net", *cmd]
    out = sh(*cmd)

    def latency(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            raise SystemExit(f"bench: cannot read p{pct} from wrk:\n{out}")
        return float(m.group(1)) * UNITS[m.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "errors": float(sum(int(x) for x in errors.groups()) if errors else 0)
        + float(non2xx.group(1) if non2xx else 0),
    }


def workload(image: str) -> str:
    """The namespace and the one-pod Deployment every proxy benchmark sends to."""
    return f"""apiVersion: v1
kind: Namespace
metadata: {{name: bench}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: bench}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
        - name: web
          image: {image}
          ports: [{{name: http, containerPort: 8080}}]
          readinessProbe: {{httpGet: {{path: /healthz, port: http}}, periodSeconds: 1}}
"""


def manifests(image: str, node_port: int) -> str:
    return (
        workload(image)
        + f"""---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: bench}}
spec:
  type: NodePort
  selector: {{app: web}}
  ports: [{{name: http, port: 80, targetPort: http, nodePort: {node_port}}}]
"""
    )


def launch(work: Path, text: str, instance: str, api_port: int, *flags: str) -> Any:
    """A bare repository under ``work`` holding ``text``, and ``gitops run`` on it (its log in
    ``work/gitops.log``): the process."""
    sh("git", "init", "-q", "--bare", "-b", "main", str(work / "repo.git"))
    sh("git", "clone", "-q", str(work / "repo.git"), str(work / "w"))
    (work / "w" / "all.yaml").write_text(text)
    git = [
        "git",
        "-C",
        str(work / "w"),
        "-c",
        "user.name=bench",
        "-c",
        "user.email=bench@localhost",
    ]
    sh(*git, "add", "-A")
    sh(*git, "commit", "-qm", "bench")
    sh(*git, "push", "-q", "origin", "HEAD:main")
    with (work / "gitops.log").open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "gitops", "run", "--repo", str(work / "repo.git"),
             "--state-dir", str(work / "state"), "--instance", instance,
             "--listen", f"127.0.0.1:{api_port}", "--interval", "60s", *flags],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip


def pod_pid(instance: str) -> int:
    """A process in the bench pod's network namespace: its web container's, whether it holds
    the namespace or a pause container does."""
    app = sh("docker", "ps", "-q", "--filter", f"label=io.gitops.instance={instance}",
             "--filter", "label=io.gitops.container=web")  # fmt: skip
    return int(sh("docker", "inspect", "-f", "{{.State.Pid}}", app.split()[0]))


def teardown(instance: str, image: str, work: Path) -> None:
    """The benchmark's pods, network, image and files gone (gitops run already stopped)."""
    ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=io.gitops.instance={instance}"],
                         capture_output=True, text=True).stdout.split()  # fmt: skip
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
    subprocess.run(["docker", "network", "rm", f"gitops-{instance}-bench"], capture_output=True)
    subprocess.run(["docker", "rmi", image], capture_output=True)
    shutil.rmtree(work, ignore_errors=True)


def summarize(samples: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("rps", "p50_ms", "p99_ms"):
        values = [s[key] for s in samples]
        out[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    out["errors"] = sum(s["errors"] for s in samples)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
    subprocess.run([str(ROOT / "scripts" / "host-setup")], check=True)
    tag = "proxy"  # one fixed tag, rebuilt each run: runs do not pile images up in the registry
    image = f"{REPO}:{tag}"
    subprocess.run([str(ROOT / "scripts" / "build-images"), REPO, tag], check=True)
    instance = f"bench{secrets.token_hex(2)}"
    node_port, api_port, published = free_port() % 2000 + 30100, free_port(), free_port()
    work = Path(tempfile.mkdtemp(prefix="gitops-bench-"))
    gitops_proc = None
    plain = f"gitops-bench-published-{instance}"
    try:
        gitops_proc = launch(work, manifests(image, node_port), instance, api_port)
        api = f"http://127.0.0.1:{api_port}"
        wait(
            lambda: any(r["endpoints"] for r in get(api + "/api/v1/endpoints")),
            60,
            "service endpoints",
        )
        sh(
            "docker",
            "run",
            "-d",
            "--init",
            "--name",
            plain,
            "-p",
            f"127.0.0.1:{published}:8080",
            image,
        )
        pid = pod_pid(instance)
        wait(
            lambda: (
                urllib.request.urlopen(f"http://127.0.0.1:{published}/version", timeout=2).status
                == 200
            ),
            30,
            "published container",
        )
        targets = {
            "direct": ("http://127.0.0.1:8080/version", pid),
            "service": (f"http://127.0.0.1:{node_port}/version", None),
            "published": (f"http://127.0.0.1:{published}/version", None),
        }
        # Two phases: throughput at saturation, and latency one request at a time, where a
        # p99 is the hop's own cost and not a queue (busybox httpd listens with a backlog of 9:
        # at saturation any proxy in front of it meets dropped SYNs and 1 s retransmits).
        phases = {"throughput": args.connections, "latency": 1}
        samples: dict[str, dict[str, list[dict[str, float]]]] = {
            ph: {k: [] for k in targets} for ph in phases
        }
        for run in range(args.runs):  # interleaved, so drift hits every target alike
            for ph, conns in phases.items():
                for name, (url, netns) in targets.items():
                    samples[ph][name].append(wrk(url, args.seconds, conns, netns))
                    last = samples[ph][name][-1]
                    print(
                        f"run {run + 1}/{args.runs} {ph:10s} {name:9s} {last['rps']:7.0f} req/s"
                        f" p99 {last['p99_ms']:.2f} ms",
                        file=sys.stderr,
                    )
        result = {ph: {k: summarize(v) for k, v in per.items()} for ph, per in samples.items()}
        t, lat = result["throughput"], result["latency"]
        ratios = {
            "service_vs_direct_rps": t["service"]["rps"]["median"] / t["direct"]["rps"]["median"],
            "service_vs_published_rps": t["service"]["rps"]["median"]
            / t["published"]["rps"]["median"],
            "service_added_p99_ms": lat["service"]["p99_ms"]["median"]
            - lat["direct"]["p99_ms"]["median"],
            "published_added_p99_ms": lat["published"]["p99_ms"]["median"]
            - lat["direct"]["p99_ms"]["median"],
            "service_added_p99_at_saturation_ms": t["service"]["p99_ms"]["median"]
            - t["direct"]["p99_ms"]["median"],
            "published_added_p99_at_saturation_ms": t["published"]["p99_ms"]["median"]
            - t["direct"]["p99_ms"]["median"],
        }
        setup = {
            "throughput": f"wrk -t2 -c{args.connections} -d{args.seconds}s",
            "latency": f"wrk -t1 -c1 -d{args.seconds}s (one request at a time)",
            "runs": f"{args.runs} runs of each phase and target, interleaved",
            "backend": "1 pod, busybox httpd (new connection per request), docker --init",
            "direct": "wrk inside the pod's network namespace to 127.0.0.1:8080",
            "service": "gitops NodePort Service on 127.0.0.1 (HAProxy run by gitops run)",
            "published": "docker run -p 127.0.0.1:PORT:8080 (docker-proxy), same image",
            "cpus": os.cpu_count(),
        }
        for ph in phases:
            print(f"\n{ph} ({setup[ph]})")
            print(
                f"{'target':10s} {'req/s median (min-max)':>28s} {'p50 ms':>8s} {'p99 ms median (min-max)':>26s} {'errors':>7s}"
            )
            for name, r in result[ph].items():
                print(
                    f"{name:10s} {r['rps']['median']:12.0f} ({r['rps']['min']:.0f}-{r['rps']['max']:.0f})"
                    f" {r['p50_ms']['median']:8.2f} {r['p99_ms']['median']:10.2f}"
                    f" ({r['p99_ms']['min']:.2f}-{r['p99_ms']['max']:.2f}) {r['errors']:7.0f}"
                )
        print()
        print(
            f"service/direct throughput:    {ratios['service_vs_direct_rps']:.2f}  (target >= 0.5)"
        )
        print(f"service/published throughput: {ratios['service_vs_published_rps']:.2f}")
        print(
            f"added p99, service:           {ratios['service_added_p99_ms']:.3f} ms  (target < 1 ms)"
        )
        print(f"added p99, docker published:  {ratios['published_added_p99_ms']:.3f} ms")
        print(
            f"added p99 at saturation:      service {ratios['service_added_p99_at_saturation_ms']:.1f} ms,"
            f" docker published {ratios['published_added_p99_at_saturation_ms']:.1f} ms"
        )
        out = ROOT / "bench" / "results"
        out.mkdir(parents=True, exist_ok=True)
        (out / "proxy.json").write_text(
            json.dumps({"setup": setup, "result": result, "ratios": ratios}, indent=2)
        )
        print(f"\nwritten to {out / 'proxy.json'}")
        return 0
    finally:
        if gitops_proc is not None:
            gitops_proc.terminate()
            gitops_proc.wait(timeout=30)
        subprocess.run(["docker", "rm", "-f", plain], capture_output=True)
        teardown(instance, image, work)


if __name__ == "__main__":
    raise SystemExit(main())
