"""One contract, two backends: the in-memory node must behave as the Docker adapter does."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from gitops.act.observe import group_pods
from gitops.errors import ImagePullError
from gitops.model.labels import L_INSTANCE, L_POD, JobRecord
from gitops.model.live import PodInfo
from gitops.model.logs import LogQuery
from gitops.model.templates import Claim, ContainerSpec, Mount, PodTemplate
from gitops.nodes.base import CHANGED, CONNECTED, STOPPED, Node, last_lines
from gitops.nodes.docker import DockerNode
from gitops.nodes.memory import MemoryNode
from tests.conftest import wait_until


@pytest.fixture(params=["memory", "docker"])
def backend(request: pytest.FixtureRequest) -> Iterator[tuple[Node, str, str]]:
    """(node, a pullable image, an image that does not exist)."""
    if request.param == "memory":
        yield MemoryNode("local", {"reg/web:v1"}, instance="contract"), "reg/web:v1", "reg/web:nope"
    else:
        images: Any = request.getfixturevalue("images")
        node: Node = request.getfixturevalue("node")
        yield node, images["v1"], images.missing


def template(image: str, namespace: str = "contract") -> PodTemplate:
    return PodTemplate(
        namespace=namespace,
        deployment="web",
        template_hash="abc123",
        containers=(ContainerSpec("web", image, "IfNotPresent"),),
        labels=(("app", "web"),),
        grace_seconds=2,
        commit="c0ffee",
    )


def test_pod_lifecycle(backend: tuple[Node, str, str]) -> None:
    node, image, _ = backend
    node.ensure_network("contract")
    node.ensure_network("contract")  # idempotent
    assert "contract" in node.list_networks()
    if not node.has_image(image):
        node.pull(image)
    assert node.has_image(image)
    node.create_pod(template(image), "web-abc123-aaaaa")
    [pod] = group_pods(node.list_containers())
    assert (pod.namespace, pod.deployment, pod.name) == ("contract", "web", "web-abc123-aaaaa")
    assert (pod.template_hash, pod.commit, pod.node) == ("abc123", "c0ffee", "local")
    assert pod.running
    [c] = pod.app_containers()
    assert c.labels[L_POD] == "web-abc123-aaaaa" and c.labels[L_INSTANCE] == node.instance
    # A lone container without probes to run in the pod holds the pod's network itself.
    assert pod.infra is None and pod.holder == c and c.state == "running"
    assert c.labels["io.gitops.label.app"] == "web"
    node.remove_pod(pod)
    assert node.list_containers() == []
    node.remove_network("contract")
    node.remove_network("contract")  # idempotent
    assert "contract" not in node.list_networks()


def test_containers_sharing_a_pod_share_the_network_of_its_pause_container(
    backend: tuple[Node, str, str],
) -> None:
    node, image, _ = backend
    node.ensure_network("contract")
    if not node.has_image(image):
        node.pull(image)
    two = replace(
        template(image),
        containers=(
            ContainerSpec("web", image, "IfNotPresent"),
            ContainerSpec("side", image, "IfNotPresent", command=("sleep", "600")),
        ),
    )
    node.create_pod(two, "web-abc123-ccccc")
    try:
        [pod] = group_pods(node.list_containers())
        assert pod.infra is not None and pod.holder == pod.infra and pod.infra.state == "running"
        assert sorted(c.labels["io.gitops.container"] for c in pod.app_containers()) == [
            "side",
            "web",
        ]
        assert pod.running
    finally:
        node.remove_pod(group_pods(node.list_containers())[0])
        node.remove_network("contract")


def test_pull_of_a_missing_image_fails_clearly(backend: tuple[Node, str, str]) -> None:
    node, _, missing = backend
    with pytest.raises(ImagePullError) as info:
        node.pull(missing)
    assert missing.rsplit(":", 1)[0] in str(info.value) or "manifest unknown" in str(info.value)


def test_start_container_restarts_an_exited_one(backend: tuple[Node, str, str]) -> None:
    node, image, _ = backend
    node.ensure_network("contract")
    if not node.has_image(image):
        node.pull(image)
    node.create_pod(template(image), "web-abc123-bbbbb")
    [pod] = group_pods(node.list_containers())
    cid = pod.app_containers()[0].id
    if isinstance(node, MemoryNode):
        node.crash(cid)
    else:
        import docker

        client = docker.from_env(version="auto")
        client.containers.get(cid).kill()
        client.close()
    [stopped] = group_pods(node.list_containers())
    assert not stopped.running
    node.start_container(cid)
    [again] = group_pods(node.list_containers())
    assert again.running
    node.remove_pod(again)
    node.remove_network("contract")


def test_other_instances_are_invisible(backend: tuple[Node, str, str]) -> None:
    node, image, _ = backend
    node.ensure_network("contract")
    if not node.has_image(image):
        node.pull(image)
    node.create_pod(template(image), "web-abc123-ccccc")
    if isinstance(node, MemoryNode):
        other: Node = MemoryNode("local", set(), instance="someone-else")
        other.containers.update(node.containers)  # type: ignore[attr-defined]
    else:
        from gitops.nodes.docker import DockerNode

        other = DockerNode("local", instance="someone-else")
    assert other.list_containers() == []
    assert "contract" not in other.list_networks()
    [pod] = group_pods(node.list_containers())
    node.remove_pod(pod)
    node.remove_network("contract")


def test_capacity_is_the_engines_machine(backend: tuple[Node, str, str]) -> None:
    node, _, _ = backend
    node.ping()
    cap = node.capacity()
    assert cap.cpu_millis >= 1000 and cap.cpu_millis % 1000 == 0
    assert cap.memory > 64 * 1024**2 and cap.version


def test_an_exit_is_told_once_the_container_list_shows_it(node: DockerNode, images: Any) -> None:
    """The engine sends "die" about 0.1 s before its list stops saying "running": the pass an
    exit wakes must see the container exited, or the exit waits for some other wake-up."""
    node.ensure_network("contract")
    node.create_pod(template(images["v1"]), "web-abc123-bbbbb")
    [pod] = group_pods(node.list_containers())
    [app] = pod.app_containers()
    stop = threading.Event()
    seen: list[tuple[str, str, str]] = []

    def told(action: str, container_id: str) -> None:
        if action in ("die", "oom", "stop"):
            states = {c.id: c.state for c in node.list_containers()}
            seen.append((action, container_id, states.get(app.id, "gone")))

    watcher = threading.Thread(target=node.watch, args=(told, stop), daemon=True)
    watcher.start()
    try:
        time.sleep(0.5)  # the event stream is open
        node.api.kill(app.id)
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen and seen[0] == ("die", app.id, "exited"), seen
    finally:
        stop.set()
        node.remove_pod(group_pods(node.list_containers())[0])
        node.remove_network("contract")


def test_who_it_is(backend: tuple[Node, str, str]) -> None:
    node, _, _ = backend
    assert node.name == "local" and node.instance and node.probes in ("auto", "here", "node")


def test_restart_and_exec(backend: tuple[Node, str, str]) -> None:
    from gitops.errors import GitopsError

    node, image, _ = backend
    node.ensure_network("contract")
    if not node.has_image(image):
        node.pull(image)
    node.create_pod(template(image), "web-abc123-ddddd")
    try:
        [pod] = group_pods(node.list_containers())
        cid = pod.app_containers()[0].id
        node.restart_container(cid, 1)
        [again] = group_pods(node.list_containers())
        assert again.running and again.app_containers()[0].id == cid  # the same container
        code, _ = node.exec(cid, ["true"], 5.0)
        assert code == 0
        with pytest.raises(GitopsError):
            node.exec("0" * 64, ["true"], 5.0)
    finally:
        node.remove_pod(group_pods(node.list_containers())[0])
        node.remove_network("contract")


def test_a_services_name_proxy(backend: tuple[Node, str, str]) -> None:
    node, _, _ = backend
    node.ensure_network("contract")

    def proxies() -> list[Any]:
        return [c for c in node.list_containers() if c.meta.service == "web"]

    try:
        node.ensure_service("contract", "web", [80])
        [one] = proxies()
        assert one.state == "running" and one.meta.service_ports == (80,)
        assert one.meta.namespace == "contract"
        node.set_service_endpoints("contract", "web", {"endpoints-80": b"10.0.0.1:8080\n"})
        node.ensure_service("contract", "web", [80, 81])  # made again for new ports
        [two] = proxies()
        assert two.meta.service_ports == (80, 81)
        assert group_pods(node.list_containers()) == ()  # no pod
        node.remove_service("contract", "web")
        node.remove_service("contract", "web")  # idempotent
        assert proxies() == []
    finally:
        node.remove_service("contract", "web")
        node.remove_network("contract")


def test_the_nodes_own_proxy(backend: tuple[Node, str, str]) -> None:
    from gitops.model.labels import L_PROXY
    from gitops.nodes.proxyimage import ADMIN_SOCKET
    from gitops.traffic.balancer import render
    from gitops.traffic.nodeproxy import MAXCONN

    node, _, _ = backend
    config = render([], ["127.0.0.1"], ADMIN_SOCKET, MAXCONN).encode()

    def proxies() -> list[Any]:
        return [c for c in node.list_containers() if c.labels.get(L_PROXY) == "true"]

    try:
        node.ensure_proxy(config)
        node.ensure_proxy(config)  # in place: still one
        [proxy] = proxies()
        assert proxy.state == "running" and not proxy.meta.pod
    finally:
        node.remove_proxy()
        node.remove_proxy()  # idempotent
    assert proxies() == []


@contextlib.contextmanager
def watching(node: Node) -> Iterator[list[tuple[str, str]]]:
    """What ``node.watch`` tells, as it tells it; after, the pods and network are gone."""
    stop = threading.Event()
    told: list[tuple[str, str]] = []
    watcher = threading.Thread(
        target=node.watch, args=(lambda a, c: told.append((a, c)), stop), daemon=True
    )
    watcher.start()
    try:
        yield told
    finally:
        stop.set()
        watcher.join(timeout=5)
        for left in group_pods(node.list_containers()):
            node.remove_pod(left)
        node.remove_network("contract")


def test_watch_tells_a_container_removed_out_of_band(backend: tuple[Node, str, str]) -> None:
    node, image, _ = backend
    node.ensure_network("contract")
    if not node.has_image(image):
        node.pull(image)
    node.create_pod(template(image), "web-abc123-eeeee")
    [pod] = group_pods(node.list_containers())
    cid = pod.app_containers()[0].id
    with watching(node) as told:
        time.sleep(0.5)  # the event stream is open
        if isinstance(node, MemoryNode):
            node.remove(cid)
        else:
            import docker

            client = docker.from_env(version="auto")
            client.containers.get(cid).remove(force=True)
            client.close()
        wait_until(lambda: any(c == cid and a == "destroy" for a, c in told), 10, 0.05)


def test_watch_tells_it_is_open_then_each_change_a_look_shows_and_no_exec(
    backend: tuple[Node, str, str],
) -> None:
    """What the dashboard's shared look trusts: once the stream says it is open, a container
    made, started or removed is told (the reconciler's own steps too), and a probe's exec,
    which changes nothing listed, is not."""
    node, image, _ = backend
    node.ensure_network("contract")
    if not node.has_image(image):
        node.pull(image)
    with watching(node) as told:
        wait_until(lambda: told, 10, 0.05)
        assert told[0] == (CONNECTED, "")
        node.create_pod(template(image), "web-abc123-fffff")
        [pod] = group_pods(node.list_containers())
        cid = pod.app_containers()[0].id
        wait_until(lambda: ("start", cid) in told, 10, 0.05)
        assert ("create", cid) in told and ("start", cid) in told, told
        assert told.index(("create", cid)) < told.index(("start", cid))
        before = len(told)
        assert node.exec(cid, ["true"], 10)[0] == 0
        time.sleep(0.5)  # an exec's events would have come by now
        assert told[before:] == [], told[before:]
        node.remove_pod(pod)
        wait_until(lambda: ("destroy", cid) in told, 10, 0.05)
        assert ("destroy", cid) in told and all(a in (*STOPPED, *CHANGED) for a, _ in told[1:])


def test_a_claims_volume_is_made_on_first_use_and_outlives_its_pods(
    backend: tuple[Node, str, str],
) -> None:
    node, image, _ = backend
    node.ensure_network("contract")
    if not node.has_image(image):
        node.pull(image)
    claim = Claim("data", "local", "1Gi", ("ReadWriteOnce",))
    spec = ContainerSpec("web", image, "IfNotPresent", mounts=(Mount("claim", "data", "/data"),))
    t = replace(template(image), containers=(spec,), claims=(claim,))
    node.create_pod(t, "web-abc123-aaaaa")
    node.create_pod(t, "web-abc123-aaaab")  # the same volume, not a second one
    [vol] = node.list_volumes()
    assert (vol.node, vol.key, vol.meta.size, vol.meta.access_modes) == (
        "local", ("contract", "data"), "1Gi", ("ReadWriteOnce",)
    )  # fmt: skip
    for pod in group_pods(node.list_containers()):
        assert pod.claims == ("data",)
        node.remove_pod(pod)
    assert [v.name for v in node.list_volumes()] == [vol.name]  # data outlives the pods
    node.remove_volume(vol.name)
    assert node.list_volumes() == []


def test_a_finished_jobs_record_is_written_once_listed_and_forgotten(
    backend: tuple[Node, str, str],
) -> None:
    node, _, _ = backend
    rec = JobRecord("contract", "migrate", "abc123", "Failed", "BackoffLimitExceeded", 0, 7,
                    100.5, 200.25, "c0ffee", message="Job has reached the specified backoff limit")  # fmt: skip
    assert node.list_records() == []
    node.write_record(rec)
    node.write_record(replace(rec, result="Complete"))  # the first end stays: written once
    assert node.list_records() == [replace(rec, node="local")]
    other = replace(rec, template_hash="def456", result="Complete", reason="CompletionsReached")
    node.write_record(other)
    assert sorted(r.template_hash for r in node.list_records()) == ["abc123", "def456"]
    node.remove_record(rec)
    node.remove_record(rec)  # idempotent
    assert [r.template_hash for r in node.list_records()] == ["def456"]
    node.remove_record(other)
    assert node.list_records() == []


def _exited(node: Node, image: str, script: str, code: int, output: str = "") -> PodInfo:
    """A lone-container pod running ``script`` (which exits with ``code``), once exited; the
    memory engine's container is told to exit, having written ``output``."""
    node.ensure_network("contract")
    if not node.has_image(image):
        node.pull(image)
    spec = ContainerSpec("web", image, "IfNotPresent", command=("sh", "-c", script))
    node.create_pod(replace(template(image), containers=(spec,), restart_policy="Never"),
                    "web-abc123-aaaaa")  # fmt: skip
    if isinstance(node, MemoryNode):
        cid = group_pods(node.list_containers())[0].containers[0].id
        node.output[cid] = output
        node.crash(cid, code)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        [pod] = group_pods(node.list_containers())
        if pod.app_containers()[0].state == "exited":
            return pod
        time.sleep(0.1)
    raise AssertionError("the container did not exit")


def test_an_exited_containers_code_and_time_are_read_from_the_listing(
    backend: tuple[Node, str, str],
) -> None:
    node, image, _ = backend
    pod = _exited(node, image, "exit 7", 7)
    [c] = pod.app_containers()
    assert (pod.restart_policy, pod.phase, c.exit_code) == ("Never", "Failed", 7)
    assert abs(c.finished - time.time()) < 5
    node.remove_pod(pod)
    node.remove_network("contract")


def test_a_containers_last_log_lines_are_read_running_or_not(
    backend: tuple[Node, str, str],
) -> None:
    node, image, _ = backend
    script = "for i in 1 2 3 4 5; do echo line $i; done; sleep 0.3; echo oops >&2; exit 1"
    output = "".join(f"line {i}\n" for i in range(1, 6)) + "oops\n"
    pod = _exited(node, image, script, 1, output)
    [c] = pod.app_containers()
    assert last_lines(node, c.id, 3) == ["line 4", "line 5", "oops"]
    every = list(node.read_logs(c.id, LogQuery()))
    assert [x.text for x in every] == output.splitlines()
    assert all(abs(x.time - time.time()) < 30 for x in every)  # each line has its time
    assert list(node.read_logs(c.id, LogQuery(since=time.time() + 60))) == []
    assert list(node.read_logs(c.id, LogQuery(tail=0))) == []
    node.remove_pod(pod)
    node.remove_network("contract")


def test_a_followed_log_cut_by_a_quiet_spell_goes_on_with_each_line_once(
    instance: str, images: Any
) -> None:
    """The engine's stream of a quiet container ends at the client's read timeout; it is
    opened again from the last line's time. What the engine sends again is skipped, and only
    that: lines written in the same instant (one float apart or not at all) all arrive."""
    node = DockerNode("local", instance=instance, timeout=2)
    script = "echo a; echo b; echo b; sleep 3.5; echo c; echo c; echo d; sleep 60"
    try:
        node.ensure_network("contract")
        spec = ContainerSpec("web", images["v1"], "IfNotPresent", command=("sh", "-c", script))
        node.create_pod(replace(template(images["v1"]), containers=(spec,)), "web-abc123-ggggg")
        [pod] = group_pods(node.list_containers())
        stream = node.read_logs(pod.app_containers()[0].id, LogQuery(follow=True))
        got: list[str] = []
        deadline = time.monotonic() + 20
        for line in stream:
            got.append(line.text)
            if line.text == "d" or time.monotonic() > deadline:
                break
        stream.close()
        assert got == ["a", "b", "b", "c", "c", "d"]
    finally:
        for left in group_pods(node.list_containers()):
            node.remove_pod(left)
        node.remove_network("contract")
        node.close()


def test_the_instance_before_a_restart_is_read_as_previous(
    backend: tuple[Node, str, str],
) -> None:
    """Restarted in place, a container's current log starts at its last start; what it
    wrote before is its previous instance's, as ``kubectl logs --previous`` reads it: only
    the one instance before, and none for a container never restarted."""
    node, image, _ = backend
    script = "echo run at $(cat /proc/uptime); echo bye; exit 3"
    pod = _exited(node, image, script, 3, "run at 1\nbye\n")
    [c] = pod.app_containers()
    first = [x.text for x in node.read_logs(c.id, LogQuery())]
    assert len(first) == 2 and list(node.read_logs(c.id, LogQuery(previous=True))) == []
    runs = [first]
    for run in (2, 3):
        time.sleep(1.1)  # the engine's times: the next run starts in a later second
        node.restart_container(c.id, 1)
        if isinstance(node, MemoryNode):
            node.output[c.id] = f"run at {run}\nbye\n"
            node.crash(c.id, 3)
        _wait_exited(node, c.id)
        assert [x.text for x in node.read_logs(c.id, LogQuery(previous=True))] == runs[-1]
        assert [x.text for x in node.read_logs(c.id, LogQuery(previous=True, tail=1))] == ["bye"]
        now = [x.text for x in node.read_logs(c.id, LogQuery())]
        assert len(now) == 2 and now not in runs and now[1] == "bye"
        runs.append(now)
    node.remove_pod(group_pods(node.list_containers())[0])
    node.remove_network("contract")


def test_a_followed_log_streams_new_lines_until_the_container_stops(
    backend: tuple[Node, str, str],
) -> None:
    node, image, _ = backend
    node.ensure_network("contract")
    if not node.has_image(image):
        node.pull(image)
    script = "for i in 1 2 3; do echo tick $i; sleep 0.4; done"
    spec = ContainerSpec("web", image, "IfNotPresent", command=("sh", "-c", script))
    node.create_pod(replace(template(image), containers=(spec,), restart_policy="Never"),
                    "web-abc123-fffff")  # fmt: skip
    [pod] = group_pods(node.list_containers())
    cid = pod.app_containers()[0].id
    if isinstance(node, MemoryNode):

        def write() -> None:
            for i in (1, 2, 3):
                node.output[cid] = node.output.get(cid, "") + f"tick {i}\n"
                time.sleep(0.4)
            node.crash(cid, 0)

        threading.Thread(target=write, daemon=True).start()
    started = time.monotonic()
    seen = []
    for line in node.read_logs(cid, LogQuery(follow=True)):
        seen.append((line.text, time.monotonic() - started))
    assert [text for text, _ in seen] == ["tick 1", "tick 2", "tick 3"]
    assert seen[-1][1] - seen[0][1] > 0.5  # streamed as written, not read at the end
    node.remove_pod(group_pods(node.list_containers())[0])
    node.remove_network("contract")


def _wait_exited(node: Node, cid: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = [c for c in node.list_containers() if c.id == cid]
        if found and found[0].state == "exited":
            return
        time.sleep(0.1)
    raise AssertionError("the container did not exit")


@contextlib.contextmanager
def _running(node: Node, image: str, name: str) -> Iterator[str]:
    """A running lone-container pod for the block: its container's id."""
    node.ensure_network("contract")
    if not node.has_image(image):
        node.pull(image)
    node.create_pod(template(image), name)
    try:
        [pod] = group_pods(node.list_containers())
        yield pod.app_containers()[0].id
    finally:
        node.remove_pod(group_pods(node.list_containers())[0])
        node.remove_network("contract")


def test_what_a_running_container_uses_is_read_and_a_stopped_one_is_left_out(
    backend: tuple[Node, str, str],
) -> None:
    node, image, _ = backend
    with _running(node, image, "web-abc123-ggggg") as cid:
        [(cpu, memory)] = node.usage([cid]).values()
        assert cpu >= 0 and 0 < memory < 1 << 30
        assert node.usage([]) == {}
    assert node.usage([cid]) == {}  # gone: nothing to say of it


def test_an_interactive_command_reads_stdin_and_says_how_it_ended(
    backend: tuple[Node, str, str],
) -> None:
    node, image, _ = backend
    with _running(node, image, "web-abc123-hhhhh") as cid:
        session = node.exec_stream(cid, ["sh", "-c", "cat; exit 3"], tty=False)
        session.write(b"hello\n")
        session.close_stdin()
        out = b""
        while True:
            _, data = session.read()
            if not data:
                break
            out += data
        assert out == b"hello\n" and session.exit_code() == 3
        session.close()
        tty = node.exec_stream(cid, ["sh"], tty=True)
        tty.resize(100, 30)
        tty.write(b"exit 0\n")
        seen = b""
        while b"exit 0" not in seen:  # a terminal echoes what is typed
            _, data = tty.read()
            assert data, seen
            seen += data
        tty.close()
