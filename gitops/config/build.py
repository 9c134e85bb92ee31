"""What this build of gitops is, in the shape of Kubernetes' ``/version``: the CLI's
``gitops version``, the API's ``GET /version`` and the ``gitops_build_info`` metric say it."""

from __future__ import annotations

import platform
import sys

from gitops import __version__

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}


def info() -> dict[str, str]:
    major, minor, *_ = [*__version__.split("."), "0", "0"]
    machine = platform.machine()
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"v{__version__}",
        "pythonVersion": platform.python_version(),
        "platform": f"{sys.platform}/{_ARCH.get(machine, machine)}",
    }
