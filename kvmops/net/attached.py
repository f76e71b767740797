"""Which bridges guests use: the ``attached`` input of :func:`kvmops.net.ops.remove_bridge`.

From the guests' libvirt domain XML (``<interface type='bridge'><source bridge='...'/>``)
when the guests package is available and libvirt answers; otherwise from the kernel: bridges
with a ``vnet*``/tap port (a running guest's NIC).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable

from kvmops.errors import KvmopsError
from kvmops.host import Host
from kvmops.net.facts import NetFacts

log = logging.getLogger("kvmops.net")


def bridges_with_taps(facts: NetFacts) -> frozenset[str]:
    """Bridges that have a guest NIC (a ``tun`` link or a ``vnet*`` name) as a port."""
    return frozenset(lk.master for lk in facts.links
                     if lk.master and (lk.kind == "tun" or lk.name.startswith("vnet")))


def bridges_in_xml(xmls: Iterable[str], read_domain: Callable[[str], object]) -> frozenset[str]:
    """The bridges named by domain XML documents (via the guests package's reader)."""
    return frozenset(b for x in xmls for b in getattr(read_domain(x), "bridges", ()))


def attached_bridges(host: Host, facts: NetFacts) -> frozenset[str]:
    """Bridges used by any defined guest (domain XML), plus any with a guest tap right now."""
    taps = bridges_with_taps(facts)
    try:
        reader = importlib.import_module("kvmops.guests.xml").read_domain
    except (ImportError, AttributeError):
        log.warning("kvmops.guests not available: guests attached to bridges known only from vnet ports")
        return taps
    try:
        domains = host.virt.domains()
    except KvmopsError as exc:
        log.warning("libvirt not reachable (%s): guests known only from vnet ports", exc)
        return taps
    return taps | bridges_in_xml((d.xml for d in domains), reader)
