"""Deciding, pure: imports no I/O library and no adapter (an import-linter contract).

``desired`` turns manifests into pod templates; ``schedule`` places pods; ``plan`` compares
desired and live into an immutable ``Plan``, with ``rollout`` deciding each rolling step;
``health``, ``status`` and ``delivery`` give verdicts; ``webhooks`` judges a push."""
