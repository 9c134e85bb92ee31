"""Fixtures for tests against real components: dockerd, the local registry, git.

Every test that touches Docker gets its own reconciler *instance* label, so it sees and
manages only its own containers (never a user's, never another test's), and its teardown
removes every container, network and volume carrying that label. Images are built once per
session under a unique registry repository and deleted from the registry and the engine at
the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from gitops.config.settings import NodeConfig, Settings
from gitops.decide.actions import counter_suffix
from gitops.model.labels import L_INFRA, L_INSTANCE
from gitops.nodes.docker import DockerNode
from gitops.probing.prober import Prober
from gitops.reconciler import Reconciler
from gitops.runner import compose
from gitops.source.git import GitSource
from gitops.state.history import History
from gitops.traffic.clusterdns import ClusterDns

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = "127.0.0.1:5000"
RUN_ID = secrets.token_hex(3)
# Every `gitops run` a test starts, and every CLI call it makes, share this API token (the
# processes inherit the environment), as an operator's shell and service would.
API_TOKEN = secrets.token_urlsafe(16)
os.environ["GITOPS_API_TOKEN"] = API_TOKEN


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.test",
        "GIT_COMMITTER_NAME": "Test Author",
        "GIT_COMMITTER_EMAIL": "author@example.test",
    }
    out = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


@dataclass
class GitRemote:
    """A bare repository (the remote gitops watches) and a work clone a test commits in."""

    bare: Path
    work: Path

    def write(self, path: str, *docs: dict[str, Any]) -> None:
        target = self.work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump_all(docs, sort_keys=False))

    def write_text(self, path: str, text: str) -> None:
        target = self.work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def delete(self, path: str) -> None:
        (self.work / path).unlink()

    def push(self, message: str) -> str:
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "--allow-empty", "-m", message)
        git(self.work, "push", "-q", "origin", "main")
        return git(self.work, "rev-parse", "HEAD")

    def revert(self, sha: str) -> str:
        git(self.work, "revert", "--no-edit", sha)
        git(self.work, "push", "-q", "origin", "main")
        return git(self.work, "rev-parse", "HEAD")


@pytest.fixture
def remote(tmp_path: Path) -> GitRemote:
    bare, work = tmp_path / "remote.git", tmp_path / "work"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(tmp_path, "clone", "-q", str(bare), str(work))
    git(work, "checkout", "-q", "-b", "main")
    return GitRemote(bare, work)


@pytest.fixture(scope="session")
def engine() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env(version="auto")
        client.ping()
    except Exception as exc:  # pragma: no cover - a setup problem, said plainly
        pytest.fail(f"no Docker engine answers ({exc}); run scripts/host-setup first")
    yield client
    client.close()


def _registry_delete(repo: str, tag: str) -> None:
    base = f"http://{REGISTRY}/v2/{repo}/manifests/"
    req = urllib.request.Request(
        base + tag,
        method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        digest = resp.headers["Docker-Content-Digest"]
    urllib.request.urlopen(
        urllib.request.Request(base + digest, method="DELETE"), timeout=10
    ).close()


TEST_REPO = "gitops-test/web"


@dataclass(frozen=True)
class Images:
    """Image references of this run: one registry repository, tags unique to the run."""

    repo: str
    run: str

    def __getitem__(self, version: str) -> str:
        return f"{self.repo}:{version}-{self.run}"

    @property
    def missing(self) -> str:
        return f"{self.repo}:does-not-exist-{self.run}"


@pytest.fixture(scope="session")
def images(engine: docker.DockerClient) -> Iterator[Images]:
    """Test images v1 and v2 pushed to the local registry; deleted from it and the engine after."""
    imgs = Images(f"{REGISTRY}/{TEST_REPO}", RUN_ID)
    try:
        urllib.request.urlopen(f"http://{REGISTRY}/v2/", timeout=5).close()
    except OSError as exc:  # pragma: no cover
        pytest.fail(f"no registry on {REGISTRY} ({exc}); run scripts/host-setup first")
    versions = [f"v1-{RUN_ID}", f"v2-{RUN_ID}", f"v2-unready-{RUN_ID}"]
    subprocess.run([str(ROOT / "scripts" / "build-images"), imgs.repo, *versions], check=True)
    yield imgs
    for tag in versions:
        with contextlib.suppress(OSError):
            _registry_delete(TEST_REPO, tag)
        with contextlib.suppress(docker.errors.ImageNotFound):
            engine.images.remove(f"{imgs.repo}:{tag}", force=True)


def remove_instance(engine: docker.DockerClient, instance: str) -> None:
    flt: dict[str, str | list[str] | bool] = {"label": f"{L_INSTANCE}={instance}"}
    for c in engine.containers.list(all=True, filters=flt):
        c.remove(force=True, v=True)
    for n in engine.networks.list(filters=flt):
        n.remove()
    for v in engine.volumes.list(filters=flt):
        v.remove(force=True)


def kill_proxies(under: Path) -> int:
    """Stop service proxies (haproxy) whose files are under ``under``: one outlives a
    ``gitops run`` that was killed, by design. Returns how many were running."""
    found = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if argv and argv[0].endswith(b"haproxy") and str(under).encode() in b" ".join(argv):
                found += 1
                os.kill(int(proc.name), signal.SIGKILL)
    return found


@pytest.fixture
def instance(engine: docker.DockerClient, tmp_path: Path) -> Iterator[str]:
    name = f"t{RUN_ID}{secrets.token_hex(2)}"
    yield name
    kill_proxies(tmp_path)
    remove_instance(engine, name)


@pytest.fixture
def node(instance: str) -> Iterator[DockerNode]:
    n = DockerNode("local", instance=instance)
    yield n
    n.close()


GRPC_REPO = "gitops-test/grpc-health"


@pytest.fixture(scope="session")
def grpc_images(engine: docker.DockerClient) -> Iterator[Images]:
    """The gRPC service stand-in (images/grpc-health), serving on 8080 by default and, tagged
    redis-* and cart-*, on 6379 and 7070 (services that take no PORT); built once per run,
    deleted after."""
    imgs = Images(f"{REGISTRY}/{GRPC_REPO}", RUN_ID)
    builds = {"app": "8080", "redis": "6379", "cart": "7070"}
    for version, port in builds.items():
        subprocess.run(
            [
                str(ROOT / "scripts" / "build-images"),
                "--grpc",
                imgs.repo,
                imgs[version].rsplit(":", 1)[1],
                port,
            ],
            check=True,
        )
    yield imgs
    for version in builds:
        tag = imgs[version].rsplit(":", 1)[1]
        with contextlib.suppress(OSError):
            _registry_delete(GRPC_REPO, tag)
        with contextlib.suppress(docker.errors.ImageNotFound):
            engine.images.remove(imgs[version], force=True)


@pytest.fixture
def make_reconciler(tmp_path: Path, remote: GitRemote, instance: str) -> Iterator[Any]:
    made: list[DockerNode] = []

    def make(
        state: str = "state", probes: bool = False, dns: bool = False, **overrides: Any
    ) -> Reconciler:
        """``dns``: with the cluster DNS, as ``gitops run`` serves it."""
        overrides.setdefault("nodes", (NodeConfig("local"),))
        settings = Settings(
            repo=str(remote.bare), state_dir=tmp_path / state, instance=instance, **overrides
        )
        node = DockerNode(
            "local", instance=instance, gpus=settings.nodes[0].gpus, cluster_dns=dns,
            volume_drivers={c.name: (c.driver, c.options) for c in settings.storage_classes},
        )  # fmt: skip
        made.append(node)
        source = GitSource(
            settings.repo, settings.state_dir / "source", branch=settings.branch, path=settings.path
        )
        prober = None
        made_rec: list[Reconciler] = []
        if probes:  # as gitops run wires it: Services follow readiness while a pass is busy
            prober = Prober(
                {node.name: node},
                time.time,
                lambda _: made_rec[0].refresh_endpoints() if made_rec else None,
            )
            prober.start(stop)
        server = ClusterDns() if dns else None
        if server is not None:
            servers.append(server)
        rec = compose(
            settings, source, [node], History(settings.state_dir), prober=prober, dns=server
        )
        made_rec.append(rec)
        return rec

    stop = threading.Event()
    servers: list[ClusterDns] = []
    yield make
    stop.set()
    for server in servers:
        server.stop()
    for n in made:
        n.close()


@contextlib.contextmanager
def reconciling(reconciler: Reconciler, limit: float = 120.0) -> Iterator[list[Any]]:
    """Run passes in the background as ``gitops run`` would (requeue, else every 0.5 s)."""
    stop = threading.Event()
    outcomes: list[Any] = []

    def loop() -> None:
        deadline = time.monotonic() + limit
        while not stop.is_set() and time.monotonic() < deadline:
            outcome = reconciler.reconcile("test")
            outcomes.append(outcome)
            stop.wait(min(outcome.requeue_after or 0.5, 0.5))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield outcomes
    finally:
        stop.set()
        thread.join(timeout=30)


def wait_until(predicate: Any, timeout: float, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def start_gitops(
    repo: Path, instance: str, state: Path, port: int, log: Path, extra: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    """``gitops run`` as a user runs it. The poll is 60 s away, so every reaction a test sees
    comes from the ref watch, the engine's events or the prober."""
    cmd = [
        sys.executable, "-m", "gitops", "run", "--repo", str(repo), "--instance", instance,
        "--state-dir", str(state), "--listen", f"127.0.0.1:{port}", "--interval", "60s",
        *extra,
    ]  # fmt: skip
    with log.open("a") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)


def stop_gitops(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def converge(reconciler: Reconciler, passes: int = 10) -> Any:
    """Reconcile until a pass asks for no follow-up (bounded)."""
    outcome = None
    for _ in range(passes):
        outcome = reconciler.reconcile("test")
        if outcome.requeue_after is None:
            return outcome
    return outcome


def containers_of(engine: docker.DockerClient, instance: str, infra: bool = True) -> list[Any]:
    """Containers of a test's instance; ``infra=False`` leaves out the pods' pause containers."""
    for _ in range(5):  # the list inspects each container: one may vanish in between
        try:
            found = engine.containers.list(all=True, filters={"label": f"{L_INSTANCE}={instance}"})
        except docker.errors.NotFound:
            continue
        return [c for c in found if infra or c.labels.get(L_INFRA) != "true"]
    raise AssertionError("containers kept vanishing while being listed")


__all__ = [
    "GitRemote",
    "Images",
    "containers_of",
    "converge",
    "counter_suffix",
    "git",
    "json",
    "shutil",
]


def postgres_admin_url() -> str:
    """The tests' own server (scripts/postgres, started by scripts/host-setup)."""
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "postgres"), "url"], capture_output=True, text=True
    )
    if out.returncode != 0:
        pytest.fail(f"no test PostgreSQL (run scripts/host-setup): {out.stderr.strip()}")
    return out.stdout.strip()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A database of this test's own on the tests' PostgreSQL server, dropped after it."""
    import psycopg

    admin = postgres_admin_url()
    name = f"gitops_test_{RUN_ID}_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.rpartition("/")[0] + "/" + name
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
