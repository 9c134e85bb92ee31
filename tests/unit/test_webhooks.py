"""Webhook verification and payload reading for each provider, on their documented shapes."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from gitops.decide import webhooks as w

SECRET = b"hook-secret"
REPO = "https://git.example.com/acme/deploy.git"
SHA = "a" * 40


def sig(body: bytes, secret: bytes = SECRET) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def github(ref: str = "refs/heads/main", url: str = REPO) -> dict[str, Any]:
    return {
        "ref": ref,
        "after": SHA,
        "repository": {
            "full_name": "acme/deploy",
            "clone_url": url,
            "ssh_url": "git@git.example.com:acme/deploy.git",
        },
    }


def gitlab(ref: str = "refs/heads/main") -> dict[str, Any]:
    return {
        "object_kind": "push",
        "ref": ref,
        "checkout_sha": SHA,
        "project": {
            "git_http_url": REPO,
            "git_ssh_url": "git@git.example.com:acme/deploy.git",
            "path_with_namespace": "acme/deploy",
        },
    }


def bitbucket_cloud(branch: str = "main") -> dict[str, Any]:
    return {
        "push": {"changes": [{"new": {"type": "branch", "name": branch, "target": {"hash": SHA}}}]},
        "repository": {
            "full_name": "acme/deploy",
            "links": {"html": {"href": "https://git.example.com/acme/deploy"}},
        },
    }


def bitbucket_server(ref: str = "refs/heads/main") -> dict[str, Any]:
    return {
        "changes": [{"ref": {"id": ref}, "toHash": SHA}],
        "repository": {
            "slug": "deploy",
            "project": {"key": "ACME"},
            "links": {"clone": [{"href": "ssh://git@git.example.com:7999/acme/deploy.git"}]},
        },
    }


def signed(provider: str, data: dict[str, Any], **extra: str) -> tuple[dict[str, str], bytes]:
    body = json.dumps(data).encode()
    headers = {
        "github": {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + sig(body)},
        "gitlab": {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET.decode()},
        "gitea": {"X-Gitea-Event": "push", "X-Gitea-Signature": sig(body)},
        "bitbucket": {"X-Event-Key": "repo:push", "X-Hub-Signature": "sha256=" + sig(body)},
        "generic": {"X-Gitops-Signature": "sha256=" + sig(body)},
    }[provider]
    return {**headers, **extra}, body


def judge(provider: str, headers: dict[str, str], body: bytes) -> w.Verdict:
    return w.judge(provider, headers, body, SECRET, REPO, "main")


@pytest.mark.parametrize(
    ("provider", "data", "extra"),
    [
        ("github", github(), {}),
        ("gitlab", gitlab(), {}),
        ("gitea", github(), {}),
        ("bitbucket", bitbucket_cloud(), {}),
        ("bitbucket", bitbucket_server(), {"X-Event-Key": "repo:refs_changed"}),
        ("generic", {"repository": REPO, "branch": "main", "revision": SHA}, {}),
        ("generic", {}, {}),  # a bare "go" from a script is a push of whatever is newest
    ],
)
def test_a_signed_push_to_our_branch_is_accepted(
    provider: str, data: dict[str, Any], extra: dict[str, str]
) -> None:
    headers, body = signed(provider, data, **extra)
    verdict = judge(provider, headers, body)
    assert (verdict.result, verdict.status) == (w.ACCEPTED, 202), verdict.message
    assert verdict.revision in (SHA, "")


@pytest.mark.parametrize("provider", w.PROVIDERS)
def test_a_wrong_or_missing_signature_is_401(provider: str) -> None:
    data = gitlab() if provider == "gitlab" else github()
    headers, body = signed(provider, data)
    forged = {k: v.replace(v[-4:], "0000") for k, v in headers.items()}
    assert judge(provider, forged, body).status == 401
    events = {k: v for k, v in headers.items() if "Signature" not in k and "Token" not in k}
    assert judge(provider, events, body).status == 401
    # signed with another secret, or the body changed after signing
    tampered = body.replace(b"main", b"mainx")
    assert judge(provider, headers, tampered).status == (401 if provider != "gitlab" else 200)


def test_pushes_elsewhere_are_acknowledged_and_ignored() -> None:
    for data in (github(ref="refs/heads/dev"), github(ref="refs/tags/v1")):
        assert judge("github", *signed("github", data)).result == w.IGNORED
    other = github(url="https://git.example.com/acme/other.git")
    other["repository"]["ssh_url"] = "git@git.example.com:acme/other.git"
    other["repository"]["full_name"] = "acme/other"
    assert judge("github", *signed("github", other)).result == w.IGNORED
    assert judge("bitbucket", *signed("bitbucket", bitbucket_cloud("dev"))).result == w.IGNORED
    ping = judge("github", *signed("github", {"zen": "hi"}, **{"X-GitHub-Event": "ping"}))
    assert (ping.result, ping.message) == (w.IGNORED, "pong")
    issue = judge("gitlab", *signed("gitlab", {"object_kind": "issue"}))
    assert issue.result == w.IGNORED


def test_no_secret_configured_means_webhooks_are_off() -> None:
    headers, body = signed("github", github())
    assert w.judge("github", headers, body, b"", REPO, "main").status == 403
    assert w.judge("gitlub", headers, body, SECRET, REPO, "main").status == 400


def test_a_signed_body_that_is_not_json_is_400() -> None:
    body = b"{not json"
    headers = {"X-Hub-Signature-256": "sha256=" + sig(body), "X-GitHub-Event": "push"}
    assert judge("github", headers, body).status == 400


@pytest.mark.parametrize(
    "url",
    [
        "https://git.example.com/acme/deploy",
        "https://user:pw@GIT.example.com:443/acme/deploy.git/",
        "ssh://git@git.example.com:22/acme/deploy.git",
        "git@git.example.com:acme/deploy.git",
        "acme/deploy",
    ],
)
def test_one_repository_in_every_url_form(url: str) -> None:
    assert w.same_repository(REPO, [url])


def test_local_paths_and_other_repositories() -> None:
    assert w.same_repository("/srv/git/deploy.git", ["file:///srv/git/deploy.git"])
    assert w.same_repository("/srv/git/deploy.git", ["/srv/git/deploy"])
    assert not w.same_repository(REPO, ["https://git.example.com/acme/deploy-old.git"])
    assert not w.same_repository(REPO, ["https://other.example.com/acme/deploy.git"])
    assert not w.same_repository(REPO, ["evil/deploy"])
