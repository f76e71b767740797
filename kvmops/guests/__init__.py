"""Guests: the domain from the guide's template, the libvirt lifecycle and the host inventory.

- :mod:`kvmops.guests.spec`: :class:`GuestSpec`, :func:`guest_spec` (validated parameters)
- :mod:`kvmops.guests.xml`: :func:`render_domain_xml`, :func:`read_domain` (pure)
- :mod:`kvmops.guests.lifecycle`: define/start/autostart/shutdown/destroy/undefine plans from facts
- :mod:`kvmops.guests.inventory`: :func:`inventory_of` the host's facts, :func:`render_table`
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kvmops.lazy import exports

if TYPE_CHECKING:
    from kvmops.guests.inventory import Inventory, build_inventory, inventory_of
    from kvmops.guests.spec import GuestSpec, guest_spec, memory_kib
    from kvmops.guests.xml import DomainFacts, read_domain, render_domain_xml

# name -> submodule, imported on first use: importing one submodule loads no other
_WHERE = {
    "DomainFacts": "xml",
    "GuestSpec": "spec",
    "Inventory": "inventory",
    "build_inventory": "inventory",
    "guest_spec": "spec",
    "inventory_of": "inventory",
    "memory_kib": "spec",
    "read_domain": "xml",
    "render_domain_xml": "xml",
}
__all__ = [
    "DomainFacts",
    "GuestSpec",
    "Inventory",
    "build_inventory",
    "guest_spec",
    "inventory_of",
    "memory_kib",
    "read_domain",
    "render_domain_xml",
]
__getattr__ = exports(__name__, _WHERE)
