"""Fields real templates carry, on plain data: the downward API resolved where the template
knows the value, Service fields accepted, honoured or warned about, and what cannot be served
(UDP, IPv6) refused with the reason."""

from __future__ import annotations

from typing import Any

import pytest

from gitops.decide.desired import build_desired
from gitops.errors import ManifestError
from gitops.manifests import parse_manifests
from gitops.model.live import NodeCapacity
from gitops.nodes.base import PodPlace, resolve_env
from tests.helpers import deployment, dump


def _env(*env: dict[str, Any], **container: Any) -> bytes:
    return dump(deployment(namespace="demo", container={"env": list(env), **container}))


def _ref(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def test_the_downward_api_is_resolved_where_it_is_known() -> None:
    files = {
        "d.yaml": _env(
            _ref("NS", "metadata.namespace"),
            _ref("APP", "metadata.labels['app']"),
            _ref("NONE", "metadata.annotations['missing']"),
            _ref("POD", "metadata.name"),
            _ref("IPS", "status.podIPs"),
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}},
        )
    }
    template = build_desired(parse_manifests(files), "c").deployments[0].template
    assert template.needs_pod_ip
    env = resolve_env(
        template.containers[0].env,
        PodPlace("web-abc", "n1", "10.0.0.1", "172.20.0.5", NodeCapacity(2000, 2 * 2**30)),
    )
    assert env == [
        "NS=demo",
        "APP=web",
        "NONE=",
        "POD=web-abc",
        "IPS=172.20.0.5",
        f"MEM={2 * 2**30}",  # no limit: the node's capacity, as the kubelet gives it
    ]


def test_an_unsupported_field_path_names_what_is() -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifests({"d.yaml": _env(_ref("UID", "metadata.uid"))})
    [error] = [str(e) for e in info.value.errors]
    assert "env[0].valueFrom.fieldRef.fieldPath: supported: metadata.name" in error
    assert "(a gitops pod has no uid)" in error


def _service(**spec: Any) -> dict[str, Any]:
    ports = spec.pop("ports", [{"port": 80, "targetPort": 8080}])
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": {"selector": {"app": "web"}, "ports": ports, **spec},
    }


def test_service_fields_charts_write_are_accepted() -> None:
    svc = _service(
        externalTrafficPolicy="Cluster",
        internalTrafficPolicy="Cluster",
        ipFamilies=["IPv4"],
        ipFamilyPolicy="SingleStack",
        publishNotReadyAddresses=True,
        ports=[{"name": "http", "port": 80, "appProtocol": "http"}],
    )
    manifests = parse_manifests({"s.yaml": dump(svc)})
    assert manifests.warnings == ()
    local = _service(
        externalTrafficPolicy="Local", clusterIP="None", ipFamilyPolicy="PreferDualStack"
    )
    warned = [w.field for w in parse_manifests({"s.yaml": dump(local)}).warnings]
    assert warned == ["spec.clusterIP", "spec.externalTrafficPolicy", "spec.ipFamilyPolicy"]


def test_udp_and_ipv6_services_are_refused_with_the_reason() -> None:
    svc = _service(ports=[{"name": "dns", "port": 53, "protocol": "UDP"}], ipFamilies=["IPv6"])
    with pytest.raises(ManifestError) as info:
        parse_manifests({"s.yaml": dump(svc)})
    errors = [str(e) for e in info.value.errors]
    assert any("spec.ports[0].protocol: UDP Services are not supported" in e for e in errors)
    assert any("spec.ipFamilies: gitops Services are IPv4" in e for e in errors)


def test_handlers_not_carried_out_are_warnings_and_hooks_are_carried_out() -> None:
    probe = {"httpGet": {"path": "/", "port": 80, "host": "example.internal"}}
    doc = deployment(
        namespace="demo",
        container={
            "readinessProbe": probe,
            "ports": [{"name": "http", "containerPort": 8080}],
            "lifecycle": {
                "postStart": {"exec": {"command": ["true"]}},
                "preStop": {
                    "httpGet": {
                        "path": "stop",
                        "port": "http",
                        "host": "::1",
                        "scheme": "HTTPS",
                        "httpHeaders": [{"name": "X-Why", "value": "drain"}],
                    }
                },
            },
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        },
        pod={
            "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
            "terminationGracePeriodSeconds": 7,
        },
    )
    manifests = parse_manifests({"d.yaml": dump(doc)})
    warned = [w.field for w in manifests.warnings]
    assert warned == [
        "spec.template.spec.volumes[0].emptyDir.sizeLimit",
        "spec.template.spec.containers[0].readinessProbe.httpGet.host",
    ]
    [spec] = build_desired(manifests, "c1").deployments[0].template.containers
    assert (spec.post_start, spec.post_start_in_pod) == (("true",), False)
    assert spec.pre_stop_in_pod and spec.pre_stop == (
        "timeout", "7", "wget", "-q", "-O", "/dev/null", "--header", "X-Why: drain",
        "https://[::1]:8080/stop",
    )  # fmt: skip


def test_a_sleep_hook_is_a_sleep_in_the_pod_and_init_containers_take_no_hooks() -> None:
    sleepy = deployment(container={"lifecycle": {"preStop": {"sleep": {"seconds": 5}}}})
    [spec] = (
        build_desired(parse_manifests({"d.yaml": dump(sleepy)}), "c")
        .deployments[0]
        .template.containers
    )
    assert (spec.pre_stop, spec.pre_stop_in_pod) == (("sleep", "5"), True)
    hooked = {
        "name": "init",
        "image": "reg/i:1",
        "lifecycle": {"preStop": {"sleep": {"seconds": 1}}},
    }
    two = {"preStop": {"sleep": {"seconds": 1}, "exec": {"command": ["true"]}}}
    doc = deployment(pod={"initContainers": [hooked]}, container={"lifecycle": two})
    with pytest.raises(ManifestError) as info:
        parse_manifests({"d.yaml": dump(doc)})
    text = str(info.value)
    assert (
        "spec.template.spec.initContainers[0].lifecycle: may not be set for init containers" in text
    )
    assert "containers[0].lifecycle.preStop: must specify exactly one handler" in text


def test_dns_fields_are_validated_and_the_policy_differences_said() -> None:
    none = deployment(namespace="demo", pod={"dnsPolicy": "None"})
    with pytest.raises(ManifestError) as info:
        parse_manifests({"d.yaml": dump(none)})
    [error] = [str(e) for e in info.value.errors]
    assert error.endswith(
        "spec.template.spec.dnsConfig.nameservers: must give at least one when dnsPolicy is None"
    )
    fine = deployment(
        namespace="demo",
        pod={
            "dnsPolicy": "Default",
            "hostname": "db",
            "dnsConfig": {"options": [{"name": "ndots", "value": "1"}]},
        },
    )
    manifests = parse_manifests({"d.yaml": dump(fine)})
    assert [w.field for w in manifests.warnings] == ["spec.template.spec.dnsPolicy"]
    dns = build_desired(manifests, "c").deployments[0].template.dns
    assert dns is not None and (dns.hostname, dns.options) == ("db", ("ndots:1",))
