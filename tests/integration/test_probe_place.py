"""Where probes run, against the real engine: from this machine to the pod's address (no engine
call per probe, and a lone container needs no pause container), or as an exec in the pod's
pause container. Both give the same verdicts."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from gitops.act.observe import group_pods
from gitops.model.templates import (
    PROBES_HERE,
    PROBES_IN_NODE,
    ContainerSpec,
    PodTemplate,
    Port,
    ProbeSpec,
)
from gitops.nodes.docker import DockerNode
from gitops.probing.prober import Prober


def _template(image: str, name: str, period: int) -> PodTemplate:
    probe = ProbeSpec("http", 8080, "/healthz", period=period, failure_threshold=1)
    spec = ContainerSpec("web", image, "IfNotPresent", ports=(Port(8080),), readiness=probe)
    return PodTemplate(
        namespace="probes",
        deployment=name,
        template_hash=name,
        containers=(spec,),
        labels=(("app", name),),
        grace_seconds=2,
        commit="c0ffee",
    )


@pytest.mark.parametrize("where", [PROBES_HERE, PROBES_IN_NODE])
def test_probes_from_here_or_in_the_pod(instance: str, images: Any, where: str) -> None:
    node = DockerNode("local", instance=instance, probes=where)
    node.ensure_network("probes")
    node.create_pod(_template(images["v1"], "good", 30), "good-1")
    node.create_pod(_template(images["v2-unready"], "bad", 30), "bad-1")
    pods = {p.deployment: p for p in group_pods(node.list_containers())}
    good, bad = (pods[d].app_containers()[0].id for d in ("good", "bad"))
    execs: list[str] = []
    stop = threading.Event()
    events = node.api.events(
        since=int(time.time()) - 1, filters={"type": "container", "event": "exec_create"},
        decode=True,
    )  # fmt: skip

    def count() -> None:
        for event in events:
            if stop.is_set():
                return
            execs.append(str(event.get("id")))

    threading.Thread(target=count, daemon=True).start()
    prober = Prober({"local": node}, time.time)
    prober.update(pods.values())
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (prober.ready(good) and prober.failed(bad)):
            prober.tick()
            time.sleep(0.1)
        assert prober.ready(good) is True
        # A 404 is the server saying no: failed on the first probe, not after its 30 s period
        # (a refused connection in the first period is looked at again instead).
        assert "404" in prober.failed(bad), prober.failed(bad)
        time.sleep(0.5)  # the engine's events have arrived
        ours = {c.id for p in pods.values() for c in p.containers}
        ran_in_pod = [cid for cid in execs if cid in ours]
        if where == PROBES_HERE:
            assert ran_in_pod == []
            assert all(p.infra is None and len(p.containers) == 1 for p in pods.values())
            assert all(p.ip and p.holder == p.containers[0] for p in pods.values())
        else:  # busybox for the probe: in the pause container, which holds the network
            assert all(p.infra is not None and p.holder == p.infra for p in pods.values())
            assert len(ran_in_pod) >= 2 and set(ran_in_pod) <= {
                p.infra.id for p in pods.values() if p.infra
            }
    finally:
        stop.set()
        events.close()
        for pod in group_pods(node.list_containers()):
            node.remove_pod(pod)
        node.remove_network("probes")
        node.close()
