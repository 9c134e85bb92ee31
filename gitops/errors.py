"""Errors, classified by what the caller should do about them.

Every error gitops raises derives from ``GitopsError``. Two families say how to retry:
``PermanentError`` (retrying the same input cannot help: a bad manifest, an image that does not
exist) and ``TemporaryError`` (the world may change: a remote that is down, a node that does not
answer), the latter carrying the delay after which a retry makes sense. ``Reason`` holds the
named failure reasons that status, history and metrics report (as Flux's condition reasons).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


class Reason:
    """Named failure and progress reasons (stable strings: they appear in status and history)."""

    VALIDATION_FAILED: Final = "ValidationFailed"
    SOURCE_UNAVAILABLE: Final = "SourceUnavailable"
    NODE_UNAVAILABLE: Final = "NodeUnavailable"
    STATE_UNAVAILABLE: Final = "StateUnavailable"
    IMAGE_PULL_FAILED: Final = "ImagePullBackOff"
    CREATE_FAILED: Final = "CreateContainerError"
    CONFIG_FAILED: Final = "CreateContainerConfigError"
    EMPTY_COMMIT: Final = "EmptyCommitRefused"
    HOOK_FAILED: Final = "PreSyncHookFailed"
    SUCCEEDED: Final = "ReconciliationSucceeded"
    INTERNAL: Final = "InternalError"
    NOT_LEADER: Final = "NotLeader"


class GitopsError(Exception):
    """Root of every error gitops raises on purpose."""

    reason: str = Reason.INTERNAL


def internal(exc: BaseException) -> str:
    """What status, history and notifications say of an unexpected exception: its type only.
    Its text may hold anything (a value it choked on); the traceback goes to the log alone."""
    return f"internal error ({type(exc).__name__}); the traceback is in the log"


class PermanentError(GitopsError):
    """Retrying with the same input will fail the same way."""


class TemporaryError(GitopsError):
    """Retrying later may succeed; ``delay`` is a hint in seconds."""

    def __init__(self, message: str, delay: float = 5.0) -> None:
        super().__init__(message)
        self.delay = delay


@dataclass(frozen=True)
class FieldError:
    """One problem in one manifest: where it is and what is wrong.

    Rendered as ``path/to/file.yaml:DOC_INDEX: Kind/name: field.path: message``.
    ``doc`` is the 0-based index of the YAML document in its file.
    """

    path: str
    doc: int
    resource: str
    field: str
    message: str

    def __str__(self) -> str:
        parts = [f"{self.path}:{self.doc}"]
        if self.resource:
            parts.append(self.resource)
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts)


class ManifestError(PermanentError):
    """A commit's manifests are invalid; carries every error found, not just the first."""

    reason = Reason.VALIDATION_FAILED

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.path, e.doc, e.field))
        n = len(self.errors)
        head = f"{n} error{'s' if n != 1 else ''} in manifests"
        super().__init__(head + ":\n" + "\n".join(f"  {e}" for e in self.errors))


class EmptyCommitError(PermanentError):
    """The commit has no manifests while managed workloads run, and empty syncs are not allowed."""

    reason = Reason.EMPTY_COMMIT


class SourceUnavailable(TemporaryError):
    """The git remote could not be reached or read."""

    reason = Reason.SOURCE_UNAVAILABLE


class StateUnavailable(TemporaryError):
    """The state database could not be read or written (disk full, no file descriptor)."""

    reason = Reason.STATE_UNAVAILABLE


class NotLeader(TemporaryError):
    """This process does not hold the lease (``--leader-elect``): it must not act. Raised
    before an engine change or a state write of a leader whose term ended, or of a follower;
    the work waits for whoever leads (perhaps this process again, after an election)."""

    reason = Reason.NOT_LEADER


class NodeUnavailable(TemporaryError):
    """A Docker engine did not answer."""

    reason = Reason.NODE_UNAVAILABLE


class ImagePullError(PermanentError):
    """An image could not be pulled (not found, denied). Permanent for this image reference."""

    reason = Reason.IMAGE_PULL_FAILED


class ContainerCreateError(PermanentError):
    """The engine refused to create or start a container from a valid spec."""

    reason = Reason.CREATE_FAILED


class SandboxGone(ContainerCreateError):
    """A pod's container cannot start again: the network it was made on is gone (its engine
    restarted and made its networks anew). Retrying cannot help; the pod is made again."""


class ContainerConfigError(ContainerCreateError):
    """The kubelet's checks before a container starts refuse it (``runAsNonRoot`` and an image
    that runs as root): no engine call is made."""

    reason = Reason.CONFIG_FAILED
