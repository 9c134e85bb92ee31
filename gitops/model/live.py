"""What runs on the nodes, as one observation: the value every stage after ``observe`` reads.

Built by ``gitops.act.observe`` from container labels; read by the deciding code (plan, status,
endpoints) and the cluster's memory. A plain, immutable value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gitops.model.pods import ContainerInfo, PodInfo


@dataclass(frozen=True)
class LiveState:
    pods: tuple[PodInfo, ...]
    networks: dict[str, frozenset[str]]  # node -> namespaces that have a network there
    unreachable: dict[str, str]  # node -> error
    services: dict[tuple[str, str, str], ContainerInfo] = field(default_factory=dict)
    # (node, namespace, name) -> the Service's in-namespace proxy container

    def of(self, namespace: str, deployment: str) -> list[PodInfo]:
        return [p for p in self.pods if (p.namespace, p.deployment) == (namespace, deployment)]

    def deployments(self) -> set[tuple[str, str]]:
        return {(p.namespace, p.deployment) for p in self.pods}
