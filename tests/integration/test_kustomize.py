"""Kustomize, with the real binary: a base and an overlay with ``images:`` and ``patches:``
validate and deploy as the rendered documents, errors are traced to the kustomization that
produced them, a remote base is refused (builds run offline), a missing kustomize is a clear
error; and on the real engine a change to the overlay rolls out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from gitops.errors import ManifestError
from gitops.manifests import model as m
from gitops.manifests import parse_manifests
from gitops.manifests.files import read_directory
from gitops.model.labels import L_CONTAINER
from gitops.model.verdicts import Health
from gitops.source import kustomize
from tests.conftest import GitRemote, Images, containers_of, converge
from tests.helpers import deployment, namespace

NS = "kust"


def _write(root: Path, path: str, *docs: dict[str, Any]) -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump_all(docs, sort_keys=False))


def _layout(root: Path, image: str, tag: str, replicas: int = 2) -> None:
    """base/ (a Deployment, its kustomization) and overlays/prod/ (images: and a patch)."""
    repo, _, _ = image.rpartition(":")
    _write(
        root, "base/web.yaml", deployment("web", namespace=NS, image=f"{repo}:unset", replicas=1)
    )
    _write(root, "base/kustomization.yaml", {"resources": ["web.yaml"]})
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"replicas": replicas},
    }
    _write(
        root,
        "overlays/prod/kustomization.yaml",
        {
            "resources": ["../../base"],
            "images": [{"name": repo, "newTag": tag}],
            "patches": [{"path": "replicas.yaml"}],
            "labels": [{"pairs": {"tier": "prod"}, "includeTemplates": True}],
        },
    )
    _write(root, "overlays/prod/replicas.yaml", patch)


def test_an_overlay_renders_with_its_images_and_patches(tmp_path: Path) -> None:
    _layout(tmp_path, "reg/web:v1", "v7", replicas=4)
    found = read_directory(tmp_path / "overlays" / "prod", render=kustomize.render)
    assert found.problems == () and list(found.files) == ["kustomization.yaml"]
    assert "kustomize" in found.renderer
    manifests = parse_manifests(found.files, found.problems, renderer=found.renderer)
    [dep] = manifests.of(m.Deployment)
    spec = dep.resource.spec
    assert (dep.path, spec.replicas, spec.template.spec.containers[0].image) == (
        "kustomization.yaml",
        4,
        "reg/web:v7",
    )
    assert spec.template.metadata.labels["tier"] == "prod"
    # The whole tree: the base is built as part of the overlay, never on its own.
    whole = read_directory(tmp_path, render=kustomize.render)
    assert list(whole.files) == ["overlays/prod/kustomization.yaml"]


def test_errors_name_the_kustomization_that_rendered_them(tmp_path: Path) -> None:
    _layout(tmp_path, "reg/web:v1", "v1")
    bad = deployment("web", namespace=NS, image="reg/web:unset", replicas=1)
    bad["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 99999}]
    _write(tmp_path, "base/web.yaml", bad)
    found = read_directory(tmp_path / "overlays" / "prod", render=kustomize.render)
    with pytest.raises(ManifestError) as info:
        parse_manifests(found.files, found.problems)
    [error] = [str(e) for e in info.value.errors]
    assert error.startswith(
        "kustomization.yaml:0: Deployment/web: spec.template.spec.containers[0]"
    )


def test_a_broken_or_remote_kustomization_is_an_error_not_a_crash(tmp_path: Path) -> None:
    _write(tmp_path, "kustomization.yaml", {"resources": ["missing.yaml"]})
    found = read_directory(tmp_path, render=kustomize.render)
    [problem] = found.problems
    assert problem.path == "kustomization.yaml" and "kustomize build failed" in problem.message
    _write(
        tmp_path, "kustomization.yaml", {"resources": ["https://github.com/example/base?ref=v1"]}
    )
    [problem] = read_directory(tmp_path, render=kustomize.render).problems
    assert "remote resource (a URL); gitops builds offline" in problem.message


def test_without_kustomize_the_kustomization_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, "kustomization.yaml", {"resources": []})
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    kustomize.command.cache_clear()
    try:
        [problem] = read_directory(tmp_path, render=kustomize.render).problems
    finally:
        monkeypatch.undo()
        kustomize.command.cache_clear()
    assert problem.path == "kustomization.yaml"
    assert "neither kustomize nor kubectl is installed" in problem.message


def test_an_overlay_deploys_and_a_change_to_it_rolls_out(
    remote: GitRemote,
    images: Images,
    engine: docker.DockerClient,
    instance: str,
    make_reconciler: Any,
) -> None:
    v1, v2 = images["v1"].rsplit(":", 1)[1], images["v2"].rsplit(":", 1)[1]
    remote.write("namespace/ns.yaml", namespace(NS))
    _layout(remote.work, images["v1"], v1, replicas=2)
    remote.push("base and overlay")
    rec = make_reconciler(path="overlays/prod")
    status = converge(rec).status
    assert "kustomize" in status.renderer
    [web] = [r for r in status.resources if r.name == "web" and r.kind == "Deployment"]
    assert web.health == Health.HEALTHY and web.source == "kustomization.yaml:0"

    def running() -> set[str]:
        return {
            c.image.tags[0]
            for c in containers_of(engine, instance, infra=False)
            if c.labels[L_CONTAINER] == "web"
        }

    assert running() == {images["v1"]} and len(containers_of(engine, instance, infra=False)) == 2
    _layout(remote.work, images["v1"], v2, replicas=2)  # the overlay's images: newTag changes
    remote.push("overlay: v2")
    converge(rec, passes=30)
    assert running() == {images["v2"]}
