"""Desired stage: validated manifests of one commit -> what should run, fully resolved.

Pure. In: ``Manifests`` and the commit SHA. Out: ``DesiredState``: for each Deployment its
replica count and one ``PodTemplate`` with env, files and limits resolved from ConfigMaps and
Secrets, and a template hash over all of it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from gitops.decide.batch import Batch, Cron, batch_of, cron_of, job_labels
from gitops.decide.placement import placement
from gitops.decide.security import effective
from gitops.decide.stateful import Stateful, claim_of, stateful_of
from gitops.manifests import Entry, Manifests, config_data, quotas
from gitops.manifests import model as m
from gitops.manifests import pod as pm
from gitops.manifests.checks import FIELD_KEYED
from gitops.manifests.quantity import cpu_millis, memory_bytes, parse_quantity
from gitops.model.templates import (
    A_AUTO_ROLLBACK,
    A_FAIL_FAST,
    A_PRUNE,
    FIELD_HOST_IP,
    FIELD_POD_IP,
    Claim,
    ContainerSpec,
    Dns,
    EnvVar,
    FileItem,
    Mount,
    PodTemplate,
    Port,
    ProbeSpec,
    wget_command,
)

# A hook's HTTP GET is bounded by the grace period, and by this: no pass waits longer on one.
MAX_HOOK_SECONDS = 120


@dataclass(frozen=True)
class DesiredDeployment:
    """A workload whose pods gitops runs: a Deployment, or a ReplicaSet or
    ReplicationController (``kind``), which keeps its replicas but never rolls them."""

    namespace: str
    name: str
    replicas: int
    template: PodTemplate
    path: str  # where it is defined, for errors that name file and document
    doc: int
    min_ready_seconds: int = 0
    progress_deadline_seconds: int = 600
    paused: bool = False
    auto_rollback: bool = True
    fail_fast: bool = False  # a failed new pod fails the rollout at once (Swarm-like)
    rolled_back: str = ""  # set while pinned to an older template after a failed rollout
    held: str = ""  # set while a PreSync hook holds it at the commit its pods run: why
    strategy: str = "RollingUpdate"
    max_surge: int | str = "25%"
    max_unavailable: int | str = "25%"
    kind: str = "Deployment"
    stateful: Stateful | None = None  # a StatefulSet's own fields
    batch: Batch | None = None  # a Job's own fields (a CronJob's Jobs')
    cron: Cron | None = None  # a CronJob's own fields

    @property
    def rolls(self) -> bool:
        """A Deployment or a StatefulSet replaces pods of an older template; a ReplicaSet keeps
        them."""
        return self.kind in ("Deployment", "StatefulSet", "DaemonSet")

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def hook(self) -> str:
        """The sync hook a Job is (PreSync, PostSync), "" for any other workload."""
        return self.batch.hook if self.batch is not None else ""

    @property
    def origin(self) -> str:
        return f"{self.path}:{self.doc}: {self.kind}/{self.name}"


@dataclass(frozen=True)
class DesiredState:
    commit: str
    manifests: Manifests
    namespaces: tuple[str, ...]
    deployments: tuple[DesiredDeployment, ...]
    # Workloads whose pods are left as they are: a PreSync hook holds them, and their
    # template could not be rebuilt from the commit they run.
    held: frozenset[tuple[str, str]] = frozenset()
    holding: str = ""  # why some workloads of the commit are not planned now (a sync hook)

    def deployment(self, namespace: str, name: str) -> DesiredDeployment | None:
        return next((d for d in self.deployments if d.key == (namespace, name)), None)

    @property
    def empty(self) -> bool:
        return not self.manifests.entries

    @property
    def templates(self) -> dict[tuple[str, str, str], PodTemplate]:
        """Each workload's template by (namespace, name, template hash)."""
        return {(d.namespace, d.name, d.template.template_hash): d.template
                for d in self.deployments}  # fmt: skip

    @property
    def has_jobs(self) -> bool:
        return any(d.batch is not None for d in self.deployments)

    @property
    def cronjobs(self) -> tuple[DesiredDeployment, ...]:
        return tuple(d for d in self.deployments if d.cron is not None)

    @property
    def has_claims(self) -> bool:
        """Whether any PersistentVolumeClaim (or StatefulSet claim) is asked for."""
        return bool(self.manifests.of(m.PersistentVolumeClaim)) or any(
            d.template.claims or d.stateful for d in self.deployments
        )


def default_pull_policy(image: str) -> str:
    """Kubernetes' rule: ``Always`` for ``:latest`` or no tag, else ``IfNotPresent``."""
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else "latest"
    return "Always" if tag == "latest" else "IfNotPresent"


class _Resolver:
    """Looks up ConfigMap and Secret data in the deployment's namespace."""

    def __init__(
        self, manifests: Manifests, namespace: str, claimed: frozenset[str] = frozenset()
    ) -> None:
        self.manifests, self.namespace = manifests, namespace
        self.claimed = claimed  # a StatefulSet's claim templates, mounted as volumes

    def data(self, kind: type[m.ConfigMap] | type[m.Secret], name: str) -> dict[str, bytes]:
        entry = self.manifests.get(kind, self.namespace, name)
        # Missing + optional was accepted by validation: it provides nothing.
        return {} if entry is None else config_data(entry.resource)


def _env(c: pm.Container, res: _Resolver, pod: _PodFields) -> tuple[EnvVar, ...]:
    out: dict[str, EnvVar] = {}
    for src in c.env_from:  # envFrom first; explicit env wins, as in Kubernetes
        if src.config_map_ref is not None:
            for k, v in res.data(m.ConfigMap, src.config_map_ref.name).items():
                out[src.prefix + k] = EnvVar(src.prefix + k, v.decode("utf-8", "replace"))
        if src.secret_ref is not None:
            for k, v in res.data(m.Secret, src.secret_ref.name).items():
                out[src.prefix + k] = EnvVar(src.prefix + k, v.decode("utf-8", "replace"), True)
    for e in c.env:
        if e.value_from is None:
            out[e.name] = EnvVar(e.name, e.value or "")
            continue
        if e.value_from.field_ref is not None:
            out[e.name] = pod.field(e.name, e.value_from.field_ref.field_path)
            continue
        if e.value_from.resource_field_ref is not None:
            out[e.name] = pod.resource(e.name, c, e.value_from.resource_field_ref)
            continue
        ref = e.value_from.config_map_key_ref or e.value_from.secret_key_ref
        assert ref is not None  # validation guarantees exactly one source
        secret = e.value_from.secret_key_ref is not None
        data = res.data(m.Secret if secret else m.ConfigMap, ref.name)
        if ref.key in data:
            out[e.name] = EnvVar(e.name, data[ref.key].decode("utf-8", "replace"), secret)
    return tuple(out.values())


@dataclass(frozen=True)
class _PodFields:
    """What ``fieldRef`` and ``resourceFieldRef`` read (the downward API): what the template
    says is filled in here; what only the node knows is left for it (``EnvVar.field``)."""

    namespace: str
    labels: dict[str, str]
    annotations: dict[str, str]
    service_account: str
    containers: tuple[pm.Container, ...]

    def field(self, name: str, path: str) -> EnvVar:
        keyed = FIELD_KEYED.fullmatch(path)
        if keyed is not None:
            source = self.labels if keyed["kind"] == "labels" else self.annotations
            return EnvVar(name, source.get(keyed["key"], ""))
        static = {
            "metadata.namespace": self.namespace,
            "spec.serviceAccountName": self.service_account,
        }
        if path in static:
            return EnvVar(name, static[path])
        runtime = {"status.hostIPs": FIELD_HOST_IP, "status.podIPs": FIELD_POD_IP}
        return EnvVar(name, "", field=runtime.get(path, path))

    def resource(self, name: str, c: pm.Container, ref: pm.ResourceFieldSelector) -> EnvVar:
        target = next((x for x in self.containers if x.name == ref.container_name), c)
        kind, resource = ref.resource.split(".")
        limits, requests = target.resources.limits, target.resources.requests
        quantity = (limits if kind == "limits" else requests).get(resource)  # type: ignore[call-overload]
        if quantity is None and kind == "requests":
            quantity = limits.get(resource)  # type: ignore[call-overload]
        if quantity is None:
            # No limit: the node's allocatable, as the kubelet says; the node fills it in.
            return EnvVar(name, "", field=f"{ref.resource}:{ref.divisor or 1}")
        return EnvVar(name, str(divided(quantity, ref.divisor or 1)))


def divided(quantity: str | int | float, divisor: str | int | float) -> int:
    """A quantity in units of ``divisor``, rounded up, as the downward API gives it."""
    return max(1, math.ceil(parse_quantity(quantity) / parse_quantity(divisor)))


def _files(
    data: dict[str, bytes], items: list[pm.KeyToPath], default_mode: int
) -> tuple[FileItem, ...]:
    if not items:
        return tuple(FileItem(k, v, default_mode) for k, v in sorted(data.items()))
    return tuple(
        FileItem(it.path, data[it.key], it.mode if it.mode is not None else default_mode)
        for it in items
        if it.key in data
    )


def _mounts(c: pm.Container, pod: pm.PodSpec, res: _Resolver) -> tuple[Mount, ...]:
    volumes = {v.name: v for v in pod.volumes}
    out: list[Mount] = []
    for vm in c.volume_mounts:
        sub, expr = vm.sub_path or "", vm.sub_path_expr or ""
        vol = volumes.get(vm.name)
        if vol is None:  # a claim template: each ordinal mounts its own claim of it
            out.append(Mount("claim", vm.name, vm.mount_path, vm.read_only, sub_path=sub,
                             sub_path_expr=expr))  # fmt: skip
            continue
        if vol.empty_dir is not None:
            out.append(Mount("emptyDir", vol.name, vm.mount_path, vm.read_only, sub_path=sub,
                             sub_path_expr=expr))  # fmt: skip
        elif vol.persistent_volume_claim is not None:
            pvc = vol.persistent_volume_claim
            ro = vm.read_only or pvc.read_only
            out.append(Mount("claim", pvc.claim_name, vm.mount_path, ro, sub_path=sub,
                             sub_path_expr=expr))  # fmt: skip
        elif vol.host_path is not None:
            host = vol.host_path
            out.append(Mount("host", host.path, vm.mount_path, vm.read_only, sub_path=sub,
                             sub_path_expr=expr, host_type=host.type))  # fmt: skip
        elif vol.config_map is not None:
            cm = vol.config_map
            files = _files(res.data(m.ConfigMap, cm.name), cm.items, cm.default_mode)
            out.append(_projected(Mount("files", vol.name, vm.mount_path, vm.read_only, files),
                                  vm.sub_path))  # fmt: skip
        elif vol.secret is not None:
            sec = vol.secret
            files = _files(res.data(m.Secret, sec.secret_name), sec.items, sec.default_mode)
            mount = Mount("files", vol.name, vm.mount_path, vm.read_only, files, True)
            out.append(_projected(mount, vm.sub_path))
    return tuple(out)


def _projected(mount: Mount, sub_path: str | None) -> Mount:
    """A ConfigMap's or Secret's files under ``subPath``: one file mounted as the mount path
    itself (``nginx.conf``), or a directory's files under it."""
    if not sub_path:
        return mount
    sub = sub_path.strip("/")
    one = [f for f in mount.files if f.path == sub]
    if one:
        parent, _, name = mount.path.rstrip("/").rpartition("/")
        return replace(mount, path=parent or "/", files=(replace(one[0], path=name),))
    inside = tuple(
        replace(f, path=f.path[len(sub) + 1 :]) for f in mount.files if f.path.startswith(sub + "/")
    )
    return replace(mount, files=inside)


def _claims(pod: pm.PodSpec, manifests: Manifests, namespace: str) -> tuple[Claim, ...]:
    out = []
    for v in pod.volumes:
        if v.persistent_volume_claim is None:
            continue
        entry = manifests.get(
            m.PersistentVolumeClaim, namespace, v.persistent_volume_claim.claim_name
        )
        if entry is None:  # validation said so
            continue
        out.append(claim_of(entry.name, entry.resource.spec))
    return tuple(sorted(set(out), key=lambda c: c.name))


def _probe(p: pm.Probe | None) -> ProbeSpec | None:
    if p is None:
        return None
    timing: dict[str, Any] = {
        "initial_delay": p.initial_delay_seconds,
        "period": p.period_seconds,
        "timeout": p.timeout_seconds,
        "success_threshold": p.success_threshold,
        "failure_threshold": p.failure_threshold,
    }
    if p.http_get is not None:
        h = p.http_get
        headers = tuple((x.name, x.value) for x in h.http_headers)
        return ProbeSpec("http", h.port, h.path, h.scheme, headers, **timing)
    if p.tcp_socket is not None:
        return ProbeSpec("tcp", p.tcp_socket.port, **timing)
    if p.grpc is not None:
        return ProbeSpec("grpc", p.grpc.port, service=p.grpc.service or "", **timing)
    assert p.exec_ is not None
    return ProbeSpec("exec", command=tuple(p.exec_.command), **timing)


def _container(
    c: pm.Container, pod: pm.PodSpec, res: _Resolver, fields: _PodFields, source: str
) -> ContainerSpec:
    limits, requests = c.resources.limits, c.resources.requests
    # Kubernetes: a limit without a request makes the request equal to the limit.
    cpu_req = requests.get("cpu", limits.get("cpu"))
    mem_req = requests.get("memory", limits.get("memory"))
    grace = pod.termination_grace_period_seconds
    pre_stop, pre_in_pod = _hook(c.lifecycle.pre_stop if c.lifecycle else None, c, grace)
    post_start, post_in_pod = _hook(c.lifecycle.post_start if c.lifecycle else None, c, grace)
    return ContainerSpec(
        name=c.name,
        image=c.image,
        pull_policy=c.image_pull_policy or default_pull_policy(c.image),  # type: ignore[arg-type]
        command=tuple(c.command) if c.command is not None else None,
        args=tuple(c.args) if c.args is not None else None,
        working_dir=c.working_dir,
        env=_env(c, res, fields),
        ports=tuple(
            Port(p.container_port, p.protocol, p.name, p.host_port, str(p.host_ip or ""))
            for p in c.ports
        ),
        cpu_limit_millis=cpu_millis(limits["cpu"]) if "cpu" in limits else None,
        memory_limit=memory_bytes(limits["memory"]) if "memory" in limits else None,
        cpu_request_millis=cpu_millis(cpu_req) if cpu_req is not None else None,
        memory_request=memory_bytes(mem_req) if mem_req is not None else None,
        gpus=int(parse_quantity(limits[pm.GPU])) if pm.GPU in limits else 0,
        ephemeral_storage=(
            memory_bytes(limits["ephemeral-storage"]) if "ephemeral-storage" in limits else None
        ),
        mounts=_mounts(c, pod, res),
        readiness=_probe(c.readiness_probe),
        liveness=_probe(c.liveness_probe),
        startup=_probe(c.startup_probe),
        pre_stop=pre_stop,
        pre_stop_in_pod=pre_in_pod,
        post_start=post_start,
        post_start_in_pod=post_in_pod,
        security=effective(pod.security_context, c.security_context),
        stdin=c.stdin,
        tty=c.tty,
        source=source,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"sha256": hashlib.sha256(value).hexdigest()}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _hook(
    handler: pm.LifecycleHandler | None, c: pm.Container, grace: int
) -> tuple[tuple[str, ...] | None, bool]:
    """A lifecycle hook as a command, and whether it runs in the pod's pause container: an
    exec runs in the container; an httpGet is a GET from the pod (to ``host``, else the pod
    itself), a sleep a busybox sleep, both bounded by the grace period."""
    if handler is None:
        return None, False
    if handler.exec_ is not None:
        return tuple(handler.exec_.command), False
    if handler.sleep is not None:
        return ("sleep", str(handler.sleep.seconds)), True
    get = handler.http_get
    if get is None:
        return None, False
    named = {p.name: p.container_port for p in c.ports if p.name}
    port = named.get(get.port, get.port) if isinstance(get.port, str) else get.port
    path = get.path if get.path.startswith("/") else "/" + get.path
    host = get.host or "127.0.0.1"  # the pod's own address, as seen from inside it
    host = f"[{host}]" if ":" in host else host
    url = f"{get.scheme.lower()}://{host}:{port}{path}"
    headers = tuple((h.name, h.value) for h in get.http_headers)
    return wget_command(url, headers, max(1, min(grace, MAX_HOOK_SECONDS))), True


def _headless(manifests: Manifests, namespace: str, labels: dict[str, str]) -> tuple[str, ...]:
    """The headless Services of the namespace whose selector the pod's labels match."""
    return tuple(
        sorted(
            e.name
            for e in manifests.of(m.Service)
            if e.namespace == namespace
            and e.resource.spec.cluster_ip == "None"
            and e.resource.spec.selector
            and all(labels.get(k) == v for k, v in e.resource.spec.selector.items())
        )
    )


def _dns(pod: pm.PodSpec) -> Dns | None:
    config = pod.dns_config
    if pod.hostname is None and pod.subdomain is None and config is None:
        return None
    return Dns(
        hostname=pod.hostname or "",
        subdomain=pod.subdomain or "",
        nameservers=tuple(config.nameservers) if config else (),
        searches=tuple(config.searches) if config else (),
        options=tuple(
            o.name if o.value is None else f"{o.name}:{o.value}"
            for o in (config.options if config else [])
        ),
    )


# Template fields gitops gained after its first release (left out of the hash when unset).
ADDED_LATER = (
    "node_selector", "sysctls", "memory_dirs", "pull_secrets", "placement", "dns", "headless",
    "restart_policy",
)  # fmt: skip
CONTAINER_ADDED_LATER = (
    "security", "stdin", "tty", "pre_stop_in_pod", "post_start", "post_start_in_pod", "gpus",
    "ephemeral_storage",
)  # fmt: skip


def _drop_defaults(body: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if not body[key]:
            del body[key]


def template_hash(template: PodTemplate) -> str:
    """Stable hash of what runs; independent of commit, hash and replica count."""
    # prune is policy about the manifest, not the pod: toggling it must not replace pods.
    body = asdict(replace(template, template_hash="", commit="", prune=True))
    # Fields added later are left out at their defaults, so pods that do not use them keep
    # their hash across an upgrade of gitops (and are not replaced by it).
    _drop_defaults(body, ADDED_LATER)
    del body["claims"]  # about the volumes, not the pod; the mounts name the claims
    for spec in body["containers"] + body["init_containers"]:
        del spec["source"]  # where the manifest is, not what runs
        _drop_defaults(spec, CONTAINER_ADDED_LATER)
        for mount in spec["mounts"]:
            _drop_defaults(mount, ("sub_path", "sub_path_expr", "host_type"))
        for env in spec["env"]:
            _drop_defaults(env, ("field",))
        for port in spec["ports"]:
            _drop_defaults(port, ("host_port", "host_ip"))
        for kind in ("readiness", "liveness", "startup"):
            if spec[kind] is not None:
                _drop_defaults(spec[kind], ("service",))
    canonical = json.dumps(_jsonable(body), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def _workload(entry: Entry[m.Workload], manifests: Manifests, commit: str) -> DesiredDeployment:
    dep = entry.resource
    spec = dep.spec
    pod = spec.template.spec
    st = stateful_of(dep) if isinstance(dep, m.StatefulSet) else None
    res = _Resolver(
        manifests, entry.namespace, frozenset(c.name for c in st.claims) if st else frozenset()
    )
    security = pod.security_context
    fields = _PodFields(
        entry.namespace,
        spec.template.metadata.labels,
        spec.template.metadata.annotations,
        pod.service_account_name or pod.service_account or "default",
        (*pod.init_containers, *pod.containers),
    )
    origin = f"{entry.path}:{entry.doc}: {dep.kind}/{entry.name}"
    # The namespace's LimitRange defaults, as its admission gives them: part of the template,
    # so of its hash (a changed default rolls the pods).
    items = quotas.container_items(manifests, entry.namespace)
    ranges = [e.resource.spec.limits[i] for e, i in items]

    def limited(c: pm.Container) -> pm.Container:
        given = quotas.defaulted(c.resources, ranges) if ranges else c.resources
        return c if given is c.resources else c.model_copy(update={"resources": given})

    job = isinstance(dep, m.Job | m.CronJob)
    # A Job's pods carry its name (a CronJob's carry their run's, given per run).
    named = job_labels(entry.name) if isinstance(dep, m.Job) else ()
    labels = {**spec.template.metadata.labels, **dict(named)}
    template = PodTemplate(
        namespace=entry.namespace,
        deployment=entry.name,
        template_hash="",
        containers=tuple(
            _container(
                limited(c), pod, res, fields, f"{origin}: spec.template.spec.containers[{i}]"
            )
            for i, c in enumerate(pod.containers)
        ),
        init_containers=tuple(
            _container(
                limited(c), pod, res, fields, f"{origin}: spec.template.spec.initContainers[{i}]"
            )
            for i, c in enumerate(pod.init_containers)
        ),
        labels=tuple(sorted(labels.items())),
        annotations=tuple(sorted(spec.template.metadata.annotations.items())),
        empty_dirs=tuple(v.name for v in pod.volumes if v.empty_dir is not None),
        pull_secrets=tuple(ref.name for ref in pod.image_pull_secrets),
        placement=placement(pod),
        dns=_dns(pod),
        headless=_headless(manifests, entry.namespace, spec.template.metadata.labels),
        claims=_claims(pod, manifests, entry.namespace),
        memory_dirs=tuple(
            (v.name, memory_bytes(v.empty_dir.size_limit) if v.empty_dir.size_limit else None)
            for v in pod.volumes
            if v.empty_dir is not None and v.empty_dir.medium == "Memory"
        ),
        grace_seconds=pod.termination_grace_period_seconds,
        node_selector=tuple(sorted(pod.node_selector.items())),
        sysctls=tuple((x.name, x.value) for x in security.sysctls) if security else (),
        prune=dep.metadata.annotations.get(A_PRUNE, "enabled") != "disabled",
        restart_policy=pod.restart_policy if job else "",
    )
    template = replace(template, template_hash=template_hash(template), commit=commit)
    desired = DesiredDeployment(
        kind=dep.kind,
        namespace=entry.namespace,
        name=entry.name,
        replicas=spec.replicas,
        template=template,
        path=entry.path,
        doc=entry.doc,
        min_ready_seconds=spec.min_ready_seconds,
        stateful=st,
        auto_rollback=dep.metadata.annotations.get(A_AUTO_ROLLBACK, "true").lower() != "false",
        fail_fast=dep.metadata.annotations.get(A_FAIL_FAST, "false").lower() == "true",
    )
    if isinstance(dep, m.Job):
        return replace(desired, batch=batch_of(dep), auto_rollback=False)
    if isinstance(dep, m.CronJob):
        batch = replace(batch_of(dep), hook="")  # a CronJob's Jobs are no sync hooks
        return replace(desired, batch=batch, cron=cron_of(dep), auto_rollback=False)
    if isinstance(dep, m.DaemonSet):  # its replicas are its nodes, counted by its planner
        daemon = dep.spec.update_strategy.rolling_update
        return replace(
            desired,
            strategy=dep.spec.update_strategy.type,
            max_surge=daemon.max_surge if daemon else 0,
            max_unavailable=daemon.max_unavailable if daemon else 1,
        )
    if not isinstance(dep, m.Deployment):
        return desired
    rolling = dep.spec.strategy.rolling_update
    return replace(
        desired,
        strategy=dep.spec.strategy.type,
        max_surge=rolling.max_surge if rolling else "25%",
        max_unavailable=rolling.max_unavailable if rolling else "25%",
        progress_deadline_seconds=dep.spec.progress_deadline_seconds,
        paused=dep.spec.paused,
    )


def build_desired(manifests: Manifests, commit: str) -> DesiredState:
    deployments = tuple(
        sorted(
            (_workload(e, manifests, commit) for kind in m.WORKLOADS for e in manifests.of(kind)),
            key=lambda d: d.key,
        )
    )
    return DesiredState(
        commit, manifests, tuple(sorted(manifests.namespaces())), _hook_runs(deployments)
    )


def _hook_runs(deployments: tuple[DesiredDeployment, ...]) -> tuple[DesiredDeployment, ...]:
    """A sync hook runs once per sync: once per change of the workloads it goes before or
    after (as Argo CD runs its hooks on each sync an application needs), not on a commit that
    changes none of them. So its identity, the hash its pods and its record carry, covers its
    own template and the templates of every other workload of the commit."""
    target = ",".join(sorted(f"{d.namespace}/{d.name}={d.template.template_hash}"
                             for d in deployments if not d.hook))  # fmt: skip

    def run_of(d: DesiredDeployment) -> DesiredDeployment:
        if not d.hook:
            return d
        run = f"{d.template.template_hash}|{d.hook}|{target}"
        digest = hashlib.sha256(run.encode()).hexdigest()[:10]
        return replace(d, template=replace(d.template, template_hash=digest))

    return tuple(run_of(d) for d in deployments)
