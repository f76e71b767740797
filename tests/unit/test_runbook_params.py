"""The parameters cell: declaration, types, coercion and the cheap checks (no kernel)."""

from __future__ import annotations

import pytest

from kvmops.errors import InvalidInput
from kvmops.runbook.checks import check_values, choices
from kvmops.runbook.params import Param, ParameterCellError, bind, coerce, parse_cell

CELL = '''site = ""  # site file ("": demo)
apply = False  # execute the plan
count = 3  # how many
ratio = 0.5
guest = "influx"  # the guest
password = ""  # secret: the root password
action = "start"  # what to do: one of: start, shutdown, destroy
'''


def params() -> tuple[Param, ...]:
    return parse_cell(CELL)


def test_parse_types_help_and_secret() -> None:
    p = {x.name: x for x in params()}
    assert [x.name for x in params()] == ["site", "apply", "count", "ratio", "guest", "password", "action"]
    assert (p["apply"].type, p["count"].type, p["ratio"].type, p["guest"].type) == (bool, int, float, str)
    assert p["site"].help == 'site file ("": demo)'
    assert p["password"].secret and not p["guest"].secret
    assert choices(p["action"]) == ("start", "shutdown", "destroy")


@pytest.mark.parametrize("source, message", [
    ("x = len('a')", "literal"),
    ("x = 1\nx = 2", "declared twice"),
    ("import os", "only `name = literal"),
    ("x = [1]", "str, int, float or bool"),
    ('pw = "hunter2"  # secret', 'must default to ""'),
    ("x = (", "not valid Python"),
])
def test_malformed_cells_are_refused(source: str, message: str) -> None:
    with pytest.raises(ParameterCellError, match=message):
        parse_cell(source)


@pytest.mark.parametrize("name, raw, value", [
    ("guest", "010", "010"),  # papermill would make this 10
    ("count", "010", 10),
    ("count", 7, 7),
    ("ratio", "2", 2.0),
    ("ratio", 2, 2.0),
    ("apply", "yes", True),
    ("apply", "FALSE", False),
    ("apply", "0", False),
    ("apply", True, True),
])
def test_coerce(name: str, raw: object, value: object) -> None:
    p = {x.name: x for x in params()}[name]
    got = coerce(p, raw)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("name, raw, message", [
    ("count", "3.5", "not an integer"),
    ("count", "three", "not an integer"),
    ("apply", "maybe", "not a boolean"),
    ("ratio", "x", "not a number"),
    ("count", True, "expected int"),
    ("guest", 5, "expected str"),
])
def test_coerce_refuses(name: str, raw: object, message: str) -> None:
    p = {x.name: x for x in params()}[name]
    with pytest.raises(InvalidInput, match=message):
        coerce(p, raw)


def test_bind_fills_defaults_and_refuses_unknown_names() -> None:
    values = bind(params(), {"count": "5"}, "demo-book")
    assert values["count"] == 5 and values["guest"] == "influx" and values["apply"] is False
    with pytest.raises(InvalidInput, match=r"no parameter gest; its parameters are: site \(str\), apply"):
        bind(params(), {"gest": "x"}, "demo-book")


@pytest.mark.parametrize("given, message", [
    ({"guest": "bad name"}, "parameter guest: guest name 'bad name' is not allowed"),
    ({"guest": "-rf"}, "starts with '-'"),
    ({"action": "reboot"}, "not one of: start, shutdown, destroy"),
])
def test_checks(given: dict[str, object], message: str) -> None:
    values = bind(params(), given, "demo-book")
    with pytest.raises(InvalidInput, match=message):
        check_values(params(), values)


@pytest.mark.parametrize("cell, given, message", [
    ('size = "10g"', {"size": "10q"}, "parameter size: size '10q'"),
    ("vlan = 2368", {"vlan": "5000"}, "VLAN 5000 is outside 1-4094"),
    ('lv = "vmold"', {"lv": "a/b"}, "parameter lv: LV name"),
    ('address = ""', {"address": "10.5.68.300"}, "not an IPv4 address"),
    ("threshold = 0.0", {"threshold": "120"}, "outside 0-99"),
])
def test_checks_by_name(cell: str, given: dict[str, object], message: str) -> None:
    declared = parse_cell(cell)
    with pytest.raises(InvalidInput, match=message):
        check_values(declared, bind(declared, given, "x"))


def test_empty_strings_are_left_to_the_runbook() -> None:
    declared = parse_cell('guest = ""\nsize = ""')
    check_values(declared, bind(declared, {}, "x"))  # no error: "" means "not given"
    assert bind(declared, {}, "x") == {"guest": "", "size": ""}
