from __future__ import annotations

from typing import Any

from gitops.decide.desired import build_desired, default_pull_policy
from gitops.manifests import parse_manifests
from tests.helpers import config_map, deployment, dump, secret


def desired_of(*docs: dict[str, Any]) -> Any:
    return build_desired(parse_manifests({"a.yaml": dump(*docs)}), "c0ffee")


def web(**container: Any) -> dict[str, Any]:
    return deployment(
        container={
            "env": [
                {"name": "PLAIN", "value": "x"},
                {
                    "name": "GREETING",
                    "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}},
                },
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "token"}}},
            ],
            "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
            "volumeMounts": [{"name": "conf", "mountPath": "/etc/conf"}],
            "resources": {"limits": {"cpu": "250m", "memory": "32Mi"}},
            **container,
        },
        pod={"volumes": [{"name": "conf", "configMap": {"name": "cfg"}}]},
    )


def test_env_files_and_limits_are_resolved() -> None:
    state = desired_of(config_map("cfg", greeting="hi"), secret("sec", token="s3cr3t"), web())
    [dep] = state.deployments
    [c] = dep.template.containers
    env = {e.name: e for e in c.env}
    assert env["GREETING"].value == "hi" and env["CFG_greeting"].value == "hi"
    assert env["TOKEN"].value == "s3cr3t" and env["TOKEN"].sensitive
    assert "s3cr3t" not in repr(c)
    assert c.cpu_limit_millis == 250 and c.memory_limit == 32 * 2**20
    assert c.cpu_request_millis == 250  # a limit without a request is also the request
    [mount] = c.mounts
    assert [(f.path, f.data) for f in mount.files] == [("greeting", b"hi")]
    assert dep.template.commit == "c0ffee"


def test_template_hash_tracks_what_runs_not_replicas_or_commit() -> None:
    base = desired_of(config_map("cfg", greeting="hi"), secret("sec", token="a"), web())
    scaled = build_desired(
        parse_manifests(
            {
                "a.yaml": dump(
                    config_map("cfg", greeting="hi"),
                    secret("sec", token="a"),
                    {**web(), "spec": {**web()["spec"], "replicas": 7}},
                )
            }
        ),
        "other",
    )
    config_changed = desired_of(
        config_map("cfg", greeting="hello"), secret("sec", token="a"), web()
    )
    secret_changed = desired_of(config_map("cfg", greeting="hi"), secret("sec", token="b"), web())
    image_changed = desired_of(
        config_map("cfg", greeting="hi"), secret("sec", token="a"), web(image="reg/web:v2")
    )
    h = base.deployments[0].template.template_hash
    assert scaled.deployments[0].template.template_hash == h
    assert scaled.deployments[0].replicas == 7
    others = {
        d.deployments[0].template.template_hash
        for d in (config_changed, secret_changed, image_changed)
    }
    assert h not in others and len(others) == 3


def test_default_pull_policy() -> None:
    assert default_pull_policy("reg/web") == "Always"
    assert default_pull_policy("reg/web:latest") == "Always"
    assert default_pull_policy("127.0.0.1:5000/web:v1") == "IfNotPresent"
    assert default_pull_policy("127.0.0.1:5000/web") == "Always"
    assert default_pull_policy("reg/web@sha256:" + "0" * 64) == "IfNotPresent"
