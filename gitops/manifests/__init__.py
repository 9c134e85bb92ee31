"""Manifests stage: YAML files of one commit in, validated typed resources out.

``parse_manifests(files)`` returns ``Manifests`` or raises ``ManifestError`` listing every fault.
Pure: imports no Docker, git, scheduler or metrics library (an import-linter contract).
"""

from gitops.manifests.validate import (
    DEFAULT_NAMESPACE,
    Entry,
    Manifests,
    config_data,
    parse_manifests,
)

__all__ = ["DEFAULT_NAMESPACE", "Entry", "Manifests", "config_data", "parse_manifests"]
