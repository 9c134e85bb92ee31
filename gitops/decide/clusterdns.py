"""What gitops' cluster DNS answers: a headless Service's name resolves to its ready pods.

Pure. Docker's embedded DNS answers each pod's own names (its network aliases) and forwards
any other name to the servers its network container was given: gitops' cluster DNS first,
then the node's own. A headless Service is served here rather than as an alias because the
engine would answer an alias for every running pod, ready or not, and a running container's
aliases cannot change. From a pod on node N in namespace NS, ``SVC``, ``SVC.NS``,
``SVC.NS.svc`` and ``SVC.NS.svc.cluster.local`` resolve to the addresses of the pods the
Service sends to on N (ready ones, or all with ``publishNotReadyAddresses``: the same choice
as its endpoints, ``decide.endpoints.selected``); pods on other nodes share no network with
it. A known name with no such pod is NXDOMAIN, as CoreDNS answers; a name that is not the
cluster's is REFUSED, so that the embedded DNS asks the next server.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from enum import Enum

from gitops.decide.desired import DesiredState
from gitops.decide.endpoints import selected
from gitops.manifests import model as m
from gitops.model.live import LiveState, PodInfo

CLUSTER_DOMAIN = "cluster.local"
TTL = 5  # seconds, CoreDNS' default for Services: a pod that stops being ready soon drops out


class Rcode(Enum):
    NOERROR = 0
    NXDOMAIN = 3
    REFUSED = 5


@dataclass(frozen=True)
class Records:
    """The headless Services of each namespace, and the addresses of each on each node."""

    services: frozenset[tuple[str, str]] = frozenset()  # (namespace, name)
    addresses: dict[tuple[str, str, str], tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Answer:
    rcode: Rcode
    addresses: tuple[str, ...] = ()  # IPv4, for an A (or ANY) question


def records(
    desired: DesiredState | None,
    live: LiveState,
    ready: Callable[[PodInfo], bool],
    leaving: Collection[str] = (),
) -> Records:
    if desired is None:
        return Records()
    services: set[tuple[str, str]] = set()
    addresses: dict[tuple[str, str, str], list[str]] = {}
    for entry in desired.manifests.of(m.Service):
        spec = entry.resource.spec
        if spec.cluster_ip != "None":
            continue
        services.add((entry.namespace, entry.name))
        for pod in selected(entry.namespace, spec, live, ready, leaving):
            addresses.setdefault((pod.node, entry.namespace, entry.name), []).append(pod.ip)
    return Records(
        frozenset(services), {k: tuple(sorted(set(v))) for k, v in sorted(addresses.items())}
    )


def service_of(qname: str, namespace: str) -> tuple[str, bool]:
    """The Service a question names, asked from ``namespace`` ("" if none), and whether the
    name is under the cluster's domain (then no other server may answer it)."""
    name = qname.rstrip(".").lower()
    ours = name == CLUSTER_DOMAIN or name.endswith("." + CLUSTER_DOMAIN)
    for suffix in ("", f".{namespace}", f".{namespace}.svc", f".{namespace}.svc.{CLUSTER_DOMAIN}"):
        head = name[: len(name) - len(suffix)] if suffix else name
        if (not suffix or name.endswith(suffix)) and head and "." not in head:
            return head, ours
    return "", ours


def lookup(table: Records, node: str, namespace: str, qname: str, qtype: str) -> Answer:
    """The answer to a question of ``qtype`` ("A", "AAAA", ...) about ``qname`` from a pod on
    ``node`` in ``namespace``."""
    service, ours = service_of(qname, namespace)
    if not service or (namespace, service) not in table.services:
        return Answer(Rcode.NXDOMAIN if ours else Rcode.REFUSED)
    found = table.addresses.get((node, namespace, service), ())
    if not found:
        return Answer(Rcode.NXDOMAIN)
    return Answer(Rcode.NOERROR, found if qtype in ("A", "ANY") else ())
