"""Where a user's gitops state lives, and the API token: what every verb may need, kept
apart from the settings (which import the manifest model) so a CLI verb starts fast."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def default_state_dir() -> Path:
    env = os.environ.get("GITOPS_STATE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "gitops"


TOKEN_ENV = "GITOPS_API_TOKEN"  # noqa: S105 - the variable's name, not a token
TOKEN_FILE_ENV = "GITOPS_API_TOKEN_FILE"  # noqa: S105
TOKEN_FILE = "api-token"  # noqa: S105 - under the state directory


def read_secret(path: str | Path) -> str:
    """A secret from a file, as Docker and systemd credentials hand them over."""
    return Path(path).read_text().strip()


def api_token(state_dir: Path, file: str | None = None, create: bool = False) -> str:
    """The API's bearer token: ``file``, else ``$GITOPS_API_TOKEN``, else
    ``$GITOPS_API_TOKEN_FILE``, else ``STATE_DIR/api-token``. With ``create`` (``gitops run``)
    a missing one is made there, readable by its owner only, as Argo CD makes its first admin
    secret: the API is never open by accident. "" when there is none."""
    if file:
        return read_secret(file)
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV].strip()
    if os.environ.get(TOKEN_FILE_ENV):
        return read_secret(os.environ[TOKEN_FILE_ENV])
    where = state_dir / TOKEN_FILE
    if where.exists():
        return read_secret(where)
    if not create:
        return ""
    state_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return token
