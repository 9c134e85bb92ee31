"""The rules that relate fields and resources to each other: a selector and its template's
labels, references to ConfigMaps and Secrets, probe ports, unique names and node ports.

Stage: manifests, inside validation, after every document has a model (a mended one where it
was wrong). Each finding is a ``FieldError`` naming file, document, resource and field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from gitops.errors import FieldError
from gitops.manifests import autoscaling, kinds, quotas
from gitops.manifests import fields as f
from gitops.manifests import ingress as ing
from gitops.manifests import model as m
from gitops.manifests import pod as pm
from gitops.manifests import volumes as vol
from gitops.manifests.entries import Entry, Manifests, Policy, config_data, decode_base64
from gitops.manifests.pullsecrets import entries
from gitops.manifests.quantity import parse_quantity


class _Issues:
    """Collects FieldErrors for one entry."""

    def __init__(self, entry: Entry[Any], sink: list[FieldError], spec: str = "spec.") -> None:
        self.entry, self.sink = entry, sink
        self.spec = spec  # where the checked fields' "spec." is in the document

    def __call__(self, fld: str, message: str) -> None:
        e = self.entry
        if fld.startswith("spec.") and self.spec != "spec.":
            fld = self.spec + fld.removeprefix("spec.")
        message = message.replace("spec.template", self.spec + "template")
        self.sink.append(FieldError(e.path, e.doc, e.display, fld, message))

    def entry_issue(self, fld: str, message: str) -> None:
        """A field of the document itself, whatever part is being checked."""
        _Issues(self.entry, self.sink)(fld, message)

    def job(self) -> _Issues:
        """A CronJob's Job part: its fields are under spec.jobTemplate.spec."""
        if not isinstance(self.entry.resource, m.CronJob):
            return self
        return _Issues(self.entry, self.sink, "spec.jobTemplate.spec.")


def name_problem(kind: str, name: str) -> str | None:
    """Namespaces and Services need a DNS-1123 label (they become DNS names); others a subdomain."""
    if kind in kinds.PATH_SEGMENT_NAMED:
        check = f.check_path_segment
    elif kind in ("Namespace", "Service"):
        check = f.check_dns_label
    else:
        check = f.check_dns_subdomain
    try:
        check(name)
    except ValueError as exc:
        return str(exc)
    return None


def _check_name(entry: Entry[Any], issue: _Issues) -> None:
    problem = name_problem(entry.resource.kind, entry.name)
    if problem:
        issue("metadata.name", problem)
    if isinstance(entry.resource, m.Namespace) and entry.resource.metadata.namespace:
        issue("metadata.namespace", "a Namespace is not namespaced")


def _check_quantities(res: pm.ResourceRequirements, path: str, issue: _Issues) -> None:
    for key, limit in res.limits.items():
        request = res.requests.get(key)
        if request is not None and parse_quantity(request) > parse_quantity(limit):
            issue(f"{path}.requests.{key}", f"must be less than or equal to {key} limit {limit}")
    # An extended resource is not overcommitted: a whole number, its request its limit.
    gpu_limit, gpu_request = res.limits.get(pm.GPU), res.requests.get(pm.GPU)
    if gpu_request is not None and gpu_limit is None:
        issue(f"{path}.limits.{pm.GPU}", f"must be set: {pm.GPU} is not overcommitted")
    if gpu_request is not None and gpu_limit is not None and gpu_request != gpu_limit:
        issue(f"{path}.requests.{pm.GPU}", f"must be equal to {pm.GPU} limit {gpu_limit}")
    for where, value in ((f"{path}.limits.{pm.GPU}", gpu_limit), (f"{path}.requests.{pm.GPU}",
                                                                  gpu_request)):  # fmt: skip
        if value is not None and parse_quantity(value) != int(parse_quantity(value)):
            issue(where, f"must be a whole number of GPUs, not {value}")


def _one_of(obj: object, names: tuple[str, ...]) -> int:
    return sum(getattr(obj, n) is not None for n in names)


def _check_probe(probe: pm.Probe | None, path: str, ports: set[str], issue: _Issues) -> None:
    if probe is None:
        return
    if _one_of(probe, ("http_get", "tcp_socket", "exec_", "grpc")) != 1:
        issue(path, "must specify exactly one handler: httpGet, tcpSocket, grpc or exec")
    action = probe.http_get or probe.tcp_socket
    if action is not None:
        _check_target_port(
            action.port, f"{path}.{'httpGet' if probe.http_get else 'tcpSocket'}.port", ports, issue
        )


def _check_target_port(port: int | str, path: str, ports: set[str], issue: _Issues) -> None:
    if isinstance(port, int):
        if not 1 <= port <= 65535:
            issue(path, f"port {port} is out of range 1-65535")
    elif port not in ports:
        issue(path, f"no container port named {port!r}")


class _Refs:
    """Resolves ConfigMap/Secret references of one namespace, reporting the missing ones."""

    def __init__(self, manifests: Manifests, namespace: str, issue: _Issues) -> None:
        self.manifests, self.namespace, self.issue = manifests, namespace, issue

    def data(self, kind: type[m.ConfigMap] | type[m.Secret], name: str) -> dict[str, bytes] | None:
        entry = self.manifests.get(kind, self.namespace, name)
        return None if entry is None else config_data(entry.resource)

    def check(
        self,
        kind: type[m.ConfigMap] | type[m.Secret],
        name: str,
        keys: list[str],
        optional: bool,
        path: str,
    ) -> None:
        data = self.data(kind, name)
        if data is None:
            if not optional:
                self.issue(
                    path, f"{kind.__name__} {name!r} not found in namespace {self.namespace!r}"
                )
            return
        for key in keys:
            if key not in data and not optional:
                self.issue(path, f"key {key!r} not found in {kind.__name__} {name!r}")


# What ``fieldRef`` may name (the downward API, less what gitops pods do not have).
FIELD_PATHS = frozenset(
    {
        "metadata.name", "metadata.namespace", "spec.nodeName", "spec.serviceAccountName",
        "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs",
    }
)  # fmt: skip
FIELD_KEYED = re.compile(r"metadata\.(?P<kind>labels|annotations)\['(?P<key>[^']+)'\]")


def _check_container(
    c: pm.Container,
    path: str,
    volumes: set[str],
    refs: _Refs,
    issue: _Issues,
    names_all: frozenset[str] = frozenset(),
) -> None:
    port_names = [p.name for p in c.ports if p.name]
    if len(port_names) != len(set(port_names)):
        issue(f"{path}.ports", "port names must be unique within a container")
    seen_ports = [(p.container_port, p.protocol) for p in c.ports]
    if len(seen_ports) != len(set(seen_ports)):
        issue(f"{path}.ports", "duplicate containerPort and protocol")
    _check_quantities(c.resources, f"{path}.resources", issue)
    names = set(port_names)
    for probe_name in ("readiness_probe", "liveness_probe", "startup_probe"):
        camel = pm.Container.model_fields[probe_name].alias or probe_name
        _check_probe(getattr(c, probe_name), f"{path}.{camel}", names, issue)
    for hook_name, hook in (("preStop", c.lifecycle and c.lifecycle.pre_stop),
                            ("postStart", c.lifecycle and c.lifecycle.post_start)):  # fmt: skip
        hpath = f"{path}.lifecycle.{hook_name}"
        if hook and _one_of(hook, ("exec_", "http_get", "sleep")) != 1:
            issue(hpath, "must specify exactly one handler: exec, httpGet or sleep")
        if hook and hook.http_get is not None:
            _check_target_port(hook.http_get.port, f"{hpath}.httpGet.port", names, issue)
    env_names = [e.name for e in c.env]
    for i, env in enumerate(c.env):
        epath = f"{path}.env[{i}]"
        if env.value is not None and env.value_from is not None:
            issue(epath, "value and valueFrom are mutually exclusive")
        if env.value_from is not None:
            src = env.value_from
            sources = ("config_map_key_ref", "secret_key_ref", "field_ref", "resource_field_ref")
            if _one_of(src, sources) != 1:
                issue(
                    f"{epath}.valueFrom",
                    "must specify exactly one of configMapKeyRef, secretKeyRef, fieldRef, "
                    "resourceFieldRef",
                )
            if src.field_ref is not None and not (
                src.field_ref.field_path in FIELD_PATHS
                or FIELD_KEYED.fullmatch(src.field_ref.field_path)
            ):
                issue(
                    f"{epath}.valueFrom.fieldRef.fieldPath",
                    "supported: " + ", ".join(sorted(FIELD_PATHS)) + ", metadata.labels['KEY'], "
                    "metadata.annotations['KEY'] (a gitops pod has no uid)",
                )
            wanted = src.resource_field_ref.container_name if src.resource_field_ref else None
            if wanted is not None and wanted not in names_all:
                issue(
                    f"{epath}.valueFrom.resourceFieldRef.containerName",
                    f"no container {wanted!r} in the pod",
                )
            if src.config_map_key_ref is not None:
                r = src.config_map_key_ref
                refs.check(
                    m.ConfigMap, r.name, [r.key], r.optional, f"{epath}.valueFrom.configMapKeyRef"
                )
            if src.secret_key_ref is not None:
                r = src.secret_key_ref
                refs.check(m.Secret, r.name, [r.key], r.optional, f"{epath}.valueFrom.secretKeyRef")
    if len(env_names) != len(set(env_names)):
        dup = sorted({n for n in env_names if env_names.count(n) > 1})
        issue(f"{path}.env", f"duplicate environment variable {', '.join(dup)}")
    for i, src_from in enumerate(c.env_from):
        fpath = f"{path}.envFrom[{i}]"
        if _one_of(src_from, ("config_map_ref", "secret_ref")) != 1:
            issue(fpath, "must specify exactly one of configMapRef, secretRef")
        if src_from.config_map_ref is not None:
            ref = src_from.config_map_ref
            refs.check(m.ConfigMap, ref.name, [], ref.optional, f"{fpath}.configMapRef")
        if src_from.secret_ref is not None:
            ref = src_from.secret_ref
            refs.check(m.Secret, ref.name, [], ref.optional, f"{fpath}.secretRef")
    mount_paths = [vm.mount_path for vm in c.volume_mounts]
    for i, vm in enumerate(c.volume_mounts):
        vpath = f"{path}.volumeMounts[{i}]"
        if vm.name not in volumes:
            issue(
                f"{vpath}.name", f"volume {vm.name!r} is not defined in spec.template.spec.volumes"
            )
        if not vm.mount_path.startswith("/"):
            issue(f"{vpath}.mountPath", "must be an absolute path")
        if mount_paths.count(vm.mount_path) > 1:
            issue(f"{vpath}.mountPath", f"{vm.mount_path!r} is mounted more than once")
        vol.check_mount(vm, vpath, {e.name for e in c.env}, issue)


def _check_workload(
    entry: Entry[m.Workload], manifests: Manifests, policy: Policy, issue: _Issues
) -> None:
    res = entry.resource
    spec = res.spec
    issue = issue.job()  # a CronJob's template is its Job's
    labels = spec.template.metadata.labels
    where = (
        "spec.selector" if isinstance(res, m.ReplicationController) else "spec.selector.matchLabels"
    )
    selector = m.selector_labels(res)
    if not selector and not isinstance(res, m.Job | m.CronJob):
        issue(where, "required: a selector, or template labels it defaults to")
    for key, value in selector.items():
        if labels.get(key) != value:
            issue(
                where,
                f"selector {key}={value} does not match template labels "
                "(spec.template.metadata.labels)",
            )
    _check_pod(entry, spec.template.spec, manifests, policy, issue)
    if isinstance(res, m.Deployment):
        _check_strategy(res.spec.strategy, issue)
    if isinstance(res, m.DaemonSet):
        _check_daemon(res.spec.update_strategy, issue)
    if isinstance(res, m.CronJob) and policy.schedule is not None:
        for fld, why in policy.schedule(res.spec.schedule, res.spec.time_zone):
            issue.entry_issue(fld, why)
    if isinstance(res, m.Job | m.CronJob):
        _check_job(res.spec if isinstance(res, m.Job) else res.spec.job_template.spec, issue)
    elif spec.template.spec.restart_policy != "Always":
        issue(
            "spec.template.spec.restartPolicy",
            f"unsupported value {spec.template.spec.restart_policy!r} for a {res.kind}: "
            "only 'Always'",
        )
    if isinstance(res, m.StatefulSet):
        _check_stateful(entry, res, manifests, policy, issue)


def _check_pod(
    entry: Entry[Any], pod: pm.PodSpec, manifests: Manifests, policy: Policy, issue: _Issues
) -> None:
    base = "spec.template.spec"
    volumes = [v.name for v in pod.volumes]
    if len(volumes) != len(set(volumes)):
        issue(f"{base}.volumes", "volume names must be unique")
    res = entry.resource
    templates = res.spec.volume_claim_templates if isinstance(res, m.StatefulSet) else []
    claimed = {t.metadata.name for t in templates}  # a StatefulSet's claims are volumes too
    refs = _Refs(manifests, entry.namespace, issue)
    _check_pull_secrets(pod, base, refs, issue)
    if pod.dns_policy == "None" and not (pod.dns_config and pod.dns_config.nameservers):
        issue(f"{base}.dnsConfig.nameservers", "must give at least one when dnsPolicy is None")
    for i, v in enumerate(pod.volumes):
        vpath = f"{base}.volumes[{i}]"
        vol.check_volume(v, vpath, manifests, entry.namespace, policy, issue)
        if v.config_map is not None:
            cm = v.config_map
            keys = [it.key for it in cm.items]
            refs.check(m.ConfigMap, cm.name, keys, cm.optional, f"{vpath}.configMap")
        if v.secret is not None:
            sec = v.secret
            keys = [it.key for it in sec.items]
            refs.check(m.Secret, sec.secret_name, keys, sec.optional, f"{vpath}.secret")
    all_containers = [("initContainers", c) for c in pod.init_containers] + [
        ("containers", c) for c in pod.containers
    ]
    names = [c.name for _, c in all_containers]
    counters: dict[str, int] = {"initContainers": 0, "containers": 0}
    for group, c in all_containers:
        cpath = f"{base}.{group}[{counters[group]}]"
        counters[group] += 1
        if names.count(c.name) > 1:
            issue(f"{cpath}.name", f"container name {c.name!r} is used more than once")
        if group == "initContainers" and c.lifecycle is not None:
            issue(f"{cpath}.lifecycle", "may not be set for init containers")
        _check_container(c, cpath, set(volumes) | claimed, refs, issue, frozenset(names))
    _check_host_ports(all_containers, base, issue)


def _check_host_ports(
    containers: list[tuple[str, pm.Container]], base: str, issue: _Issues
) -> None:
    """A pod publishes each node port once (Kubernetes' validation: hostPort, protocol and
    hostIP unique in the pod); hostIP means nothing without hostPort."""
    seen: dict[tuple[str, str, int], str] = {}
    counters: dict[str, int] = {"initContainers": 0, "containers": 0}
    for group, c in containers:
        cpath = f"{base}.{group}[{counters[group]}]"
        counters[group] += 1
        for j, p in enumerate(c.ports):
            ppath = f"{cpath}.ports[{j}]"
            if p.host_port is None:
                if p.host_ip is not None:
                    issue(f"{ppath}.hostIP", "needs hostPort: it is where hostPort is published")
                continue
            key = (p.protocol, str(p.host_ip or ""), p.host_port)
            if key in seen:
                issue(f"{ppath}.hostPort", f"{p.host_port}/{p.protocol} is published twice "
                      f"(also by {seen[key]})")  # fmt: skip
            seen.setdefault(key, ppath)


def _within(issue: _Issues, prefix: str) -> Callable[[str, str], None]:
    """``issue``, for fields under ``prefix``."""

    def said(field: str, message: str) -> None:
        issue(prefix + field, message)

    return said


def _check_stateful(
    entry: Entry[Any], res: m.StatefulSet, manifests: Manifests, policy: Policy, issue: _Issues
) -> None:
    spec = res.spec
    names = [t.metadata.name for t in spec.volume_claim_templates]
    for i, t in enumerate(spec.volume_claim_templates):
        where = f"spec.volumeClaimTemplates[{i}]"
        if names.count(t.metadata.name) > 1:
            issue(f"{where}.metadata.name", f"{t.metadata.name!r} is used more than once")
        if t.metadata.name in {v.name for v in spec.template.spec.volumes}:
            issue(f"{where}.metadata.name", "a pod volume has this name too")
        vol.check_claim_spec(t.spec, policy, _within(issue, f"{where}."))
    strategy = spec.update_strategy
    if strategy.type == "OnDelete" and strategy.rolling_update is not None:
        issue("spec.updateStrategy.rollingUpdate", "may not be specified when type is OnDelete")
    rolling = strategy.rolling_update
    most = rolling.max_unavailable if rolling is not None else 1
    where = "spec.updateStrategy.rollingUpdate.maxUnavailable"
    if isinstance(most, str) and not _is_percent(most):
        issue(where, f"{most!r} is not an integer or a percentage")
    if isinstance(most, int) and most < 1:
        issue(where, "must be greater than 0")
    if spec.service_name:
        svc = manifests.get(m.Service, entry.namespace, spec.service_name)
        if svc is None:
            issue(
                "spec.serviceName",
                f"Service {spec.service_name!r} not found in namespace {entry.namespace!r}: "
                f"its pods' names (NAME-0.{spec.service_name}) need it",
            )


def _check_strategy(strategy: m.DeploymentStrategy, issue: _Issues) -> None:
    if strategy.type == "Recreate" and strategy.rolling_update is not None:
        issue("spec.strategy.rollingUpdate", "may not be specified when strategy type is Recreate")
    if strategy.rolling_update is not None:
        _check_rolling(strategy.rolling_update, "spec.strategy.rollingUpdate", issue)


def _check_rolling(
    rolling: m.RollingUpdateDeployment | m.RollingUpdateDaemonSet, where: str, issue: _Issues
) -> None:
    for attr, camel in (("max_surge", "maxSurge"), ("max_unavailable", "maxUnavailable")):
        value = getattr(rolling, attr)
        if isinstance(value, str) and not _is_percent(value):
            issue(f"{where}.{camel}", f"{value!r} is not an integer or a percentage")
        if isinstance(value, int) and value < 0:
            issue(f"{where}.{camel}", "must be greater than or equal to 0")


def _check_daemon(strategy: m.DaemonSetUpdateStrategy, issue: _Issues) -> None:
    rolling = strategy.rolling_update
    where = "spec.updateStrategy.rollingUpdate"
    if rolling is None:
        return
    if strategy.type == "OnDelete":
        issue(where, "may not be specified when updateStrategy type is OnDelete")
    _check_rolling(rolling, where, issue)
    if rolling.max_surge in (0, "0%") and rolling.max_unavailable in (0, "0%"):
        issue(f"{where}.maxUnavailable", "may not be 0 when maxSurge is 0")


def _check_job(spec: m.JobSpec, issue: _Issues) -> None:
    """What the API server refuses in a Job (``pkg/apis/batch/validation``)."""
    policy = spec.template.spec.restart_policy
    if policy == "Always":
        issue(
            "spec.template.spec.restartPolicy",
            "unsupported value 'Always' for a Job: 'OnFailure' or 'Never'",
        )
    if spec.completion_mode == "Indexed" and spec.completions is None:
        issue("spec.completions", "required when completionMode is Indexed")
    rules = spec.pod_failure_policy.rules if spec.pod_failure_policy else []
    if rules and policy != "Never":
        issue("spec.podFailurePolicy", "only allowed when restartPolicy is Never")
    names = {c.name for c in spec.template.spec.containers + spec.template.spec.init_containers}
    for i, rule in enumerate(rules):
        where = f"spec.podFailurePolicy.rules[{i}]"
        codes = rule.on_exit_codes
        if (codes is None) == (not rule.on_pod_conditions):
            issue(where, "exactly one of onExitCodes and onPodConditions is required")
        if rule.action == "FailIndex":
            issue(
                f"{where}.action", "FailIndex needs backoffLimitPerIndex, which gitops does not run"
            )
        if codes is None:
            continue
        if codes.operator == "In" and 0 in codes.values:
            issue(f"{where}.onExitCodes.values", "may not contain 0 when the operator is In")
        if len(set(codes.values)) != len(codes.values):
            issue(f"{where}.onExitCodes.values", "duplicate values")
        if codes.container_name is not None and codes.container_name not in names:
            issue(
                f"{where}.onExitCodes.containerName",
                f"{codes.container_name!r} is not a container of the template",
            )


def _check_owner(
    entry: Entry[Any], owners: dict[tuple[str, str], Entry[Any]], issue: _Issues
) -> None:
    """Pods are keyed by namespace and workload name, so two workloads may not share both."""
    other = owners.setdefault((entry.namespace, entry.name), entry)
    if other is not entry:
        issue(
            "metadata.name",
            f"{other.resource.kind} {other.namespace}/{other.name} ({other.path}:{other.doc}) "
            "has this name too; gitops keys pods by workload name, so rename one",
        )


def _check_pull_secrets(pod: pm.PodSpec, base: str, refs: _Refs, issue: _Issues) -> None:
    for i, ref in enumerate(pod.image_pull_secrets):
        path = f"{base}.imagePullSecrets[{i}]"
        entry = refs.manifests.get(m.Secret, refs.namespace, ref.name)
        if entry is None:
            issue(path, f"Secret {ref.name!r} not found in namespace {refs.namespace!r}")
            continue
        try:
            entries(entry.resource)
        except ValueError as exc:
            issue(path, f"Secret {ref.name!r} {exc}")


def _check_security(pod: pm.PodSpec, base: str, policy: Policy, issue: _Issues) -> None:
    """What a Docker host cannot do, or this one's configuration does not allow."""
    pod_sc = pod.security_context
    if pod_sc is not None and pod_sc.seccomp_profile and pod_sc.seccomp_profile.type == "Localhost":
        issue(f"{base}.securityContext.seccompProfile.type", _LOCALHOST_SECCOMP)
    groups = (("initContainers", pod.init_containers), ("containers", pod.containers))
    for group, containers in groups:
        for i, c in enumerate(containers):
            sc = c.security_context
            path = f"{base}.{group}[{i}].securityContext"
            if sc is None:
                sc_user, non_root = None, None
            else:
                sc_user, non_root = sc.run_as_user, sc.run_as_non_root
                if sc.privileged and not policy.allow_privileged:
                    issue(
                        f"{path}.privileged",
                        "privileged containers are refused: no node allows them (set "
                        "allowPrivileged: true for a node in the configuration file, --config)",
                    )
                if sc.seccomp_profile and sc.seccomp_profile.type == "Localhost":
                    issue(f"{path}.seccompProfile.type", _LOCALHOST_SECCOMP)
                profile = sc.app_armor_profile
                if profile and profile.type == "Localhost" and not profile.localhost_profile:
                    issue(f"{path}.appArmorProfile.localhostProfile", "required for Localhost")
            user = sc_user if sc_user is not None else (pod_sc.run_as_user if pod_sc else None)
            if non_root is None and pod_sc is not None:
                non_root = pod_sc.run_as_non_root
            if non_root and user == 0:
                issue(
                    path if sc_user is not None else f"{base}.securityContext",
                    "runAsNonRoot is true but runAsUser is 0 (root): the container would never "
                    "start",
                )


_LOCALHOST_SECCOMP = (
    "Localhost profiles are files on a kubelet's node; a Docker engine takes a profile only as "
    "JSON from its client, so use RuntimeDefault or Unconfined"
)


def _is_percent(value: str) -> bool:
    return value.endswith("%") and value[:-1].isdigit()


def _check_base64(data: Mapping[str, str], path: str, issue: _Issues) -> None:
    for key, value in data.items():
        try:
            decode_base64(value)
        except ValueError as exc:
            issue(f"{path}.{key}", str(exc))


def _check_secret(entry: Entry[m.Secret], issue: _Issues) -> None:
    _check_base64(entry.resource.data, "data", issue)


def _check_config_map(entry: Entry[m.ConfigMap], issue: _Issues) -> None:
    res = entry.resource
    _check_base64(res.binary_data, "binaryData", issue)
    for key in set(res.data) & set(res.binary_data):
        issue(f"binaryData.{key}", "key is also present in data")


def _check_budget(entry: Entry[m.PodDisruptionBudget], issue: _Issues) -> None:
    spec = entry.resource.spec
    if spec.min_available is not None and spec.max_unavailable is not None:
        issue("spec", "minAvailable and maxUnavailable cannot be both set")
    for attr, camel in (("min_available", "minAvailable"), ("max_unavailable", "maxUnavailable")):
        value = getattr(spec, attr)
        if isinstance(value, str) and not _is_percent(value):
            issue(f"spec.{camel}", f"{value!r} is not an integer or a percentage")
        elif isinstance(value, str) and int(value[:-1]) > 100:
            issue(f"spec.{camel}", f"{value!r} must be between 0% and 100%")
        if isinstance(value, int) and value < 0:
            issue(f"spec.{camel}", "must be greater than or equal to 0")


def _check_service(entry: Entry[m.Service], issue: _Issues) -> None:
    spec = entry.resource.spec
    names = [p.name for p in spec.ports]
    if len(spec.ports) > 1 and any(n is None for n in names):
        issue("spec.ports", "every port must have a name when a Service has more than one")
    named = [n for n in names if n]
    if len(named) != len(set(named)):
        issue("spec.ports", "port names must be unique")
    if spec.ip_family_policy == "RequireDualStack" or spec.ip_families == ["IPv6"]:
        field = "ipFamilyPolicy" if spec.ip_family_policy == "RequireDualStack" else "ipFamilies"
        issue(f"spec.{field}", "gitops Services are IPv4: Docker's pod networks here are IPv4")
    headless = spec.cluster_ip == "None"
    if headless and spec.type != "ClusterIP":
        issue(
            "spec.clusterIP", f"may not be 'None' for a {spec.type} Service (headless is ClusterIP)"
        )
    for i, port in enumerate(spec.ports):
        # A headless name resolves to the pods themselves: any protocol reaches them.
        if port.protocol != "TCP" and not headless:
            issue(
                f"spec.ports[{i}].protocol",
                f"{port.protocol} Services are not supported: gitops proxies TCP connections "
                "(HAProxy) and resolves names to its proxy",
            )
        if port.node_port is not None and spec.type == "ClusterIP":
            issue(f"spec.ports[{i}].nodePort", "may not be used when type is 'ClusterIP'")
        target = port.target_port
        if isinstance(target, int) and not 1 <= target <= 65535:
            issue(f"spec.ports[{i}].targetPort", f"port {target} is out of range 1-65535")
        elif isinstance(target, str):
            try:
                f.check_port_name(target)
            except ValueError as exc:
                issue(f"spec.ports[{i}].targetPort", str(exc))


def semantic_errors(manifests: Manifests, policy: Policy) -> Iterator[FieldError]:
    sink: list[FieldError] = []
    node_ports: dict[int, Entry[Any]] = {}
    owners: dict[tuple[str, str], Entry[Any]] = {}
    served = ing.served(manifests)
    for entry, fld, message in ing.conflicts(served):
        _Issues(entry, sink)(fld, message)
    for scaler, fld, message in autoscaling.conflicts(manifests):
        _Issues(scaler, sink)(fld, message)
    for entry in manifests.entries:
        issue = _Issues(entry, sink)
        _check_name(entry, issue)
        res = entry.resource
        if isinstance(res, m.WORKLOADS):
            _check_workload(entry, manifests, policy, issue)
            quotas.check_workload(entry, manifests, issue)
            _check_security(res.spec.template.spec, "spec.template.spec", policy, issue.job())
            _check_owner(entry, owners, issue)
        elif isinstance(res, m.PodDisruptionBudget):
            _check_budget(entry, issue)
        elif isinstance(res, m.PersistentVolumeClaim):
            vol.check_claim(entry, policy, issue)
            quotas.check_claim_size(entry, manifests, issue)
        elif isinstance(res, m.Secret):
            _check_secret(entry, issue)
        elif isinstance(res, m.ConfigMap):
            _check_config_map(entry, issue)
        elif isinstance(res, quotas.ResourceQuota):
            quotas.check_quota(entry, manifests, issue)
        elif isinstance(res, quotas.LimitRange):
            quotas.check_limit_range(entry, issue)
        elif isinstance(res, autoscaling.HorizontalPodAutoscaler):
            autoscaling.check(entry, manifests, issue)
        elif isinstance(res, m.Ingress) and entry in served:
            ing.check(entry, manifests, policy.clock(), issue)
        elif isinstance(res, m.Service):
            _check_service(entry, issue)
            for i, port in enumerate(res.spec.ports):
                if port.node_port is None:
                    continue
                other = node_ports.setdefault(port.node_port, entry)
                if other is not entry:
                    issue(
                        f"spec.ports[{i}].nodePort",
                        f"{port.node_port} is already allocated to Service "
                        f"{other.namespace}/{other.name} ({other.path}:{other.doc})",
                    )
    yield from sink
