"""Parsing data from others, bounded (pure): size, nesting depth and, for YAML, the size of the
data once its aliases are expanded, each checked before the parser builds anything.

JSON and YAML parsers recurse per nesting level and YAML aliases share nodes, so a small file
can hold a structure that breaks the parser (``'[' * 100000``: RecursionError) or that
explodes when it is walked, copied or printed (a "billion laughs" file of a few hundred bytes
holds 10^8 strings). :class:`TooLarge` names the limit that was passed; no traceback, no
memory spent on the bomb.
"""

from __future__ import annotations

import json
import re
from typing import Any

from kvmops.errors import InvalidInput

MAX_DEPTH = 32  # nesting levels of lists and mappings (a manifest needs 3, an inventory ~10)
MAX_NODES = 200_000  # values in a YAML document with its aliases expanded
# A JSON string (escapes included), or one bracket: the tokens that decide the nesting depth.
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


class TooLarge(InvalidInput):
    """Data beyond a bound (bytes, nesting depth, expanded size): refused before it is parsed."""


def check_size(data: str | bytes, limit: int, where: str) -> None:
    if len(data) > limit:
        raise TooLarge(f"{where}: larger than {limit} bytes: refused (not what kvmops reads there)")


def json_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """The nesting depth of a JSON text, counted up to ``limit + 1`` (then it stops)."""
    depth = deepest = 0
    for m in _JSON_TOKENS.finditer(text):
        c = m.group()
        if c in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                break
        elif c in "]}":
            depth -= 1
    return deepest


def load_json(text: str, where: str, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` of a text within ``max_bytes`` and ``max_depth``; InvalidInput otherwise."""
    check_size(text, max_bytes, where)
    if json_depth(text, max_depth) > max_depth:
        raise TooLarge(f"{where}: nested deeper than {max_depth} levels: refused")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"{where}: not valid JSON: {str(exc)[:200]}") from None


def _flow_depth(text: str, limit: int) -> int:
    """Brackets opened and not yet closed, at most, counted up to ``limit + 1`` (YAML flow
    style; quotes are not parsed, so brackets inside strings count: only ever towards a refusal)."""
    depth = deepest = 0
    for c in re.sub(r"[^\[\]{}]", "", text):
        depth += 1 if c in "[{" else -1
        deepest = max(deepest, depth)
        if deepest > limit:
            break
    return deepest


def check_yaml(text: str, where: str, *, max_bytes: int, max_depth: int = MAX_DEPTH,
               max_nodes: int = MAX_NODES) -> None:
    """Refuse a YAML text beyond the bounds; the document's node graph is composed (aliases
    stay shared), never constructed: a bomb is measured, not built."""
    import yaml

    check_size(text, max_bytes, where)
    if _flow_depth(text, max_depth) > max_depth:
        raise TooLarge(f"{where}: nested deeper than {max_depth} levels: refused")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        docs = list(yaml.compose_all(text, Loader=loader))
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{where}: not valid YAML: {str(exc)[:300]}") from None
    except RecursionError:
        raise TooLarge(f"{where}: nested deeper than {max_depth} levels: refused") from None
    sizes: dict[int, int] = {}
    for doc in docs:
        if doc is not None and _expanded(doc, sizes, 1, max_depth, where) > max_nodes:
            raise TooLarge(f"{where}: holds more than {max_nodes} values once its aliases (*name) are expanded: "
                           "refused (a YAML bomb, or far more than an inventory needs)")


def _expanded(node: Any, sizes: dict[int, int], depth: int, max_depth: int, where: str) -> int:
    """Values under ``node`` with every alias expanded (memoised per node: a bomb costs its size
    in nodes, not in values)."""
    if depth > max_depth:
        raise TooLarge(f"{where}: nested deeper than {max_depth} levels: refused")
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = 1 << 62  # a node inside itself (a recursive alias) is endless
    value = node.value
    if isinstance(value, list):
        pairs = [p for item in value for p in (item if isinstance(item, tuple) else (item,))]
        total = 1 + sum(_expanded(child, sizes, depth + 1, max_depth, where) for child in pairs)
    else:
        total = 1
    sizes[id(node)] = total
    return total
