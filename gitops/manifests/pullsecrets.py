"""Registry Secrets (``imagePullSecrets``): a ``kubernetes.io/dockerconfigjson`` Secret
(``.dockerconfigjson``) or a legacy ``kubernetes.io/dockercfg`` one (``.dockercfg``) maps
registries to a username and password (or ``auth``, their base64).

Stage: manifests; read at commit time (a Secret that is no registry Secret is refused, never
quoted) and by ``gitops.decide.pullauth`` when a node pulls. Docker Hub's names (``docker.io``,
``index.docker.io``, ``https://index.docker.io/v1/``) are one registry.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from gitops.manifests import model as m
from gitops.manifests.entries import config_data

DOCKER_HUB = "docker.io"
KEYS = {
    "kubernetes.io/dockerconfigjson": ".dockerconfigjson",
    "kubernetes.io/dockercfg": ".dockercfg",
}


def _host(key: str) -> str:
    host = key.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    return DOCKER_HUB if host in ("index.docker.io", "registry-1.docker.io") else host


def entries(secret: m.Secret) -> dict[str, tuple[str, str]]:
    """{registry: (username, password)} of a registry Secret; raises ValueError (never
    quoting the Secret) when it is not one."""
    key = KEYS.get(secret.type)
    if key is None:
        raise ValueError(f"is of type {secret.type!r}, not kubernetes.io/dockerconfigjson")
    raw = config_data(secret).get(key)
    if raw is None:
        raise ValueError(f"has no {key} key")
    try:
        data: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{key} is not valid JSON") from exc
    auths = data.get("auths") if isinstance(data, dict) and key == ".dockerconfigjson" else data
    if not isinstance(auths, dict):
        raise ValueError(f"{key} holds no registries")
    out: dict[str, tuple[str, str]] = {}
    for registry, entry in auths.items():
        if not isinstance(entry, dict):
            raise ValueError(f"{key}: the entry of a registry is not a mapping")
        user, password = entry.get("username"), entry.get("password")
        if (user is None or password is None) and isinstance(entry.get("auth"), str):
            try:
                user, _, password = (
                    base64.b64decode(entry["auth"], validate=True).decode().partition(":")
                )
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise ValueError(f"{key}: an auth is not base64 of user:password") from exc
        if not isinstance(user, str) or not isinstance(password, str):
            raise ValueError(f"{key}: an entry has neither username and password nor auth")
        out[_host(str(registry))] = (user, password)
    return out
