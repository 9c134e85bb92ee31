"""What a StatefulSet adds to a workload: its pods' identities. Pure.

``Stateful`` holds the StatefulSet's own fields; ``ordinal_template`` makes the template of
pod NAME-i from the set's one template: its hostname (NAME-i, under ``serviceName``, so it
resolves as NAME-i.SERVICE) and its claims, one per claim template, named as Kubernetes names
them (TEMPLATE-NAME-i) so each ordinal finds its own data again, forever. The template hash is
the set's: every ordinal runs the same revision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from gitops.manifests import model as m
from gitops.model.templates import Claim, Dns, Mount, PodTemplate

_ORDINAL = re.compile(r"-(\d+)\Z")


@dataclass(frozen=True)
class Stateful:
    service_name: str = ""
    claims: tuple[Claim, ...] = ()  # the claim templates (Claim.name: the template's name)
    ordered: bool = True  # OrderedReady: one at a time, each Ready before the next
    on_delete: bool = False  # OnDelete: a pod takes the new template only once deleted
    partition: int = 0  # ordinals below it keep the old template
    max_unavailable: int | str = 1
    delete_when_scaled: bool = False  # persistentVolumeClaimRetentionPolicy
    delete_when_deleted: bool = False
    start: int = 0  # spec.ordinals.start


def claim_of(name: str, spec: m.PersistentVolumeClaimSpec, owner: str = "") -> Claim:
    """A claim (or a StatefulSet's claim template) as a pod uses it."""
    return Claim(
        name,
        spec.storage_class_name or "local",
        str(spec.resources.requests.get("storage", "")),
        tuple(spec.access_modes),
        owner=owner,
    )


def stateful_of(res: m.StatefulSet) -> Stateful:
    spec = res.spec
    rolling = spec.update_strategy.rolling_update
    retention = spec.persistent_volume_claim_retention_policy
    return Stateful(
        service_name=spec.service_name or "",
        claims=tuple(
            claim_of(
                t.metadata.name,
                t.spec,
                owner=res.metadata.name if retention.when_deleted == "Delete" else "",
            )
            for t in spec.volume_claim_templates
        ),
        ordered=spec.pod_management_policy == "OrderedReady",
        on_delete=spec.update_strategy.type == "OnDelete",
        partition=rolling.partition if rolling else 0,
        max_unavailable=rolling.max_unavailable if rolling else 1,
        delete_when_scaled=retention.when_scaled == "Delete",
        delete_when_deleted=retention.when_deleted == "Delete",
        start=spec.ordinals.start,
    )


def claim_name(template: str, workload: str, ordinal: int) -> str:
    return f"{template}-{workload}-{ordinal}"


def claim_ordinal(claim: str, template: str, workload: str) -> int | None:
    """The ordinal whose claim TEMPLATE-NAME-i ``claim`` is, or None for another claim."""
    prefix = f"{template}-{workload}-"
    rest = claim[len(prefix) :]
    return int(rest) if claim.startswith(prefix) and rest.isdigit() else None


def ordinal_of(workload: str, pod: str) -> int | None:
    """The ordinal of pod NAME-i, or None for a name that is not one of the set's."""
    found = _ORDINAL.search(pod)
    if found is None or pod[: found.start()] != workload:
        return None
    return int(found.group(1))


def ordinal_template(template: PodTemplate, st: Stateful, ordinal: int) -> PodTemplate:
    name = f"{template.deployment}-{ordinal}"
    own = {c.name: claim_name(c.name, template.deployment, ordinal) for c in st.claims}

    def mount(mt: Mount) -> Mount:
        return replace(mt, volume=own[mt.volume]) if mt.kind == "claim" and mt.volume in own else mt

    dns = template.dns or Dns()
    return replace(
        template,
        containers=tuple(
            replace(c, mounts=tuple(mount(mt) for mt in c.mounts)) for c in template.containers
        ),
        init_containers=tuple(
            replace(c, mounts=tuple(mount(mt) for mt in c.mounts)) for c in template.init_containers
        ),
        claims=tuple(sorted(
            (*template.claims, *(replace(c, name=own[c.name]) for c in st.claims)),
            key=lambda c: c.name,
        )),
        dns=replace(dns, hostname=dns.hostname or name, subdomain=dns.subdomain or st.service_name),
    )  # fmt: skip
