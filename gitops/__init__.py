"""gitops: a GitOps reconciler for plain Docker hosts.

The pipeline, front to back (see ``gitops.reconciler``):
source (git) -> manifests (parse, validate) -> desired (pure) -> live (read nodes)
-> plan (pure, immutable) -> apply (through node adapters) -> status/history.
"""

__version__ = "0.1.0"
