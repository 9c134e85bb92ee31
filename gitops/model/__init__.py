"""Shared values every stage passes along: pod templates and pods (``pods``), one observation
of the nodes (``live``), what applying a plan did (``applied``), and the events told to
notification receivers (``events``)."""
