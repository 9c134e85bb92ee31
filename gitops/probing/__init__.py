"""Probing: probe specs and verdicts (``probes``, pure), the prober thread that runs them
through the nodes (``prober``), and HTTP/TCP probes from this machine (``podnet``)."""
