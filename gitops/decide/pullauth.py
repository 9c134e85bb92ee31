"""Which credentials a node pulls an image with: the pod's ``imagePullSecrets``, as the kubelet
reads them: the first Secret naming the image's registry wins.

Pure. The Secrets are read by ``gitops.manifests.pullsecrets``.
"""

from __future__ import annotations

from collections.abc import Mapping

from gitops.manifests import Manifests
from gitops.manifests import model as m
from gitops.manifests.pullsecrets import DOCKER_HUB, entries
from gitops.model.templates import PodTemplate, RegistryAuth


def registry_of(image: str) -> str:
    """The registry host of an image reference (Docker Hub for a bare name)."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return DOCKER_HUB


def credentials(manifests: Manifests, template: PodTemplate, image: str) -> RegistryAuth | None:
    wanted = registry_of(image)
    for name in template.pull_secrets:
        entry = manifests.get(m.Secret, template.namespace, name)
        if entry is None:
            continue
        try:
            found: Mapping[str, tuple[str, str]] = entries(entry.resource)
        except ValueError:
            continue  # refused at commit time (``gitops.manifests.checks``)
        if wanted in found:
            user, password = found[wanted]
            return RegistryAuth(wanted, user, password)
    return None
