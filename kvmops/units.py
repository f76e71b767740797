"""Sizes as LVM understands them: base-2 suffixes ``b s k m g t p e`` in any case.

``parse_size("10g") == 10 * 1024**3``; ``parse_size("<100.00g")`` reads LVM's own rounded
report form; ``lvm_size(10 * 1024**3) == "10g"`` is the canonical argument for ``--size``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from kvmops.errors import InvalidInput

_D = TypeVar("_D", int, None)

UNITS = {
    "b": 1,
    "s": 512,
    "k": 1024,
    "m": 1024**2,
    "g": 1024**3,
    "t": 1024**4,
    "p": 1024**5,
    "e": 1024**6,
}
_SIZE = re.compile(r"^\s*([<>]?)\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]?)(?:i?[bB])?\s*$")


def parse_size(text: str | int, *, default_unit: str = "m") -> int:
    """Bytes from an LVM size. A bare number is in ``default_unit`` (LVM's default: MiB).

    Accepts ``10g``, ``10G``, ``1.5t``, ``512``, ``2048s``, ``10GiB`` and LVM's report form
    ``<100.00g``. Refuses zero, negatives and unknown suffixes.
    """
    if isinstance(text, bool):
        raise InvalidInput(f"size {text!r} is not a size")
    if isinstance(text, int):
        text = str(text)
    m = _SIZE.match(text)
    if not m:
        raise InvalidInput(
            f"size {text!r} is not understood: use a number with a base-2 suffix "
            f"b, s, k, m, g, t (any case), e.g. 10g"
        )
    _, number, unit = m.groups()
    unit = (unit or default_unit).lower()
    if unit not in UNITS:
        raise InvalidInput(f"size {text!r} has an unknown unit {unit!r}: use b, s, k, m, g or t")
    try:
        value = int(Decimal(number) * UNITS[unit])
    except InvalidOperation:
        raise InvalidInput(f"size {text!r} is not a number") from None
    if value <= 0:
        raise InvalidInput(f"size {text!r} must be larger than zero")
    return value


def size_or(text: str, default: _D) -> int | _D:
    """A size parameter: ``text`` parsed (:func:`parse_size`), or ``default`` when it is empty."""
    return parse_size(text) if text else default


def lvm_size(nbytes: int) -> str:
    """The shortest exact LVM argument for ``nbytes``: ``10g``, ``512m``, ``1536k``, ``7b``."""
    if nbytes <= 0:
        raise InvalidInput(f"size {nbytes} bytes must be larger than zero")
    for unit in ("t", "g", "m", "k"):
        if nbytes % UNITS[unit] == 0:
            return f"{nbytes // UNITS[unit]}{unit}"
    return f"{nbytes}b"


def human(nbytes: int) -> str:
    """A readable base-2 size: ``10.00 GiB``."""
    for unit, name in (("t", "TiB"), ("g", "GiB"), ("m", "MiB"), ("k", "KiB")):
        if abs(nbytes) >= UNITS[unit]:
            return f"{nbytes / UNITS[unit]:.2f} {name}"
    return f"{nbytes} B"
