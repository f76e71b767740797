"""nmcli / ip / bridge parsers against real captured output: one case per fixture pair.

``tests/fixtures/net/NAME.expected.json`` names the parser, the command, where the output was
captured, and the expected value; the output itself is ``NAME.out`` (or the file named by
``output``). Expected items may list only some fields: those are compared.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kvmops.net import iplink, nmcli

FIXTURES = Path(__file__).parent.parent / "fixtures" / "net"
CASES = sorted(FIXTURES.glob("*.expected.json"))

PARSERS: dict[str, Callable[[str], Any]] = {
    "nmcli.parse_list": nmcli.parse_list,
    "nmcli.parse_details": nmcli.parse_details,
    "nmcli.parse_devices": nmcli.parse_devices,
    "nmcli.parse_added": nmcli.parse_added,
    "nmcli.explain": nmcli.explain,
    "iplink.parse_links": iplink.parse_links,
    "iplink.parse_bridge_vlans": iplink.parse_bridge_vlans,
}


def _plain(value: Any) -> Any:
    """Dataclasses to dicts, tuples to lists: comparable with JSON."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _subset(got: Any, want: Any) -> None:
    """Every field the expectation lists is equal; lists have the same length."""
    if isinstance(want, dict) and isinstance(got, dict) and want and all(k in got for k in want):
        for key, value in want.items():
            assert got[key] == value, f"field {key}: got {got[key]!r}, want {value!r}"
        return
    if isinstance(want, list) and isinstance(got, list):
        assert len(got) == len(want), f"got {len(got)} items, want {len(want)}: {got}"
        for g, w in zip(got, want, strict=True):
            _subset(g, w)
        return
    assert got == want


def test_every_fixture_names_parser_command_and_source() -> None:
    assert len(CASES) >= 12
    for case in CASES:
        spec = json.loads(case.read_text())
        assert spec["parser"] in PARSERS, case.name
        assert spec["command"] and spec["source"], case.name
        assert _output(case, spec).exists(), case.name


def _output(case: Path, spec: dict[str, Any]) -> Path:
    return FIXTURES / str(spec.get("output", case.name.removesuffix(".expected.json") + ".out"))


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name.removesuffix(".expected.json"))
def test_parser_case(case: Path) -> None:
    spec = json.loads(case.read_text())
    got = _plain(PARSERS[spec["parser"]](_output(case, spec).read_text()))
    _subset(got, spec["expected"])


def test_terse_split_undoes_escapes() -> None:
    assert nmcli.split_terse(r"we\:ird\\x:uuid:bridge:") == ["we:ird\\x", "uuid", "bridge", ""]


@pytest.mark.parametrize(("text", "parser"), [
    ("only:three:fields\n", nmcli.parse_list),
    ("virbr1.68:bridge:connected\n", nmcli.parse_devices),
    ("no property line\n", nmcli.parse_details),
    ("connection.type:bridge\n", nmcli.parse_details),
    ("connection.id:x\nconnection.uuid:u\nbridge.stp:maybe\n", nmcli.parse_details),
    ("connection.id:x\nconnection.uuid:u\nbridge.ageing-time:long\n", nmcli.parse_details),
    ("Error: nothing added.\n", nmcli.parse_added),
])
def test_unreadable_nmcli_output_raises(text: str, parser: Callable[[str], Any]) -> None:
    with pytest.raises(nmcli.NmcliError):
        parser(text)


@pytest.mark.parametrize("text", ["not json", '{"ifname": "x"}', "42"])
def test_unreadable_ip_json_raises(text: str) -> None:
    with pytest.raises(iplink.IpJsonError):
        iplink.parse_links(text)


def test_explain_unknown_error_is_none() -> None:
    assert nmcli.explain("Error: something else.") is None
