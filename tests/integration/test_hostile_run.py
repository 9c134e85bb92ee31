"""Hostile input against a real ``gitops run``, engine, git and HAProxy: a commit that once
ended the process, a flood of idle connections at a tight file-descriptor limit, two
reconcilers sharing an engine, a repository heavy with files that are not manifests."""

from __future__ import annotations

import os
import resource
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_TOKEN, GitRemote, Images, start_gitops, stop_gitops
from tests.helpers import deployment, namespace, secret
from tests.integration.test_run import free_port, get, gitops, wait_for
from tests.integration.test_services import NS, Load, endpoints, fetch, node_port, service, web

__all__ = ["node_port"]  # a fixture


def status(url: str) -> dict[str, Any]:
    try:
        return dict(get(url + "/api/v1/status"))
    except OSError:
        return {}


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def test_a_commit_that_once_ended_the_process_while_traffic_flows(
    remote: GitRemote, images: Images, node_port: int, instance: str, tmp_path: Path
) -> None:
    """The Secret that is not base64 (referenced by an env), the quantity of 5,000 digits and
    the 3,000 nested '[' ended ``gitops run`` and took every NodePort with it. Now: the process
    lives, the NodePort answers throughout, status says Failed with file and field and every
    resource OutOfSync against the head, and a fix commit deploys."""
    remote.write("ns.yaml", namespace(NS))
    remote.write("web.yaml", web(images, "v1"), service("web", node_port, {"app": "web"}))
    remote.push("web v1")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    state = tmp_path / "state"
    proc = start_gitops(remote.bare, instance, state, port, tmp_path / "gitops.log")
    try:
        wait_for(lambda: len(endpoints(url, "web")) == 3, 60, 0.2)
        v1, v2 = (images[v].rsplit(":", 1)[1] for v in ("v1", "v2"))
        with Load(node_port, limit=30_000, seconds=150) as load:
            bad = secret("token", NS)
            bad["data"] = {"k": "abc"}
            env = [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "token", "key": "k"}}}]
            remote.write(
                "bad-secret.yaml",
                bad,
                deployment("uses", NS, images["v1"], 1, container={"env": env}),
            )
            remote.write(
                "huge.yaml",
                deployment(
                    "huge",
                    NS,
                    images["v1"],
                    1,
                    container={"resources": {"limits": {"memory": "1e5000"}}},
                ),
            )
            remote.write_text("deep.yaml", "a: " + "[" * 3000 + "]" * 3000 + "\n")
            broken = remote.push("three hostile files")
            wait_for(lambda: status(url).get("revision") == broken, 30, 0.2)
            st = status(url)
            assert proc.poll() is None
            assert st["result"] == "Failed" and st["reason"] == "ValidationFailed"
            errors = "\n".join(st["errors"])
            assert "bad-secret.yaml:0: Secret/token: data.k: value is not valid base64" in errors
            assert (
                "huge.yaml:0: Deployment/huge: spec.template.spec.containers[0].resources.limits.memory"
                in errors
            )
            assert "deep.yaml:0: YAML" in errors
            assert {r["sync"] for r in st["resources"]} == {"OutOfSync"}
            assert {r["health"] for r in st["resources"] if r["kind"] == "Deployment"} == {
                "Healthy"
            }
            # the CLI in a pipe that closes early: no traceback
            piped = subprocess.run(
                f"{sys.executable} -m gitops status --server {url} -o json | head -c 20; "
                f"{sys.executable} -m gitops get pods --server {url} -o json | head -1",
                shell=True, capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr, (
                piped.stderr
            )
            time.sleep(2)  # traffic through the rejected commit's passes
            for name in ("bad-secret.yaml", "huge.yaml", "deep.yaml"):
                remote.delete(name)
            remote.write("web.yaml", web(images, "v2"), service("web", node_port, {"app": "web"}))
            fixed = remote.push("fix, and v2")
            wait_for(lambda: status(url).get("applied") == fixed, 60, 0.2)
            wait_for(lambda: load.seen[-20:] == [v2] * 20, 90, 0.2)
            assert len(load.seen) + len(load.failures) < 30_000  # the load was on throughout
        assert status(url)["applied"] == fixed and status(url)["result"] == "Succeeded"
        print(f"\ncrash test: {len(load.seen)} requests, {len(load.failures)} failed")
        assert load.failures == [], load.failures[:5]
        assert load.seen[0] == v1
        # secrets at rest: the state directory is its owner's only
        modes = {
            p: stat.S_IMODE(p.lstat().st_mode)
            for p in [state, *state.rglob("*")]
            if not p.is_symlink()
        }
        assert all(mode & 0o077 == 0 for mode in modes.values()), {
            str(p): oct(m) for p, m in modes.items() if m & 0o077
        }
    finally:
        stop_gitops(proc)


def _open_idle(address: tuple[str, int], count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        try:
            socks.append(socket.create_connection(address, timeout=5))
        except OSError:
            break  # the backlog is full: as far as a flood gets
    return socks


def test_a_thousand_idle_connections_at_a_descriptor_limit_of_1024(
    remote: GitRemote, images: Images, instance: str, tmp_path: Path
) -> None:
    remote.write("ns.yaml", namespace(NS))
    remote.write("web.yaml", deployment("web", NS, images["v1"], 1))
    remote.push("one")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        "prlimit", "--nofile=1024:1024", sys.executable, "-m", "gitops", "run",
        "--repo", str(remote.bare), "--instance", instance, "--state-dir", str(tmp_path / "state"),
        "--listen", f"127.0.0.1:{port}", "--interval", "60s",
    ]  # fmt: skip
    with (tmp_path / "gitops.log").open("a") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))  # this test's own sockets
    idle: list[socket.socket] = []
    try:
        wait_for(lambda: status(url).get("result") == "Succeeded", 60, 0.2)
        idle = _open_idle(("127.0.0.1", port), 1000)
        assert len(idle) >= 900, len(idle)
        started = time.monotonic()
        assert get(url + "/healthz") == {"status": "ok"}
        answered = time.monotonic() - started
        # the passes go on: a push is applied while the flood holds
        remote.write("web.yaml", deployment("web", NS, images["v2"], 1))
        pushed = remote.push("two")
        wait_for(
            lambda: status(url).get("applied") == pushed and status(url)["result"] == "Succeeded",
            60,
            0.2,
        )
        open_fds = len(os.listdir(f"/proc/{proc.pid}/fd"))
        print(
            f"\n{len(idle)} idle connections: /healthz answered in {answered:.2f}s, {open_fds} fds open"
        )
        assert answered < 5.0 and open_fds < 1024
        assert proc.poll() is None
    finally:
        for sock in idle:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        stop_gitops(proc)
    assert "Too many open files" not in (tmp_path / "gitops.log").read_text()


def test_two_instances_on_one_engine_with_the_same_names(
    remote: GitRemote, images: Images, engine: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Same namespace, same Deployment and Service names: each reconciler names what it makes
    on the engine with its instance, and both converge."""
    from tests.conftest import RUN_ID, kill_proxies, remove_instance

    names = [f"t{RUN_ID}a", f"t{RUN_ID}b"]

    def clean() -> None:
        kill_proxies(tmp_path)
        for name in names:
            remove_instance(engine, name)

    request.addfinalizer(clean)
    svc = service("web", 30000, {"app": "web"})
    svc["spec"] = {
        "selector": {"app": "web"},
        "ports": [{"port": 80, "targetPort": 8080}],
    }  # ClusterIP
    remote.write("ns.yaml", namespace(NS))
    remote.write("web.yaml", web(images, "v1"), svc)
    remote.push("web")
    procs, urls = [], []
    try:
        for name in names:
            port = free_port()
            urls.append(f"http://127.0.0.1:{port}")
            procs.append(
                start_gitops(remote.bare, name, tmp_path / name, port, tmp_path / f"{name}.log")
            )
        for url in urls:
            wait_for(
                lambda url=url: (
                    len(endpoints(url, "web")) == 3 and status(url).get("result") == "Succeeded"
                ),
                90,
                0.2,
            )
        for name in names:
            running = engine.containers.list(filters={"label": f"io.gitops.instance={name}"})
            assert len([c for c in running if c.labels.get("io.gitops.service") == "web"]) == 1
            assert len(running) >= 4  # 3 pods and the Service's name proxy
        for name in names:
            assert "Conflict" not in (tmp_path / f"{name}.log").read_text()
    finally:
        for proc in procs:
            stop_gitops(proc)


def test_a_repository_heavy_with_other_files_costs_no_memory(
    remote: GitRemote, images: Images, instance: str, tmp_path: Path
) -> None:
    """Fifty 4 MB binaries beside the manifests took the process to 1 GB: every blob under
    --path was read and raw snapshots were cached. Only manifests are read now."""
    remote.write("ns.yaml", namespace(NS))
    remote.push("namespace")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_gitops(remote.bare, instance, tmp_path / "state", port, tmp_path / "gitops.log")
    try:
        wait_for(lambda: status(url).get("result") == "Succeeded", 60, 0.2)
        usual = rss_kib(proc.pid)
        blobs = remote.work / "assets"
        blobs.mkdir()
        for i in range(50):
            (blobs / f"blob-{i}.bin").write_bytes(os.urandom(4 * 1024 * 1024))
        (blobs / "data.json.gz").write_bytes(os.urandom(4 * 1024 * 1024))
        heavy = remote.push("200 MB of assets")
        for i in range(3):  # and three more commits touching them, each a snapshot
            (blobs / f"blob-{i}.bin").write_bytes(os.urandom(4 * 1024 * 1024))
            heavy = remote.push(f"asset {i}")
        wait_for(lambda: status(url).get("applied") == heavy, 120, 0.2)
        peak = rss_kib(proc.pid, "VmHWM")
        print(
            f"\nRSS: usual {usual / 1024:.0f} MiB, peak with 216 MB of other files {peak / 1024:.0f} MiB"
        )
        assert peak - usual < 50 * 1024, (usual, peak)
        assert status(url)["result"] == "Succeeded"
    finally:
        stop_gitops(proc)


def test_the_engine_and_registry_run_in_sessions_of_their_own() -> None:
    """scripts/host-setup starts them detached (setsid): a Ctrl-C in the terminal that ran
    scripts/quickstart reaches neither."""
    found: dict[str, list[int]] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                comm = (proc / "comm").read_text().strip()
            except OSError:
                continue
            if comm in ("dockerd", "docker-registry"):
                found.setdefault(comm, []).append(int(proc.name))
    assert set(found) == {"dockerd", "docker-registry"}
    for comm, pids in found.items():
        for pid in pids:
            assert os.getsid(pid) == pid, f"{comm} ({pid}) shares the session {os.getsid(pid)}"
            assert os.getsid(pid) != os.getsid(0)


def test_signals_only_a_clean_stop_stops_the_proxy(
    remote: GitRemote, images: Images, node_port: int, instance: str, tmp_path: Path
) -> None:
    """SIGKILL leaves the Service proxy serving (the next run adopts it); SIGTERM stops it."""
    remote.write("ns.yaml", namespace(NS))
    remote.write("web.yaml", web(images, "v1"), service("web", node_port, {"app": "web"}))
    remote.push("web v1")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_gitops(remote.bare, instance, tmp_path / "state", port, tmp_path / "gitops.log")
    wait_for(lambda: len(endpoints(url, "web")) == 3, 60, 0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert fetch(node_port)  # still served
    proc = start_gitops(remote.bare, instance, tmp_path / "state", port, tmp_path / "gitops.log")
    wait_for(lambda: status(url).get("result") == "Succeeded", 60, 0.2)
    stop_gitops(proc)
    with pytest.raises(OSError):
        fetch(node_port)


__all__ += ["API_TOKEN", "Iterator", "gitops"]
