"""Guests: the domain from the guide's template, the libvirt lifecycle and the host inventory.

- :mod:`kvmops.guests.spec`: :class:`GuestSpec`, :func:`guest_spec` (validated parameters)
- :mod:`kvmops.guests.xml`: :func:`render_domain_xml`, :func:`read_domain` (pure)
- :mod:`kvmops.guests.lifecycle`: define/start/autostart/shutdown/destroy/undefine plans
- :mod:`kvmops.guests.inventory`: :func:`read_inventory`, :func:`running_disks`, :func:`busy_disks`
"""

from kvmops.guests.inventory import Inventory, busy_disks, read_inventory, running_disks
from kvmops.guests.spec import GuestSpec, guest_spec, memory_kib
from kvmops.guests.xml import DomainFacts, read_domain, render_domain_xml

__all__ = [
    "DomainFacts",
    "GuestSpec",
    "Inventory",
    "busy_disks",
    "guest_spec",
    "memory_kib",
    "read_domain",
    "read_inventory",
    "render_domain_xml",
    "running_disks",
]
