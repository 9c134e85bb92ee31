from __future__ import annotations

import pytest

from gitops.config.durations import format_duration, parse_duration
from gitops.manifests.quantity import cpu_millis, memory_bytes
from gitops.source.triggers import reads_git


@pytest.mark.parametrize(
    ("text", "millis"),
    [("500m", 500), ("0.5", 500), (1, 1000), ("2", 2000), ("0.0001", 1), ("1e3", 1_000_000)],
)
def test_cpu(text: str | int, millis: int) -> None:
    assert cpu_millis(text) == millis


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("128Mi", 128 * 2**20),
        ("1G", 10**9),
        ("1Gi", 2**30),
        ("1e3", 1000),
        (512, 512),
        ("1.5Ki", 1536),
    ],
)
def test_memory(text: str | int, size: int) -> None:
    assert memory_bytes(text) == size


@pytest.mark.parametrize("bad", ["12Zi", "abc", "-1", "1 Gi", "", "1mi"])
def test_bad_quantities(bad: str) -> None:
    with pytest.raises(ValueError):
        memory_bytes(bad)


def test_durations() -> None:
    assert parse_duration("15s") == 15
    assert parse_duration("1m30s") == 90
    assert parse_duration("500ms") == 0.5
    assert parse_duration("2") == 2
    for bad in ("", "1x", "s", "-3"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert format_duration(0.25) == "250ms"
    assert format_duration(185) == "3m5s"


def test_only_git_minded_wake_ups_read_git() -> None:
    """Probe verdicts, container events, node health and requeues converge the last fetched
    head; a push, poll, webhook, API call, start or retry after a failure fetch first."""
    assert not reads_git({"probe:readiness", "engine:die", "node", "requeue"})
    for reason in ("push", "poll", "webhook:github", "api:sync", "api", "startup", "retry"):
        assert reads_git({reason, "probe:readiness"}), reason
