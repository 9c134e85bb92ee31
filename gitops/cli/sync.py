"""``gitops sync --wait [--revision SHA] --server URL``: CI's deploy-and-wait.

Asks the running reconciler to fetch and reconcile now, then follows the commit with a progress
line until the reconciler's verdict (``gitops.decide.delivery``): exit 0 when it is healthy on every
node, 1 when it was rejected, failed or rolled back (the reason is printed), 2 when
``--timeout`` passes or the reconciler cannot be asked.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from gitops.cli.client import request
from gitops.cli.common import ERROR, FAILED, OK
from gitops.config.durations import format_duration

EXIT = {"Succeeded": OK, "Failed": FAILED, "NotFound": FAILED, "TimedOut": ERROR}


def remote(server: str, revision: str, wait: bool, timeout: float, output: str) -> int:
    started = time.monotonic()
    code, body = request(server, f"/api/v1/sync?revision={revision}", "POST")
    if code != 202:
        print(f"gitops: {body.get('error', body)}", file=sys.stderr)
        return ERROR
    if not wait:
        print(f"sync of {revision[:12] or 'the branch head'} requested", file=sys.stderr)
        return OK
    after = int(body.get("after", 0))
    last = ""
    answer: dict[str, Any] = {}
    while True:
        code, answer = request(server, f"/api/v1/sync/{revision}?after={after}")
        if code >= 500 or "state" not in answer:
            print(f"gitops: {answer.get('error', answer)}", file=sys.stderr)
            return ERROR
        revision = revision or answer.get("revision", "")  # pin the head the pass fetched
        elapsed = time.monotonic() - started
        line = f"{revision[:12] or '-'} {answer['state']}: {answer['message']}"
        if line != last:
            print(f"[{format_duration(elapsed)}] {line}", file=sys.stderr, flush=True)
            last = line
        if answer["state"] != "Waiting":
            break
        if elapsed > timeout:
            answer = {**answer, "state": "TimedOut"}
            print(f"timed out after {format_duration(timeout)}", file=sys.stderr)
            break
        time.sleep(0.5)
    answer["elapsed_seconds"] = round(time.monotonic() - started, 3)
    if output == "json":
        print(json.dumps(answer, indent=2))
    elif output == "yaml":
        import yaml

        print(yaml.safe_dump(answer, sort_keys=False))
    return EXIT.get(answer["state"], ERROR)
