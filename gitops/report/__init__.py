"""Reporting what passes did: Prometheus metrics (``metrics``, the one prometheus_client
import) and notifications to receivers (``notify``)."""
