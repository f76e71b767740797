"""Parsers over real captured output: tests/fixtures/images/<kind>/<case>.txt with the
expected value beside it in <case>.expected.json (one parametrized test over the glob)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from kvmops.errors import InvalidInput
from kvmops.images import partitions, probe

FIXTURES = Path(__file__).parent.parent / "fixtures" / "images"


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


PARSERS = {
    "qemu-img-info": probe.parse_qemu_img_info,
    "sfdisk": partitions.parse_sfdisk,
    "lsblk": partitions.parse_lsblk,
    "blkid": partitions.parse_blkid_export,
    "kpartx": partitions.parse_kpartx,
}

CASES = sorted(FIXTURES.glob("*/*.txt"))


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_parser_matches_expected(path: Path) -> None:
    expected = json.loads(path.with_suffix(".expected.json").read_text())
    parsed = PARSERS[path.parent.name](path.read_text())
    assert _plain(parsed) == expected


def test_every_kind_has_cases() -> None:
    kinds = {p.parent.name for p in CASES}
    assert kinds == set(PARSERS)


@pytest.mark.parametrize("bad", ["", "{", '{"format": "raw"}', "[]"])
def test_qemu_img_info_garbage_is_a_clear_error(bad: str) -> None:
    with pytest.raises(InvalidInput, match="qemu-img info"):
        probe.parse_qemu_img_info(bad)


def test_sfdisk_garbage_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match="sfdisk -J"):
        partitions.parse_sfdisk('{"partitiontable": {}}')


def test_kpartx_name_without_delimiter_is_refused() -> None:
    with pytest.raises(InvalidInput, match="-p p"):
        partitions.parse_kpartx("del devmap : rl_build-vmtest\n")
