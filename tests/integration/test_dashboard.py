"""The dashboard in a real browser: Debian's headless Chromium, driven by Playwright, in front
of ``gitops run`` over three dockerd nodes (``scripts/nodes``). The map follows a rollout live
(two commits side by side, then one) with no reload; sign-in, sync now and a forged POST; a
rejected commit's file, document and field on the overview; a remote node's pod's log streaming
on the page; markup in a manifest shown as text with no dialog opening. The screenshots in
``docs/images/`` are made here."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Dialog, Page, sync_playwright

from tests.conftest import API_TOKEN, ROOT, GitRemote, Images
from tests.helpers import deployment, namespace
from tests.integration.test_cluster import NS, cluster, engines, pods, web  # noqa: F401
from tests.integration.test_run import get, wait_for

CHROMIUM = "/usr/bin/chromium"
# As the machine's notes say: no background traffic, which this closed network refuses.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]  # fmt: skip
EVIL = "<img src=x onerror=alert(1)>"
IMAGES = ROOT / "docs" / "images"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    dialogs: list[str] = []

    def opened(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    tab.on("dialog", opened)
    yield tab
    assert dialogs == [], f"a dialog opened: {dialogs}"  # nothing a manifest holds runs
    context.close()


def until(page: Page, script: str, timeout: int = 30_000) -> None:
    """Wait until ``script`` is true on the page. Playwright's own wait evaluates its string with
    ``eval``, which the dashboard's Content-Security-Policy forbids, as it should."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(script):
        assert time.monotonic() < deadline, f"never true: {script}"
        time.sleep(0.1)


# WCAG's contrast ratio of each element's own text against the background it is drawn on.
LOW_CONTRAST = """() => {
  const rgb = s => s.match(/[\\d.]+/g).map(Number);
  const lin = c => (c /= 255) <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
  const lum = ([r, g, b]) => 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  const behind = el => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length < 4 || c[3] > 0) return c;
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const el of document.querySelectorAll("main *, header *")) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || el.closest(".sr-only, .skip") || !el.getClientRects().length) continue;
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(behind(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) low.push(`${el.tagName}.${el.className}: ${ratio.toFixed(2)}`);
  }
  return low;
}"""


def sign_in(page: Page, api: str, token: str) -> None:
    page.goto(api + "/ui/login")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Sign out")


def talker(images: Images, node: str) -> dict[str, Any]:
    """A pod on ``node`` that says a numbered line twice a second."""
    return deployment(
        name="talker", namespace=NS, image=images["v1"], replicas=1,
        container={"command": ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); "
                                           "sleep 0.5; done"]},
        pod={"nodeSelector": {"kubernetes.io/hostname": node}},
    )  # fmt: skip


def test_the_map_follows_a_rollout_live_and_logs_stream_from_a_remote_node(
    cluster: str, remote: GitRemote, images: Images, page: Page, tmp_path: Path,  # noqa: F811
) -> None:  # fmt: skip
    api = cluster
    remote.write("ns.yaml", namespace(NS))
    remote.write("web.yaml", web(images, 3, metadata={"annotations": {"note": EVIL}}))
    remote.write("talker.yaml", talker(images, "node2"))
    first = remote.push("web: three replicas")
    wait_for(lambda: sum(p["status"] == "Running" and p["ready"] == "1/1"
                         for p in pods(api)) == 3, 90, 0.5)  # fmt: skip
    page.goto(api + "/ui/map")
    page.wait_for_selector("#live.on")
    row = "tr[data-workload='cluster/web']"  # the talker runs the first commit too
    until(
        page, f"document.querySelectorAll(\"{row} a.pod[data-commit='{first[:7]}']\").length === 3"
    )
    page.evaluate("window.notReloaded = true")

    remote.write_text("web.yaml", _v2(images))
    second = remote.push("web: v2")
    page.wait_for_selector(f"{row} [data-test=rolling]", timeout=60_000)  # both commits, live
    both = page.eval_on_selector_all(f"{row} a.pod", "els => els.map(e => e.dataset.commit)")
    assert {first[:7], second[:7]} <= set(both)
    page.screenshot(path=str(IMAGES / "map.png"), full_page=True)
    until(
        page,
        f"document.querySelectorAll(\"{row} a.pod[data-commit='{second[:7]}']\").length === 3"
        f" && !document.querySelector(\"{row} a.pod[data-commit='{first[:7]}']\")",
        timeout=90_000,
    )
    assert page.evaluate("window.notReloaded") is True  # the same page, changed in place

    page.goto(api + "/")
    assert second[:7] in page.inner_text("[data-test=head]")
    assert "web: v2" in page.inner_text("[data-test=head]")
    page.screenshot(path=str(IMAGES / "overview.png"), full_page=True)
    page.goto(api + "/ui/resources/Deployment/cluster/web")
    assert EVIL in page.inner_text("[data-test=manifest]")  # shown as text, and no dialog
    page.wait_for_selector("[data-test=history]")
    assert "web: v2" in page.inner_text("[data-test=history]")
    page.screenshot(path=str(IMAGES / "resource.png"), full_page=True)

    [pod] = pods(api, "talker")
    assert pod["node"] == "node2"  # not the node of the reconciler's own engine
    sign_in(page, api, API_TOKEN)
    page.goto(api + f"/ui/logs/{NS}/{pod['name']}")
    until(page, "document.getElementById('logs').innerText.includes('tick 1')")
    count = page.evaluate("(document.getElementById('logs').innerText.match(/tick/g)||[]).length")
    until(page,   # more lines come on the same page: a stream, not one read
        "(document.getElementById('logs').innerText.match(/tick/g)||[]).length"
        f" >= {count + 3}", timeout=20_000,
    )  # fmt: skip


def _v2(images: Images) -> str:
    import yaml

    doc = web(images, 3, metadata={"annotations": {"note": EVIL}})
    doc["spec"]["template"]["spec"]["containers"][0]["image"] = images["v2"]
    return yaml.safe_dump(doc, sort_keys=False)


def test_signing_in_sync_now_a_forged_post_and_a_rejected_commit_on_the_overview(
    cluster: str, remote: GitRemote, images: Images, page: Page, tmp_path: Path,  # noqa: F811
) -> None:  # fmt: skip
    api = cluster
    remote.write("ns.yaml", namespace(NS))
    remote.write("web.yaml", web(images, 1))
    remote.push("web: one replica")
    wait_for(lambda: len(pods(api)) == 1, 60, 0.5)
    page.goto(api + "/")
    for scheme in ("light", "dark"):  # readable: every text at least WCAG AA (4.5:1)
        page.emulate_media(color_scheme=scheme)
        assert page.evaluate(LOW_CONTRAST) == [], scheme
    page.emulate_media(color_scheme="light")
    page.keyboard.press("Tab")  # the first stop skips to the content
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("g")
    page.keyboard.press("m")
    page.wait_for_url(api + "/ui/map")  # g m: the map, from the keyboard
    page.goto(api + "/")
    assert page.locator("text=Sync now").count() == 0  # no action without signing in
    assert page.locator("form[action='/ui/nodes/node1/cordon']").count() == 0

    sign_in(page, api, API_TOKEN)
    cookie = next(c for c in page.context.cookies() if c["name"] == "gitops_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    before = get(api + "/api/v1/status")["triggeredAt"].get("dashboard", 0.0)
    page.click("text=Sync now")
    page.wait_for_selector("text=A sync was asked for")
    # The pass changes nothing, so the history keeps no row of it: the status says when a pass
    # for each reason last ended (other passes may have run since).
    wait_for(lambda: get(api + "/api/v1/status")["triggeredAt"].get("dashboard", 0.0) > before,
             30, 0.1)  # fmt: skip

    forged = page.context.request.post(api + "/ui/sync", form={"back": "/"})
    assert forged.status == 403  # the session's cookie, but no CSRF token
    assert "CSRF" in forged.text()
    wrong = page.context.request.post(api + "/ui/nodes/node1/drain",
                                      form={"csrf": "guessed", "back": "/"})  # fmt: skip
    assert wrong.status == 403
    assert all(n["status"] == "Ready" for n in get(api + "/api/v1/nodes"))

    page.goto(api + "/")
    page.wait_for_selector("#live.on")
    bad = deployment(name="web", namespace=NS, image=images["v1"],
                     metadata={"labels": {"team": EVIL}})  # fmt: skip
    remote.write("web.yaml", bad)
    remote.push("a label value no one may have")
    page.wait_for_selector("[data-test=errors]", timeout=30_000)  # live, no reload
    text = page.inner_text("[data-test=errors]")
    assert "web.yaml:0: Deployment/web: metadata.labels: invalid label value" in text
    assert EVIL in text  # as text: the page's dialog watch says nothing ran
