"""kvmops: executable runbooks for a plain KVM/libvirt host.

Layers (data flows down): pure builders and parsers (``units``, ``names``, ``lvm.facts``,
``lvm.commands``, ``guards``) -> operations returning a :class:`~kvmops.plan.Plan` ->
runners and the libvirt adapter at the edge (``runners``, ``virt``).
"""

__version__ = "0.1.0"
