"""Guests: the domain from the guide's template, the libvirt lifecycle and the host inventory.

- :mod:`kvmops.guests.spec`: :class:`GuestSpec`, :func:`guest_spec` (validated parameters)
- :mod:`kvmops.guests.xml`: :func:`render_domain_xml`, :func:`read_domain` (pure)
- :mod:`kvmops.guests.lifecycle`: define/start/autostart/shutdown/destroy/undefine plans from facts
- :mod:`kvmops.guests.inventory`: :func:`inventory_of` the host's facts, :func:`render_table`
"""
