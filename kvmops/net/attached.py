"""Whether guests use a bridge: the guard of :func:`kvmops.net.ops.remove_bridge`.

Asked of the host's facts (:attr:`kvmops.hostfacts.HostFacts.bridges_in_use`): every guest libvirt
defines, running or not, whose domain XML names the bridge, and every guest NIC (a ``tun``
link or a ``vnet*`` name) that is a port of it now. Any other port that is not the bridge's
VLAN interface counts too (something else is plugged in). There is no weaker fallback: when
libvirt does not answer, :func:`kvmops.facts.read_facts` refuses and nothing is planned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kvmops.errors import SafetyError

if TYPE_CHECKING:
    from kvmops.hostfacts import HostFacts


def bridge_users(facts: HostFacts, bridge: str) -> tuple[str, ...]:
    """Why ``bridge`` is in use (empty when nothing uses it). Needs the network facts."""
    ports = [lk.name for lk in facts.net.ports(bridge) if not lk.is_vlan]  # FactsIncomplete if not read
    why = [facts.bridges_in_use[bridge]] if bridge in facts.bridges_in_use else []
    if ports:
        why.append(f"port{'s' if len(ports) > 1 else ''} {', '.join(ports)}")
    return tuple(why)


def bridge_free(facts: HostFacts, bridge: str) -> None:
    """Refuse, whoever calls, to act on a bridge that guests use."""
    users = bridge_users(facts, bridge)
    if users:
        raise SafetyError(f"guests are attached to {bridge} ({'; '.join(users)}): move them to another "
                          "bridge or undefine them, and detach their interfaces first; nothing was changed")
