"""``--log-format json``: one JSON object a line, traceback included, for log collectors."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from gitops.cli.main import JsonFormatter


def test_a_record_is_one_json_object_with_its_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "gitops.act.apply",
            logging.ERROR,
            __file__,
            1,
            "pod %s failed",
            ("web-1",),
            sys.exc_info(),
        )
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["level"] == "error" and entry["logger"] == "gitops.act.apply"
    assert entry["message"] == "pod web-1 failed" and "ValueError: boom" in entry["error"]
    assert entry["time"].endswith("+00:00")


def test_the_cli_logs_json_when_asked(tmp_path: object) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gitops", "--log-format", "json", "sync", "--repo", "/nonexistent"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    lines = [json.loads(x) for x in out.stderr.splitlines() if x.startswith("{")]
    assert lines, out.stderr
    assert all({"time", "level", "logger", "message"} <= set(e) for e in lines)
