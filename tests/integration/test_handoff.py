"""CI's hand-off against a running ``gitops run``, a bare remote and the real engine: webhooks
(signed, refused, ignored, coalesced), ``set image`` / ``scale`` commits, ``sync --wait`` with
its exit codes, the bearer token, outgoing notifications with retries, and no Secret value in
any output."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import API_TOKEN, ROOT, GitRemote, Images, git, start_gitops, stop_gitops
from tests.integration.test_metrics import scrape, value
from tests.integration.test_run import free_port, get, gitops, wait_for

NS = "handoff"
HOOK_SECRET = "webhook-secret-for-tests"
SECRET_VALUE = "s3cr3t-Value-that-must-never-show"


def web_yaml(image: str, replicas: int = 2) -> str:
    return f"""# The web tier; CI bumps the image. Comments survive gitops' commits.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {NS}
spec:
  replicas: {replicas}
  progressDeadlineSeconds: 6
  selector:
    matchLabels:
      app: web
  strategy:
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: {image}  # bumped by CI
          env:
            - name: DB_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: db
                  key: password
          ports:
            - name: http
              containerPort: 8080
          readinessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 1
"""


SECRET_YAML = f"""apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: {NS}
stringData:
  password: {SECRET_VALUE}
"""


@dataclass
class Receiver:
    """An HTTP endpoint on 127.0.0.1 taking notifications; the first ``fail`` calls get 500."""

    fail: int = 0
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    attempts: int = 0

    def kinds(self, path: str) -> list[str]:
        return [b.get("kind", b.get("text", "")) for p, b in self.calls if p == path]


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver(fail=2)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.attempts += 1
            if self.path == "/generic" and state.fail > 0:
                state.fail -= 1
                self.send_response(500)
            else:
                state.calls.append((self.path, body))
                self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture
def running(
    remote: GitRemote,
    images: Images,
    instance: str,
    tmp_path: Path,
    receiver: tuple[Receiver, str],
) -> Iterator[dict[str, str]]:
    remote.write_text("ns.yaml", f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NS}\n")
    remote.write_text("secret.yaml", SECRET_YAML)
    remote.write_text("web.yaml", web_yaml(images["v1"]))
    remote.push("web v1")
    secret_file = tmp_path / "hook-secret"
    secret_file.write_text(HOOK_SECRET + "\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    extra = (
        "--no-watch",  # every reaction here comes from a webhook or an API call
        "--webhook-secret-file", str(secret_file),
        "--webhook-max-bytes", "65536",
        "--notify", f"generic={receiver[1]}/generic",
        "--notify", f"slack={receiver[1]}/slack",
    )  # fmt: skip
    log = tmp_path / "gitops.log"
    proc = start_gitops(remote.bare, instance, tmp_path / "state", port, log, extra)
    env = {
        **os.environ,
        "GITOPS_SERVER": url,
        "GITOPS_REPO": str(remote.bare),
        "BUILD_URL": "https://ci.example/job/web/42/",
        "LOG": str(log),
    }
    try:
        wait_for(lambda: _healthy(url), 60, 0.2)
        yield env
    finally:
        stop_gitops(proc)


def _healthy(url: str) -> bool:
    try:
        status = get(url + "/api/v1/status")
    except OSError:
        return False
    deps = [r for r in status["resources"] if r["kind"] == "Deployment"]
    return bool(deps) and all(r["health"] == "Healthy" for r in deps)


def post(url: str, body: bytes = b"", headers: dict[str, str] | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def github_push(repo: Path, sha: str, ref: str = "refs/heads/main") -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {"ref": ref, "after": sha, "repository": {"clone_url": f"file://{repo}"}}
    ).encode()
    signature = hmac.new(HOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": f"sha256={signature}",
        "Content-Type": "application/json",
    }
    return body, headers


def revision(url: str) -> str:
    return str(get(url + "/api/v1/status")["revision"])


def test_webhooks_verify_react_at_once_and_coalesce_a_burst(
    running: dict[str, str], remote: GitRemote
) -> None:
    url = running["GITOPS_SERVER"]
    hook = url + "/api/v1/webhooks/github"
    settled = _settled(url)
    head = revision(url)

    # refused: forged signature, no signature, a body over the limit; nothing is fetched
    remote.write_text("note.yaml", _config_map(0))
    pushed = remote.push("config 0")
    body, headers = github_push(remote.bare, pushed)
    forged = {**headers, "X-Hub-Signature-256": "sha256=" + "0" * 64}
    assert post(hook, body, forged)[0] == 401
    assert post(hook, body, {"X-GitHub-Event": "push"})[0] == 401
    assert post(hook, b"x" * 100_000, headers)[0] == 413
    other_branch = github_push(remote.bare, pushed, "refs/heads/dev")
    code, answer = post(hook, *other_branch)
    assert code == 200 and answer["result"] == "ignored"
    time.sleep(1)
    # no watch, no poll due, and these woke nothing: still where it was
    assert (_passes(url), revision(url)) == (settled, head)

    # accepted: the pass follows at once
    sent = time.monotonic()
    code, answer = post(hook, body, headers)
    assert (code, answer["result"], answer["revision"]) == (202, "accepted", pushed)
    reaction = wait_for(lambda: revision(url) == pushed, 10, 0.02)
    print(f"\nwebhook to fetched: {reaction:.2f}s ({time.monotonic() - sent:.2f}s)")

    # a burst: five pushes, ten webhooks at once -> few passes, ending on the newest commit
    shas = []
    for i in range(1, 6):
        remote.write_text("note.yaml", _config_map(i))
        shas.append(remote.push(f"config {i}"))
    wait_for(lambda: _passes(url) is not None, 5)
    before = _passes(url)
    threads = [
        threading.Thread(target=post, args=(hook, *github_push(remote.bare, sha)))
        for sha in shas + shas
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    wait_for(lambda: revision(url) == shas[-1], 10, 0.05)
    time.sleep(1.5)  # let any follow-up pass finish before counting
    passes = (_passes(url) or 0) - (before or 0)
    print(f"burst: 10 webhooks -> {passes:.0f} reconcile pass(es)")
    assert 1 <= passes <= 3

    # the other providers' own authentication, over real HTTP
    for provider, headers_of in _PROVIDERS.items():
        payload = json.dumps(_payload(provider, remote.bare, shas[-1])).encode()
        code, answer = post(url + f"/api/v1/webhooks/{provider}", payload, headers_of(payload))
        assert (code, answer["result"]) == (202, "accepted"), (provider, answer)
        assert post(url + f"/api/v1/webhooks/{provider}", payload, {})[0] == 401

    _, samples = scrape(url)
    hooks = "gitops_webhook_requests_total"
    assert value(samples, hooks, provider="github", result="accepted") == 11
    assert value(samples, hooks, provider="github", result="unauthorized") == 2
    assert value(samples, hooks, provider="github", result="too_large") == 1
    assert value(samples, hooks, provider="github", result="ignored") == 1
    for provider in _PROVIDERS:
        assert value(samples, hooks, provider=provider, result="accepted") == 1
        assert value(samples, hooks, provider=provider, result="unauthorized") == 1


def _settled(url: str) -> float | None:
    """The pass count once passes have stopped for 1.5 s (the first rollout's follow-ups)."""
    last, since = _passes(url), time.monotonic()
    while time.monotonic() - since < 1.5:
        time.sleep(0.25)
        now = _passes(url)
        if now != last:
            last, since = now, time.monotonic()
    return last


def _passes(url: str) -> float | None:
    _, samples = scrape(url)
    return sum(v for (name, _), v in samples.items() if name == "gitops_reconcile_total") or None


def _config_map(i: int) -> str:
    return (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: note\n  namespace: {NS}\n"
        f"data:\n  n: '{i}'\n"
    )


def _sign(payload: bytes) -> str:
    return hmac.new(HOOK_SECRET.encode(), payload, hashlib.sha256).hexdigest()


_PROVIDERS: dict[str, Callable[[bytes], dict[str, str]]] = {
    "gitlab": lambda p: {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": HOOK_SECRET},
    "gitea": lambda p: {"X-Gitea-Event": "push", "X-Gitea-Signature": _sign(p)},
    "bitbucket": lambda p: {"X-Event-Key": "repo:push", "X-Hub-Signature": "sha256=" + _sign(p)},
    "generic": lambda p: {"X-Gitops-Signature": "sha256=" + _sign(p)},
}


def _payload(provider: str, repo: Path, sha: str) -> dict[str, Any]:
    if provider == "gitlab":
        return {
            "object_kind": "push",
            "ref": "refs/heads/main",
            "checkout_sha": sha,
            "project": {"git_http_url": str(repo)},
        }
    if provider == "bitbucket":
        change = {"new": {"type": "branch", "name": "main", "target": {"hash": sha}}}
        return {"push": {"changes": [change]}, "repository": {"full_name": "x/none"}} | {
            "repository": {"links": {"html": {"href": f"file://{repo}"}}}
        }
    if provider == "gitea":
        return {"ref": "refs/heads/main", "after": sha, "repository": {"clone_url": str(repo)}}
    return {"repository": str(repo), "branch": "main", "revision": sha}


def sync_wait(
    env: dict[str, str], sha: str, timeout: str = "90s"
) -> subprocess.CompletedProcess[str]:
    return gitops("sync", "--wait", "--revision", sha, "--timeout", timeout, "-o", "json", env=env)


def test_set_image_and_sync_wait_give_ci_a_verdict_and_notifications_follow(
    running: dict[str, str],
    remote: GitRemote,
    images: Images,
    receiver: tuple[Receiver, str],
) -> None:
    env, url = running, running["GITOPS_SERVER"]
    seen, _ = receiver

    # mutating calls need the token; reads do not
    assert post(url + "/api/v1/sync")[0] == 401
    assert post(url + "/api/v1/sync", headers={"Authorization": "Bearer wrong"})[0] == 401
    assert post(url + "/api/v1/nodes/local/cordon")[0] == 401
    ok = post(url + "/api/v1/sync", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert ok[0] == 202

    # set image --dry-run: the diff, nothing pushed
    head = git(remote.bare, "rev-parse", "main")
    dry = gitops(
        "set", "image", "deployment/web", f"web={images['v2']}", "-n", NS, "--dry-run", env=env
    )
    assert dry.returncode == 0, dry.stderr
    assert f"+          image: {images['v2']}  # bumped by CI" in dry.stdout
    assert "not pushed (dry run)" in dry.stderr
    assert git(remote.bare, "rev-parse", "main") == head

    # set image: a commit naming the build, comments kept; sync --wait: healthy -> exit 0
    done = gitops(
        "set", "image", "deployment/web", f"web={images['v2']}", "-n", NS, "--push", env=env
    )
    assert done.returncode == 0, done.stderr
    v2 = git(remote.bare, "rev-parse", "main")
    message = git(remote.bare, "log", "-1", "--format=%B", v2)
    assert message.startswith(f"Set image of deployment {NS}/web: web={images['v2']}")
    assert "Build-URL: https://ci.example/job/web/42/" in message
    assert "# bumped by CI" in git(remote.bare, "show", f"{v2}:web.yaml")
    started = time.monotonic()
    waited = sync_wait(env, v2)
    print(f"\nsync --wait v2: exit {waited.returncode} in {time.monotonic() - started:.1f}s")
    assert waited.returncode == 0, waited.stderr
    verdict = json.loads(waited.stdout)
    assert verdict["state"] == "Succeeded" and verdict["applied"] == v2
    assert "Waiting" in waited.stderr or "Succeeded" in waited.stderr  # progress lines

    # the same through the API alone: one blocking call
    code, answer = post(
        url + f"/api/v1/sync?revision={v2[:10]}&wait=true&timeout=30s",
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    assert (code, answer["state"]) == (200, "Succeeded")

    # scale, and a wait too short for it: exit 2; then long enough: exit 0
    assert gitops("scale", "deployment/web", "-n", NS, "--replicas", "3", env=env).returncode == 0
    scaled = git(remote.bare, "rev-parse", "main")
    assert "replicas: 3" in git(remote.bare, "show", f"{scaled}:web.yaml")
    short = sync_wait(env, scaled, "1ms")
    assert short.returncode == 2, short.stderr
    assert json.loads(short.stdout)["state"] == "TimedOut"
    assert sync_wait(env, scaled).returncode == 0

    # an image that never becomes ready: rolled back, exit 1 with the reason
    bad = gitops("set", "image", "deployment/web", f"web={images['v2-unready']}", "-n", NS, env=env)
    assert bad.returncode == 0, bad.stderr
    failing = git(remote.bare, "rev-parse", "main")
    failed = sync_wait(env, failing)
    assert failed.returncode == 1, failed.stderr
    answer = json.loads(failed.stdout)
    assert answer["state"] == "Failed" and "rolled back" in answer["message"], answer

    # a commit that is not on the branch: exit 1, said so
    missing = sync_wait(env, "0123456789abcdef0123456789abcdef01234567", "30s")
    assert missing.returncode == 1 and "not on branch main" in missing.stderr

    # an invalid commit: rejected with file and field named, exit 1; nothing running changes
    git(remote.work, "pull", "-q", "origin", "main")  # gitops' own commits are upstream
    remote.write_text("web.yaml", web_yaml(images["v1"], replicas=-1))
    invalid = remote.push("replicas -1")
    rejected = sync_wait(env, invalid, "30s")
    assert rejected.returncode == 1
    text = json.loads(rejected.stdout)["message"]
    assert "ValidationFailed" in text and "web.yaml" in text and "replicas" in text

    # notifications: the generic receiver failed twice and was retried; both formats heard
    wait_for(lambda: "RolledBack" in seen.kinds("/generic"), 30, 0.2)
    wait_for(lambda: "SyncFailed" in seen.kinds("/generic"), 30, 0.2)
    kinds = seen.kinds("/generic")
    assert {"RolloutSucceeded", "RolloutFailed", "RolledBack", "SyncFailed"} <= set(kinds)
    assert seen.attempts >= len(seen.calls) + 2  # the two 500s were retried
    failed_event = next(
        b for p, b in seen.calls if p == "/generic" and b["kind"] == "RolloutFailed"
    )
    assert failed_event["commit"] == failing and failed_event["namespace"] == NS
    assert failed_event["severity"] == "warning" and failed_event["rolled_back_to"]
    slack = seen.kinds("/slack")
    assert any("*RolledBack* deployment handoff/web" in t for t in slack), slack
    _, samples = scrape(url)
    notes = "gitops_notifications_total"
    assert value(samples, notes, format="slack", event="RolledBack", result="success") == 1

    # no Secret value anywhere: API answers, metrics, logs, get -o yaml
    outputs = [json.dumps(get(url + path)) for path in _READS] + [scrape(url)[0]]
    for kind in ("secrets", "deployments", "pods", "configmaps"):
        out = gitops("get", kind, "-o", "yaml", env=env)
        assert out.returncode == 0, out.stderr
        outputs.append(out.stdout)
    secrets = gitops("get", "secrets", "-n", NS, "-o", "json", env=env)
    [secret] = json.loads(secrets.stdout)["items"]
    assert secret["kind"] == "Secret" and secret["status"]["keys"] == ["password"]
    assert "data" not in secret and "stringData" not in secret
    outputs += [seen.calls.__repr__(), Path(env["LOG"]).read_text()]
    for text in outputs:
        assert SECRET_VALUE not in text
        assert API_TOKEN not in text and HOOK_SECRET not in text


_READS = (
    "/api/v1/status",
    "/api/v1/history",
    "/api/v1/deployments",
    "/api/v1/pods",
    "/api/v1/services",
    "/api/v1/secrets",
    "/api/v1/configmaps",
    f"/api/v1/rollouts/{NS}/web",
    "/api/v1/nodes",
    "/readyz",
)


def test_the_ci_handoff_script_deploys_and_reports_like_a_ci_job(
    running: dict[str, str], remote: GitRemote, images: Images
) -> None:
    """deploy/ci/handoff.sh, which the Jenkinsfile and travis.yml run, end to end."""
    env = {**running, "GITOPS_CLI": f"{sys.executable} -m gitops", "GITOPS_WAIT_TIMEOUT": "90s"}
    script = str(ROOT / "deploy" / "ci" / "handoff.sh")
    run = subprocess.run(
        ["bash", script, images["v2"], "web", "web", NS],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    head = git(remote.bare, "rev-parse", "main")
    assert f"commit {head}" in run.stderr and "Succeeded" in run.stderr
    assert f"image: {images['v2']}" in git(remote.bare, "show", f"{head}:web.yaml")
    failed = subprocess.run(
        ["bash", script, images["v2-unready"], "web", "web", NS],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert failed.returncode == 1 and "rolled back" in failed.stderr, failed.stderr
    for ci in ("Jenkinsfile", "travis.yml"):
        text = (ROOT / "deploy" / "ci" / ci).read_text()
        assert "deploy/ci/handoff.sh" in text and "docker push" in text
    yaml_text = (ROOT / "deploy" / "ci" / "travis.yml").read_text()
    assert yaml.safe_load(yaml_text)["deploy"]["provider"] == "script"
