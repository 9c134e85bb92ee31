"""Changing git the GitOps way, for the verbs that do (``set image``, ``scale``, ``rollout
undo|restart|pause|resume``): clone, edit one Deployment round-trip, commit, push, report.

The reconciler then deploys the commit like any other; the CLI never touches an engine.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from gitops.cli.common import ERROR, OK
from gitops.errors import GitopsError

if TYPE_CHECKING:  # imported by the functions that use them: other verbs start without git
    from gitops.source.git import Commit, Edit


def commit(args: argparse.Namespace, message: str, edit: Edit, push: bool) -> int:
    """One commit to the repository (``--repo``, ``--branch``, ``--path``), reported; exit 0
    also when the repository already says so, 2 on error."""
    from gitops.source.git import GitWriter, NothingToChange

    try:
        result = GitWriter(args.repo, args.branch, args.path).commit(message, edit, push)
    except NothingToChange as exc:
        print(f"gitops: {exc}", file=sys.stderr)
        return OK
    except GitopsError as exc:
        print(f"gitops: {exc}", file=sys.stderr)
        return ERROR
    return report(result, args)


def report(result: Commit, args: argparse.Namespace) -> int:
    if args.output == "sha":
        print(result.sha)
        return OK
    if args.output != "table":
        import yaml

        data = {
            "commit": result.sha,
            "pushed": result.pushed,
            "parent": result.replaced,
            "diff": result.diff,
        }
        print(
            json.dumps(data, indent=2)
            if args.output == "json"
            else yaml.safe_dump(data, sort_keys=False)
        )
        return OK
    print(result.diff)
    state = (
        "pushed"
        if result.pushed
        else "not pushed (dry run)"
        if getattr(args, "dry_run", False)
        else "not pushed (add --push)"
    )
    print(f"\ncommit {result.sha[:12]} {state}", file=sys.stderr)
    return OK
