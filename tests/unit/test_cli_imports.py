"""A read verb starts without what it does not use: ``gitops get`` imports no git, no manifest
model, no YAML library, no engine SDK (bench/cli.py measures what that buys)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("git", "gitops.manifests", "gitops.source", "yaml", "ruamel", "docker", "pydantic",
         "jsonschema", "gitops.runner", "gitops.config.settings")  # fmt: skip


def test_the_cli_imports_none_of_the_heavy_modules_until_a_verb_needs_them() -> None:
    probe = (
        "import sys, gitops.cli.main as m\n"
        "m.parser().parse_args(['get', 'pods'])\n"
        f"print(sorted(n for n in sys.modules if n.split('.')[0] in {HEAVY!r} "
        f"or any(n == h or n.startswith(h + '.') for h in {HEAVY!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
