"""Kubernetes resource quantities (``500m``, ``0.5``, ``128Mi``, ``1G``, ``1e3``), parsed exactly.

Pure: used by validation (to reject what cannot be parsed) and by the desired-state builder
(to turn ``cpu``/``memory`` into Docker's NanoCpus and byte limits).
"""

from __future__ import annotations

import math
import re
from decimal import Context, Decimal, localcontext

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY = re.compile(
    r"(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:(?P<exp>[eE][+-]?\d+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)"
)
MAX_QUANTITY = 2**63 - 1  # Kubernetes: no quantity may be greater than this, in base units
# Room for any exponent a quantity can be written with, so none overflows on the way.
_NANO = Decimal("1e-9")
_WIDE = Context(prec=60, Emax=10**9, Emin=-(10**9))


def parse_quantity(value: str | int | float) -> Decimal:
    """The quantity's value in base units. Raises ValueError for anything Kubernetes rejects."""
    if isinstance(value, bool):
        raise ValueError("quantity must be a number or a string such as '500m' or '128Mi'")
    text = str(value)
    match = _QUANTITY.fullmatch(text)
    if not match:
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise ValueError(f"quantities must match the regular expression of Kubernetes: {shown!r}")
    number = Decimal(match.group("num"))
    if number < 0:
        raise ValueError(f"quantity must not be negative: {text!r}")
    with localcontext(_WIDE):
        if match.group("exp"):
            digits = match.group("exp")[1:]
            exponent = int(digits) if len(digits.lstrip("+-")) <= 8 else int(digits[:1] + "9" * 9)
            result = number.scaleb(exponent)
        else:
            suffix = match.group("suffix") or ""
            result = number * (_BINARY[suffix] if suffix in _BINARY else _DECIMAL[suffix])
        if result > MAX_QUANTITY:
            raise ValueError(
                f"quantity must not be greater than 2^63-1 ({MAX_QUANTITY}) in base units"
            )
        # Rounded to the context's precision; below a nano-unit, Kubernetes' smallest, up to it.
        return max(+result, _NANO) if result > 0 else +result


def cpu_millis(value: str | int | float) -> int:
    """CPU in millicores, rounded up as Kubernetes rounds (``0.0001`` is 1m)."""
    return math.ceil(parse_quantity(value) * 1000)


def memory_bytes(value: str | int | float) -> int:
    """Memory in bytes, rounded up."""
    return math.ceil(parse_quantity(value))


def format_cpu(millis: int) -> str:
    return f"{millis // 1000}" if millis % 1000 == 0 else f"{millis}m"


def format_memory(n: int) -> str:
    for suffix, size in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if n >= size and n % size == 0:
            return f"{n // size}{suffix}"
    return str(n)
