"""The parameters cell of a runbook: declaration, types, coercion of CLI strings.

A runbook has ONE code cell tagged ``parameters``; each line declares one parameter::

    guest = "influx"  # the guest whose disk to snapshot
    size = "5g"       # snapshot size (base-2: b s k m g t)
    password = ""     # secret: the root password (never stored in a record)

The type is the default's type (str, int, float, bool). A comment starting with ``secret``
marks a secret: it is never passed as a papermill parameter (see :mod:`kvmops.runbook.secrets`)
and its default must be empty. Values are coerced and checked here, BEFORE a kernel starts:
papermill itself would turn ``"010"`` into ``10`` and only warn about unknown names.

Each line holds exactly one ``=`` (write ``"": the default`` in a help, not ``"" = ...``):
papermill's own parameter inference cannot parse a line with two, and a plain
``papermill kvmops://NAME`` run would warn about it.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass

from kvmops.errors import InvalidInput

Value = str | int | float | bool
_SECRET = re.compile(r"^\s*(secret\b|\[secret\])", re.IGNORECASE)
_TRUE = ("true", "yes", "1", "on")
_FALSE = ("false", "no", "0", "off", "")


@dataclass(frozen=True)
class Param:
    """One declared parameter: ``name = default  # help``."""

    name: str
    default: Value
    type: type
    help: str = ""
    secret: bool = False

    @property
    def type_name(self) -> str:
        return self.type.__name__


class ParameterCellError(InvalidInput):
    """The runbook's parameters cell itself is malformed (a bug in the runbook file)."""


def parse_cell(source: str, where: str = "parameters cell") -> tuple[Param, ...]:
    """The parameters declared in a parameters cell's source, in order."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ParameterCellError(f"{where}: not valid Python: {exc}") from None
    comments = _comments(source)
    lines = source.splitlines()
    out: list[Param] = []
    for node in tree.body:
        out.append(_param(node, comments, where))
        if lines[node.lineno - 1].count("=") != 1:
            raise ParameterCellError(
                f"{where}, line {node.lineno}: more than one '=' in {lines[node.lineno - 1].strip()!r}: papermill "
                "cannot parse such a line; write ':' instead of '=' in the help comment"
            )
    names = [p.name for p in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ParameterCellError(f"{where}: parameter(s) declared twice: {', '.join(dupes)}")
    return tuple(out)


def _param(node: ast.stmt, comments: dict[int, str], where: str) -> Param:
    if not (isinstance(node, ast.Assign) and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)):
        raise ParameterCellError(f"{where}, line {node.lineno}: only `name = literal  # help` lines allowed")
    name = node.targets[0].id
    try:
        default = ast.literal_eval(node.value)
    except ValueError:
        raise ParameterCellError(f"{where}: {name}: the default must be a literal") from None
    if not isinstance(default, str | int | float | bool):
        raise ParameterCellError(f"{where}: {name}: default must be str, int, float or bool")
    text = comments.get(node.lineno, "")
    secret = bool(_SECRET.match(text))
    if secret and default != "":
        raise ParameterCellError(f"{where}: secret parameter {name} must default to \"\"")
    return Param(name, default, type(default), text, secret)


def _comments(source: str) -> dict[int, str]:
    """Line number -> the text of the comment at the end of that line."""
    out: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            out[tok.start[0]] = tok.string.lstrip("#").strip()
    return out


def coerce(param: Param, raw: object) -> Value:
    """``raw`` (a CLI string or a Python value) as the parameter's declared type.

    A str parameter keeps ``"010"`` as ``"010"``; bools accept true/false/yes/no/1/0/on/off.
    """
    if isinstance(raw, str) and param.type is not str:
        return _from_text(param, raw)
    if param.type is float and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    if type(raw) is not param.type:
        raise InvalidInput(
            f"parameter {param.name}: expected {param.type_name}, got {type(raw).__name__} {raw!r}"
        )
    assert isinstance(raw, str | int | float | bool)
    return raw


def _from_text(param: Param, text: str) -> Value:
    value = text.strip()
    if param.type is bool:
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise InvalidInput(f"parameter {param.name}: {text!r} is not a boolean: use true or false")
    try:
        if param.type is int:
            return int(value, 10)
        return float(value)
    except ValueError:
        raise InvalidInput(
            f"parameter {param.name}: {text!r} is not {'an integer' if param.type is int else 'a number'}"
        ) from None


def bind(declared: tuple[Param, ...], given: dict[str, object], runbook: str) -> dict[str, Value]:
    """Every declared parameter with its value: the given ones coerced, the rest defaults.

    An unknown name is an error that lists the known ones.
    """
    known = {p.name: p for p in declared}
    unknown = sorted(set(given) - set(known))
    if unknown:
        listed = ", ".join(f"{p.name} ({p.type_name})" for p in declared)
        raise InvalidInput(
            f"runbook {runbook} has no parameter {', '.join(unknown)}; its parameters are: {listed}"
        )
    return {p.name: coerce(p, given[p.name]) if p.name in given else p.default for p in declared}
