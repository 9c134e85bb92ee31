"""A HorizontalPodAutoscaler on the real engine, through ``gitops run``: a Deployment whose
endpoint burns CPU (busybox ``httpd`` running the image's ``cgi-bin/burn``), under a bounded
load loop through its NodePort on loopback. It scales from 1 toward ``maxReplicas`` within two
sample periods of the load, stays there while the load lasts, and scales down only once the
stabilization window has passed after the load stopped. The replica counts are sampled from
the API the whole time, every request through the Service is counted, and none fails."""

from __future__ import annotations

import http.client
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GitRemote, Images, start_gitops, stop_gitops
from tests.helpers import namespace
from tests.integration.test_run import free_port, get, wait_for
from tests.integration.test_services import NS, fetch, service, web

PERIOD = 3.0  # --autoscale-interval: short, so the test is; the default is 15 s
WINDOW = 15  # the scale-down stabilization window the autoscaler asks for
HIGH = 3  # maxReplicas
LOAD_SECONDS = 40  # how long the load lasts, at most
REQUESTS = 20_000  # and how many requests the test sends at most, all loops together


def autoscaler() -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": HIGH,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": 50}}},
                # read from the Service proxy's own counts; set high, so the CPU decides
                {"type": "Pods", "pods": {"metric": {"name": "requests-per-second"}, "target": {
                    "type": "AverageValue", "averageValue": "1k"}}}],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": WINDOW}},
        },
    }  # fmt: skip


class Traffic:
    """Requests through the NodePort from ``loops`` threads, counted; bounded in count and
    time. ``burn``: each asks the CPU-burning endpoint, else the cheap /version."""

    def __init__(self, port: int, loops: int, burn: bool, budget: list[int]) -> None:
        self.port, self.burn, self.budget = port, burn, budget
        self.ok, self.failures = 0, list[str]()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(loops)]

    def _run(self) -> None:
        deadline = time.monotonic() + LOAD_SECONDS + 60
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                if self.budget[0] <= 0:
                    return
                self.budget[0] -= 1
            try:
                if self.burn:
                    answer = fetch(self.port, "/cgi-bin/burn?20000")
                    assert answer.startswith("burnt"), answer
                else:
                    fetch(self.port)
                    time.sleep(0.1)
                with self._lock:
                    self.ok += 1
            except (OSError, http.client.HTTPException, AssertionError) as exc:
                with self._lock:
                    self.failures.append(repr(exc))

    def __enter__(self) -> Traffic:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)


class Replicas:
    """The autoscaler's scale (the replicas it asks for, ``get hpa -o json``'s desired), sampled
    every 0.5 s with its time."""

    def __init__(self, api: str) -> None:
        self.api, self.seen = api, list[tuple[float, int]]()
        self.rates = list[float]()  # the Pods metric's request rate a pod, as read
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                rows = get(self.api + f"/api/v1/horizontalpodautoscalers?namespace={NS}")
            except OSError:
                continue
            if rows:
                self.seen.append((time.monotonic(), int(rows[0]["desired"])))
                self.rates += [float(m["current"]) for m in rows[0]["metrics"]
                               if m["type"] == "Pods" and m["current"] != "<unknown>"]  # fmt: skip

    def first(self, wanted: Any, after: float) -> float | None:
        return next((t for t, n in self.seen if t >= after and wanted(n)), None)

    def __enter__(self) -> Replicas:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture
def api(
    remote: GitRemote, images: Images, instance: str, tmp_path: Path
) -> Iterator[tuple[str, int]]:
    port = 31000 + int(time.time() * 1000) % 1700
    doc = web(images, "v1", replicas=1)
    doc["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "100m"}}
    remote.write("ns.yaml", namespace(NS))
    remote.write("web.yaml", doc, service("web", port, {"app": "web"}), autoscaler())
    remote.push("web with an autoscaler")
    listen = free_port()
    proc = start_gitops(remote.bare, instance, tmp_path / "state", listen, tmp_path / "gitops.log",
                        ("--autoscale-interval", f"{PERIOD:g}s"))  # fmt: skip
    url = f"http://127.0.0.1:{listen}"
    try:
        wait_for(lambda: _serving(port), 90, 0.3)
        yield url, port
    finally:
        stop_gitops(proc)


def _serving(port: int) -> bool:
    try:
        return bool(fetch(port))
    except (OSError, http.client.HTTPException):
        return False


def test_scales_up_under_load_stays_then_down_after_the_window_and_no_request_fails(
    api: tuple[str, int],
) -> None:
    url, port = api
    budget = [REQUESTS]
    with Replicas(url) as replicas, Traffic(port, 1, False, budget) as light:
        wait_for(lambda: replicas.seen and replicas.seen[-1][1] == 1, 30, 0.2)
        started = time.monotonic()
        with Traffic(port, 2, True, budget) as heavy:
            up = wait_for(lambda: replicas.first(lambda n: n > 1, started), PERIOD * 2 + 10, 0.2)
            wait_for(lambda: replicas.first(lambda n: n == HIGH, started), 60, 0.2)
            at_high = replicas.first(lambda n: n == HIGH, started)
            assert at_high is not None
            time.sleep(max(0.0, min(LOAD_SECONDS, at_high - started + 4 * PERIOD)
                           - (time.monotonic() - started)))  # fmt: skip
            held = [n for t, n in replicas.seen if t >= at_high]
        stopped = time.monotonic()
        wait_for(lambda: replicas.first(lambda n: n < HIGH, stopped), WINDOW + 4 * PERIOD + 20,
                 0.2)  # fmt: skip
        down = replicas.first(lambda n: n < HIGH, stopped)
        assert down is not None
        wait_for(lambda: replicas.seen[-1][1] == 1, 60, 0.2)
    first = replicas.first(lambda n: n > 1, started)
    assert first is not None
    print(f"first scale up {first - started:.1f} s after the load began (period {PERIOD:g} s), "
          f"at {HIGH} after {at_high - started:.1f} s; down {down - stopped:.1f} s after it "
          f"stopped (window {WINDOW} s); {heavy.ok} heavy and {light.ok} light requests; the "
          f"proxy's rate a pod at most {max(replicas.rates or [0]):.1f}/s")  # fmt: skip
    assert up <= PERIOD * 2 + 10  # within two sample periods (a sample takes the engine ~1 s)
    assert held and set(held) == {HIGH}, held  # it stays there while the load lasts
    # Not before the window: it counts from the last sample that saw the load, at most a
    # period (and the engine's one-second sample) before it stopped.
    assert WINDOW - PERIOD - 1 <= down - stopped <= WINDOW + 3 * PERIOD + 5, down - stopped
    assert heavy.ok > 50 and light.ok > 50
    assert heavy.failures == [] and light.failures == []
    # The proxy's own count, as a Pods metric: about what the loops sent (a few a second).
    assert replicas.rates and max(replicas.rates) > 1, replicas.rates
    events = get(url + f"/api/v1/events?namespace={NS}")
    rescales = [e for e in (events.get("items", events) if isinstance(events, dict) else events)
                if e.get("reason") == "SuccessfulRescale"]  # fmt: skip
    assert len(rescales) >= 2, rescales

    shown = subprocess.run(
        [sys.executable, "-m", "gitops", "get", "hpa", "-n", NS, "-o", "wide", "--server", url],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert shown[0].split()[:7] == ["NAMESPACE", "NAME", "REFERENCE", "TARGETS", "MINPODS",
                                    "MAXPODS", "REPLICAS"], shown  # fmt: skip
    assert shown[1].split()[:3] == [NS, "web", "Deployment/web"] and "cpu:" in shown[1], shown
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        scraped = resp.read().decode()
    assert (f'kube_horizontalpodautoscaler_status_desired_replicas{{horizontalpodautoscaler="web",'
            f'namespace="{NS}"}} 1.0') in scraped  # fmt: skip
