"""Endpoints of each Service: the ready pods its selector matches, with target ports resolved.

Pure. In: the desired Services, the live pods, a readiness verdict per pod, and the pods being
removed (never endpoints). Out: one ``PortEndpoints`` per Service port, what the service
proxy balances over and what ``gitops get endpoints`` shows.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, replace

from gitops.decide.desired import DesiredState
from gitops.manifests import model as m
from gitops.model.live import LiveState, PodInfo


@dataclass(frozen=True)
class Endpoint:
    pod: str
    node: str
    ip: str
    port: int


@dataclass(frozen=True)
class PortEndpoints:
    namespace: str
    service: str
    port_name: str
    port: int
    node_port: int | None
    affinity: str  # "None" or "ClientIP"
    endpoints: tuple[Endpoint, ...]


def matches(pod: PodInfo, namespace: str, selector: dict[str, str]) -> bool:
    labels = pod.labels()
    return (
        pod.namespace == namespace
        and bool(selector)
        and all(labels.get(k) == v for k, v in selector.items())
    )


def selected(
    namespace: str,
    spec: m.ServiceSpec,
    live: LiveState,
    ready: Callable[[PodInfo], bool],
    leaving: Collection[str],
) -> list[PodInfo]:
    """The pods a Service sends to: selected, with an address, not being stopped, and ready
    (or any, with ``publishNotReadyAddresses``)."""
    return [
        p
        for p in live.pods
        if matches(p, namespace, spec.selector)
        and p.name not in leaving
        and p.ip
        and (spec.publish_not_ready_addresses or ready(p))
    ]


def compute(
    desired: DesiredState | None,
    live: LiveState,
    ready: Callable[[PodInfo], bool],
    leaving: Collection[str] = (),
) -> list[PortEndpoints]:
    if desired is None:
        return []
    out = []
    for entry in desired.manifests.of(m.Service):
        spec = entry.resource.spec
        pods = selected(entry.namespace, spec, live, ready, leaving)
        for port in spec.ports:
            target = port.target_port if port.target_port is not None else port.port
            eps = []
            for pod in pods:
                number = pod.port(target)
                if number is not None:
                    eps.append(Endpoint(pod.name, pod.node, pod.ip, number))
            node_port = port.node_port if spec.type in ("NodePort", "LoadBalancer") else None
            out.append(
                PortEndpoints(
                    entry.namespace,
                    entry.name,
                    port.name or "",
                    port.port,
                    node_port,
                    spec.session_affinity,
                    tuple(sorted(eps, key=lambda e: e.pod)),
                )
            )
    return out


def without(table: list[PortEndpoints], pods: Collection[str]) -> list[PortEndpoints]:
    """The table with ``pods`` taken out: a terminating pod leaves at once, not next pass."""
    return [replace(t, endpoints=tuple(e for e in t.endpoints if e.pod not in pods)) for t in table]
