"""Parse and print durations such as ``15s``, ``1m30s``, ``500ms`` (Go's time.Duration style)."""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; a bare number means seconds. Raises ValueError when unparsable."""
    text = text.strip()
    if not text:
        raise ValueError("empty duration")
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"invalid duration {text[:40]!r} (examples: 15s, 1m30s, 500ms)")
        return value
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"invalid duration {text[:40]!r} (examples: 15s, 1m30s, 500ms)")
    return total


def format_duration(seconds: float) -> str:
    """Short human form: ``850ms``, ``12s``, ``3m5s``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs}s" if secs else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m"
