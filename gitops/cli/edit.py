"""``gitops set image`` and ``gitops scale``: CI's hand-off is a commit.

Each edits one Deployment's manifest in the repository the GitOps way: a fresh clone, a
round-trip YAML edit (comments, order and indentation kept), one commit whose message says what
changed and can carry the CI build's URL, pushed with a retry when another push wins the race.
``--dry-run`` prints the commit's diff and pushes nothing. The running reconciler then deploys
it like any other commit (``gitops sync --wait`` follows it).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitops.cli.commits import commit
from gitops.cli.common import ERROR, deployment, kind_of
from gitops.errors import GitopsError

if TYPE_CHECKING:
    from gitops.manifests import edit as yedit

# Where CI runners say which build is running: Jenkins, Travis, GitLab, GitHub Actions.
BUILD_URL_ENV = ("BUILD_URL", "TRAVIS_BUILD_WEB_URL", "CI_JOB_URL")


def _build_url() -> str:
    for name in BUILD_URL_ENV:
        if os.environ.get(name):
            return os.environ[name]
    server, repo, run = (
        os.environ.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    return f"{server}/{repo}/actions/runs/{run}" if server and repo and run else ""


def _assignment(text: str) -> tuple[str, str]:
    name, sep, image = text.partition("=")
    if not sep or not name or not image or any(c.isspace() for c in image):
        raise argparse.ArgumentTypeError(f"expected CONTAINER=IMAGE (or *=IMAGE), not {text!r}")
    return name, image


def add_parsers(sub: Any) -> None:
    env = os.environ.get

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "name", type=deployment, metavar="deployment/NAME|statefulset/NAME|daemonset/NAME"
        )
        p.add_argument("-n", "--namespace", default=os.environ.get("GITOPS_NAMESPACE", "default"))
        p.add_argument("--repo", default=env("GITOPS_REPO"), help="repository URL or path")
        p.add_argument("--branch", default=env("GITOPS_BRANCH", "main"))
        p.add_argument("--path", default=env("GITOPS_PATH", ""), help="sub-path of manifests")
        p.add_argument("--dry-run", action="store_true", help="print the diff, push nothing")
        p.add_argument("--push", action="store_true", help="push (the default; for scripts)")
        p.add_argument("-m", "--message", default="", help="extra commit text")
        p.add_argument(
            "--build-url",
            default=_build_url(),
            help="CI build to name in the commit (default: BUILD_URL, TRAVIS_BUILD_WEB_URL, "
            "CI_JOB_URL or the GitHub Actions run)",
        )
        p.add_argument(
            "-o",
            "--output",
            choices=("table", "json", "yaml", "sha"),
            default="table",
            help="sha: only the new commit, for `sync --wait --revision` in a script",
        )

    p = sub.add_parser(
        "set",
        help="set image: commit a new image for a deployment's containers",
        description="Commit and push a new image for containers of a Deployment.",
    )
    what = p.add_subparsers(dest="set_what", required=True, metavar="WHAT")
    q = what.add_parser("image", help="gitops set image deployment/NAME CONTAINER=IMAGE ...")
    common(q)
    q.add_argument(
        "images", nargs="+", type=_assignment, metavar="CONTAINER=IMAGE", help="* for every one"
    )
    p = sub.add_parser(
        "scale",
        help="commit a new replica count for a deployment",
        description="Commit and push spec.replicas of a Deployment.",
    )
    common(p)
    p.add_argument("--replicas", type=int, required=True, help="the new count (0 or more)")


def _set_images(images: list[tuple[str, str]]) -> Any:
    def mutate(doc: Any) -> None:
        spec = (doc.get("spec") or {}).get("template", {}).get("spec") or {}
        containers = [c for key in ("initContainers", "containers") for c in (spec.get(key) or [])]
        names = [str(c.get("name")) for c in containers]
        for name, image in images:
            matched = [c for c in containers if name in ("*", c.get("name"))]
            if not matched:
                raise GitopsError(
                    f"container {name!r} not found; the deployment has {', '.join(names)}"
                )
            for c in matched:
                c["image"] = image

    return mutate


def _set_replicas(count: int) -> Any:
    def mutate(doc: Any) -> None:
        doc.setdefault("spec", {})["replicas"] = count

    return mutate


def run(args: argparse.Namespace) -> int:
    if not args.repo:
        print("gitops: --repo (or GITOPS_REPO) is required", file=sys.stderr)
        return ERROR
    key: yedit.Key = (kind_of(args.name), args.namespace, args.name)
    target = f"deployment {args.namespace}/{args.name}"
    if args.verb == "scale":
        if key[0] == "DaemonSet":
            print("gitops: a DaemonSet runs one pod a node: it cannot be scaled", file=sys.stderr)
            return ERROR
        if args.replicas < 0:
            print("gitops: --replicas must be 0 or more", file=sys.stderr)
            return ERROR
        subject = f"Scale {target} to {args.replicas} replicas"
        mutate = _set_replicas(args.replicas)
    else:
        shown = ", ".join(f"{n}={i}" for n, i in args.images)
        subject = f"Set image of {target}: {shown}"
        mutate = _set_images(args.images)
    lines = [args.message] if args.message else []
    if args.build_url:
        lines.append(f"Build-URL: {args.build_url}")
    lines.append(f"Made-with: gitops {args.verb if args.verb == 'scale' else 'set image'}")

    def edit(root: Path, files_at: Any) -> list[str]:
        from gitops.source.changes import set_in  # with git: other verbs start without it

        return set_in(key, root, args.path, mutate)

    message = f"{subject}\n\n" + "\n\n".join(lines)
    return commit(args, message, edit, not args.dry_run)
