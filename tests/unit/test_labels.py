"""The container-label codec round-trips: what ``encode`` writes, ``decode`` reads back, for any
template; and unreadable labels (an older version's, a hand-edited container) give defaults."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gitops.model import labels as codec
from gitops.model.live import ContainerInfo, PodInfo
from gitops.model.templates import ContainerSpec, PodTemplate, Port, ProbeSpec

NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,14}", fullmatch=True)
LABEL_KEYS = st.from_regex(r"[a-z]([a-z0-9.-]{0,20}/)?[a-z][a-z0-9-]{0,10}", fullmatch=True)
LABEL_VALUES = st.from_regex(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?)?", fullmatch=True)
PROBES = st.builds(
    ProbeSpec,
    handler=st.sampled_from(["http", "tcp", "exec"]),
    port=st.one_of(st.none(), st.integers(1, 65535), st.just("http")),
    path=st.text(max_size=10),
    headers=st.lists(st.tuples(NAMES, st.text(max_size=5)), max_size=2).map(tuple),
    command=st.lists(st.text(max_size=5), max_size=3).map(tuple),
    period=st.integers(1, 100),
)
SPECS = st.builds(
    ContainerSpec,
    name=NAMES,
    image=st.just("reg/web:v1"),
    pull_policy=st.sampled_from(["Always", "IfNotPresent", "Never"]),
    ports=st.lists(
        st.builds(Port, container_port=st.integers(1, 65535), name=st.one_of(st.none(), NAMES)),
        max_size=3,
        unique_by=lambda p: p.name or str(p.container_port),
    ).map(tuple),
    readiness=st.one_of(st.none(), PROBES),
    liveness=st.one_of(st.none(), PROBES),
    pre_stop=st.one_of(st.none(), st.lists(st.text(max_size=8), min_size=1, max_size=3).map(tuple)),
    cpu_request_millis=st.one_of(st.none(), st.integers(0, 64_000)),
    memory_request=st.one_of(st.none(), st.integers(0, 2**40)),
)
TEMPLATES = st.builds(
    PodTemplate,
    namespace=NAMES,
    deployment=NAMES,
    template_hash=st.from_regex(r"[0-9a-f]{10}", fullmatch=True),
    containers=st.lists(SPECS, min_size=1, max_size=2).map(tuple),
    labels=st.dictionaries(LABEL_KEYS, LABEL_VALUES, max_size=4).map(
        lambda d: tuple(sorted(d.items()))
    ),
    grace_seconds=st.integers(0, 2**62),
    prune=st.booleans(),
    commit=st.from_regex(r"[0-9a-f]{40}", fullmatch=True),
)


@settings(max_examples=200, deadline=None)
@given(TEMPLATES, NAMES, st.integers(0, 5), st.booleans(), st.booleans(), NAMES, st.floats(0, 2e9))
def test_encode_then_decode_gives_the_template_back(
    template: PodTemplate, pod: str, index: int, init: bool, own: bool, instance: str, now: float
) -> None:
    spec = template.containers[0]
    written = codec.encode(
        template, pod, spec.name, index, init, "node-1", now, instance, spec, own
    )
    read = codec.decode(written)
    assert (read.managed, read.instance, read.namespace, read.deployment) == (
        True, instance, template.namespace, template.deployment,
    )  # fmt: skip
    assert (read.pod, read.container, read.index, read.init, read.infra) == (
        pod, spec.name, index, init, False,
    )  # fmt: skip
    assert read.own_network == own and read.node == "node-1"
    assert (read.template_hash, read.commit) == (template.template_hash, template.commit)
    assert abs(read.created - now) < 0.001
    assert read.grace == template.grace_seconds and read.requests == template.requests
    assert read.ports == {p.name: p.container_port for p in spec.ports if p.name}
    assert read.pre_stop == (spec.pre_stop or ())
    assert read.prune == template.prune and read.pod_labels == dict(template.labels)
    probes = codec.decode_probes(read.probes)
    assert set(probes) == {
        k for k, p in (("readiness", spec.readiness), ("liveness", spec.liveness)) if p
    }
    for kind, probe in (("readiness", spec.readiness), ("liveness", spec.liveness)):
        if probe is not None and not isinstance(probe.port, str):
            assert probes[kind] == probe
    # and what the pod reads through it
    c = ContainerInfo("node-1", "id", "name", written, "running")
    pod_info = PodInfo(
        "node-1",
        template.namespace,
        template.deployment,
        pod,
        template.template_hash,
        template.commit,
        (c,),
    )
    assert pod_info.labels() == dict(template.labels) and pod_info.requests == template.requests


def test_the_pause_container_and_a_service_proxy() -> None:
    template = PodTemplate("demo", "web", "h", (ContainerSpec("web", "img", "Always"),))
    infra = codec.decode(codec.encode(template, "web-h-x", codec.INFRA_NAME, -1, False, "n", 0.0))
    assert infra.infra and not infra.init and infra.container == codec.INFRA_NAME
    svc = codec.decode(codec.service_labels("demo", "web", [80, 8080], "blue"))
    assert (svc.service, svc.service_ports, svc.instance, svc.managed) == (
        "web",
        (80, 8080),
        "blue",
        True,
    )


@given(
    st.dictionaries(
        st.sampled_from([v for k, v in vars(codec).items() if k.startswith("L_")]),
        st.text(max_size=20),
    )
)
def test_unreadable_labels_give_defaults_never_an_error(labels: dict[str, Any]) -> None:
    read = codec.decode(labels)
    assert isinstance(read.grace, int) and isinstance(read.requests, tuple)
    assert all(isinstance(v, int) for v in read.ports.values())
