"""Names a package re-exports from its submodules, imported on first use (PEP 562).

A package's ``__init__`` that imports its submodules runs whenever any one of them is
imported: ``from kvmops.guests import hostfile`` would load the domain XML renderer, the
inventory and libvirt. With :func:`exports`, ``kvmops.guests.Inventory`` still works, and
loads ``kvmops.guests.inventory`` only then.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def exports(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: name -> the submodule that defines it."""

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{where[name]}"), name)

    return __getattr__
