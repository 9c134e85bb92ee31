"""Manifests stage: YAML files of one commit in, validated typed resources out.

``parse_manifests(files)`` returns ``Manifests`` or raises ``ManifestError`` listing every fault.
Pure: imports no Docker, git, scheduler or metrics library (an import-linter contract).
"""

from gitops.manifests.entries import DEFAULT_NAMESPACE, Entry, Manifests, Policy, config_data
from gitops.manifests.validate import parse_manifests

__all__ = ["DEFAULT_NAMESPACE", "Entry", "Manifests", "Policy", "config_data", "parse_manifests"]
