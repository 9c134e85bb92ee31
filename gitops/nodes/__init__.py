"""Node adapters: the only place that talks to container engines.

``base.Node`` is the small interface the pipeline uses; ``docker.DockerNode`` implements it on
a Docker engine (the only module importing the docker SDK) and ``memory.MemoryNode`` in memory,
both passing the same contract tests (``tests/contract``).
"""
