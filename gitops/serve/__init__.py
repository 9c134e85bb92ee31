"""Serving operators: the HTTP API (``api``), its listener (``httpserver``, the one waitress
import) and the Kubernetes-shaped rows it answers with (``views``)."""
