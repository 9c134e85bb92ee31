"""An interactive command in a container (``gitops exec``, and ``port-forward``'s relay): the
one interface both engines answer with (``Node.exec_stream``). Its frames, as the API's
stream listener and the CLI speak them over an upgraded connection, are here too. Pure.

A frame is one byte of channel, four of length (big-endian) and the payload; a connection
carries them both ways, as Kubernetes' remotecommand channels do.
"""

from __future__ import annotations

import struct
from typing import Final, Protocol

STDIN: Final = 0
STDOUT: Final = 1
STDERR: Final = 2
RESIZE: Final = 3  # payload: columns, rows (two unsigned 16-bit numbers)
EXIT: Final = 4  # payload: the exit code, as text
STDIN_EOF: Final = 5
ERROR: Final = 6  # payload: why the command could not run, as text
MAX_FRAME = 1 << 20
_HEAD = struct.Struct(">BI")


class ExecSession(Protocol):
    def write(self, data: bytes) -> None: ...

    def close_stdin(self) -> None: ...

    def read(self) -> tuple[int, bytes]:
        """(STDOUT or STDERR, bytes) as they come; (STDOUT, b"") once the command ended."""
        ...

    def resize(self, columns: int, rows: int) -> None: ...

    def exit_code(self) -> int:
        """Once ``read`` gave its end: how the command ended."""
        ...

    def close(self) -> None: ...


def frame(channel: int, payload: bytes = b"") -> bytes:
    return _HEAD.pack(channel, len(payload)) + payload


def resize_frame(columns: int, rows: int) -> bytes:
    return frame(RESIZE, struct.pack(">HH", max(1, min(columns, 65535)), max(1, min(rows, 65535))))


def size_of(payload: bytes) -> tuple[int, int]:
    columns, rows = struct.unpack(">HH", payload[:4])
    return int(columns), int(rows)


class FrameReader:
    """Frames out of a byte stream that comes in pieces."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        out = []
        while len(self._buf) >= _HEAD.size:
            channel, length = _HEAD.unpack_from(self._buf)
            if length > MAX_FRAME:
                raise ValueError(f"a frame of {length} bytes is over the {MAX_FRAME}-byte limit")
            if len(self._buf) < _HEAD.size + length:
                break
            out.append((channel, self._buf[_HEAD.size : _HEAD.size + length]))
            self._buf = self._buf[_HEAD.size + length :]
        return out
