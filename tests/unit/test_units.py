from __future__ import annotations

import pytest

from kvmops.errors import InvalidInput
from kvmops.units import human, lvm_size, parse_size

G = 1024**3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10g", 10 * G), ("10G", 10 * G), ("1.5t", int(1.5 * 1024**4)), ("512", 512 * 1024**2),
        ("2048s", 2048 * 512), ("4k", 4096), ("7b", 7), ("<100.00g", 100 * G), ("10GiB", 10 * G),
        (" 5m ", 5 * 1024**2), (3, 3 * 1024**2),
    ],
)
def test_parse_size_base2_any_case(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["0", "0g", "-5g", "10x", "ten", "", "g", "1e3g", "10 gb gb", True])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_size(text)


@pytest.mark.parametrize(
    ("nbytes", "arg"), [(10 * G, "10g"), (512 * 1024**2, "512m"), (1536 * 1024, "1536k"), (7, "7b"),
                        (1024**4, "1t")],
)
def test_lvm_size_round_trips(nbytes: int, arg: str) -> None:
    assert lvm_size(nbytes) == arg
    assert parse_size(arg) == nbytes


def test_lvm_size_refuses_zero() -> None:
    with pytest.raises(InvalidInput):
        lvm_size(0)


def test_human() -> None:
    assert human(10 * G) == "10.00 GiB"
    assert human(512) == "512 B"
