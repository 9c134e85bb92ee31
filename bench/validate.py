"""Validation speed: ``gitops validate`` over 5,000 documents, beside yamllint on the same files.

A generated repository of 5,000 documents in 100 files (Deployments with probes, env,
resources and volumes; Services; ConfigMaps; Secrets; Namespaces), as a large monorepo holds
them. Measured in one run, medians of ``--reps``:

- ``gitops validate DIR`` as CI runs it (a new process: start-up, read, parse, validate);
- the same in this process (``read_directory`` + ``parse_manifests``), and how much of it is
  the YAML reading alone (libyaml through the strict loader), beside PyYAML's pure-Python
  loader that gitops used before;
- ``yamllint`` (the YAML linter many repositories run in CI) on the same directory, the peer:
  it reads and checks the YAML, but knows nothing of Kubernetes.

Writes ``bench/results/validate.json`` and its section of ``docs/benchmarks.md``. It reports;
it does not assert.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.docs import write_section
from gitops.manifests import parse_manifests
from gitops.manifests.files import read_directory
from gitops.manifests.load import load_documents

ROOT = Path(__file__).resolve().parents[1]
FILES, PER_FILE = 100, 50


def documents(i: int) -> list[dict[str, Any]]:
    ns = f"team-{i}"
    out: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
    ]
    for j in range(PER_FILE // 5):
        name = f"app-{j}"
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"{name}-config", "namespace": ns},
                "data": {"LEVEL": "info", "config.yaml": "a: 1\nb: [1, 2]\n"},
            }
        )
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"{name}-secret", "namespace": ns},
                "data": {"token": "aHVudGVyMg=="},
            }
        )
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": ns},
                "spec": {
                    "selector": {"app": name},
                    "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
                },
            }
        )
        out.append({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {
                "replicas": 3, "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "containers": [{
                            "name": "app", "image": f"registry.example.com/{name}:1.2.3",
                            "ports": [{"name": "http", "containerPort": 8080}],
                            "env": [{"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": f"{name}-config", "key": "LEVEL"}}},
                                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": f"{name}-secret", "key": "token"}}}],
                            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
                            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
                            "livenessProbe": {"tcpSocket": {"port": "http"}},
                            "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}],
                        }],
                        "volumes": [{"name": "config", "configMap": {"name": f"{name}-config"}}],
                    },
                },
            },
        })  # fmt: skip
    return out[:PER_FILE]


def make_repo(root: Path) -> int:
    count = 0
    for i in range(FILES):
        docs = documents(i)
        while len(docs) < PER_FILE:  # one Namespace per file, the rest ConfigMaps
            docs.append(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": f"extra-{len(docs)}", "namespace": f"team-{i}"},
                    "data": {"k": "v"},
                }
            )
        (root / f"team-{i}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
        count += len(docs)
    return count


def timed(fn: Any, reps: int) -> dict[str, float]:
    runs = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return {"median": statistics.median(runs), "min": min(runs), "max": max(runs)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "validate.json")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = ap.parse_args()
    yamllint = shutil.which("yamllint")
    if yamllint is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "yamllint"], check=True)
        yamllint = shutil.which("yamllint") or str(Path(sys.executable).parent / "yamllint")
    with tempfile.TemporaryDirectory(prefix="gitops-bench-validate-") as tmp:
        root = Path(tmp)
        count = make_repo(root)
        files = dict(read_directory(root).files)
        size = sum(len(v) for v in files.values())
        print(f"{count} documents in {len(files)} files, {size / 1e6:.1f} MB", file=sys.stderr)
        parse_manifests(files)  # valid: a benchmark of the happy path, nothing raised

        def cli() -> None:
            subprocess.run(
                [sys.executable, "-m", "gitops", "validate", str(root)],
                check=True,
                capture_output=True,
            )

        def lint() -> None:
            subprocess.run([yamllint, "-d", "relaxed", str(root)], check=False, capture_output=True)

        def pure() -> None:
            for text in files.values():
                list(yaml.load_all(text, Loader=yaml.SafeLoader))

        results = {
            "documents": count,
            "files": len(files),
            "bytes": size,
            "gitops validate (process)": timed(cli, args.reps),
            "in process: read + parse + validate": timed(lambda: parse_manifests(read_directory(root).files), args.reps),
            "in process: YAML reading alone (libyaml, strict loader)": timed(lambda: load_documents(files), args.reps),
            "PyYAML pure-Python SafeLoader (gitops before)": timed(pure, args.reps),
            "yamllint -d relaxed (peer)": timed(lint, args.reps),
        }  # fmt: skip
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "reps": args.reps}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    write_section(args.docs, "validate", render(meta, results))
    print(render(meta, results))
    return 0


def render(meta: dict[str, Any], results: dict[str, Any]) -> str:
    rows = [(k, v) for k, v in results.items() if isinstance(v, dict)]
    peer = results["yamllint -d relaxed (peer)"]["median"]
    lines = [
        "## Validation: 5,000 documents",
        "",
        f"Latest run: {meta['date']}, medians of {meta['reps']}: `python bench/validate.py`. "
        f"{results['documents']} documents in {results['files']} files "
        f"({results['bytes'] / 1e6:.1f} MB): Deployments with probes, env, resources and "
        "volumes, Services, ConfigMaps, Secrets, Namespaces.",
        "",
        "| what | median (min-max) | / yamllint |",
        "| --- | --- | --- |",
    ]
    for name, t in rows:
        lines.append(
            f"| {name} | {t['median']:.2f} s ({t['min']:.2f}-{t['max']:.2f}) | {t['median'] / peer:.2f} |"
        )
    lines += [
        "",
        "yamllint reads and checks the YAML only; `gitops validate` also types every document, "
        "checks every field as Kubernetes does and relates the resources to each other.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
