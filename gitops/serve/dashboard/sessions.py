"""Signed-in dashboard sessions: a browser that gave the API token gets a session cookie
(HttpOnly, SameSite=Strict, Secure over TLS) and a CSRF token that every form it posts must
carry. Sessions live in memory only: a restart of the reconciler signs everyone out, and no
file holds anything that stands for the token.

Bounded: at most ``MAX_SESSIONS`` (the oldest go first), each for ``LIFETIME`` seconds; sign-in
attempts with a wrong token are limited (``MAX_FAILURES`` a minute), so the listener is no
oracle for guessing the token.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

COOKIE = "gitops_session"
LIFETIME = 12 * 3600.0
MAX_SESSIONS = 256
MAX_FAILURES = 10  # wrong tokens in a minute, from anyone, before sign-in is refused a while
FAILURE_WINDOW = 60.0


@dataclass(frozen=True)
class Session:
    sid: str
    csrf: str
    expires: float


class TooManyAttempts(Exception):
    """Sign-in refused for now: too many wrong tokens in the last minute."""


class Sessions:
    def __init__(self, token: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._token = token.encode()
        self._clock = clock
        self._by_id: OrderedDict[str, Session] = OrderedDict()
        self._failures: deque[float] = deque()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Signing in needs a token to sign in with: without one, the dashboard only reads."""
        return bool(self._token)

    def sign_in(self, given: str) -> Session | None:
        """A new session for the right token; None for a wrong one."""
        now = self._clock()
        with self._lock:
            while self._failures and self._failures[0] < now - FAILURE_WINDOW:
                self._failures.popleft()
            if len(self._failures) >= MAX_FAILURES:
                raise TooManyAttempts("too many wrong tokens in the last minute: try again later")
            right = self.enabled and hmac.compare_digest(given.strip().encode(), self._token)
            if not right:
                self._failures.append(now)
                return None
            session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now + LIFETIME)
            self._by_id[session.sid] = session
            while len(self._by_id) > MAX_SESSIONS:
                self._by_id.popitem(last=False)
            return session

    def get(self, sid: str) -> Session | None:
        if not sid:
            return None
        with self._lock:
            session = self._by_id.get(sid)
            if session is None:
                return None
            if session.expires <= self._clock():
                del self._by_id[sid]
                return None
            return session

    def sign_out(self, sid: str) -> None:
        with self._lock:
            self._by_id.pop(sid, None)

    @staticmethod
    def csrf_ok(session: Session | None, given: str) -> bool:
        """The form's CSRF token is the session's own (compared in constant time)."""
        return session is not None and hmac.compare_digest(given.encode(), session.csrf.encode())


def cookie(session: Session | None, secure: bool) -> str:
    """The Set-Cookie value: the session's, or one that ends it (``None``)."""
    value, age = (session.sid, int(LIFETIME)) if session else ("", 0)
    flags = f"Path=/; Max-Age={age}; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")
    return f"{COOKIE}={value}; {flags}"


def session_id(cookie_header: str) -> str:
    for part in cookie_header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value.strip()
    return ""
