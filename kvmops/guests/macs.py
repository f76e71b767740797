"""The MAC address of each guest NIC, chosen by kvmops when the guest is made (pure).

Why kvmops chooses it instead of libvirt: a MAC that libvirt invents at ``virsh define`` is
known only once the guest exists, so a static address cannot be bound to it (the NoCloud
network-config, the image's NetworkManager profile) and the DHCP reservation the guide asks
for (3.3.3) can only be made after the guest has already asked for an address.

A MAC here is a function of the site's name, the guest's name and the NIC's index: the same
guest on the same site always gets the same MACs (a re-run plans exactly what the first run
did), another site or guest gets others. It lies in libvirt's ``52:54:00`` prefix, which is
locally administered and unicast (first octet ``0x52``: bit 1 set, bit 0 clear), so it never
collides with a vendor's NIC. The low three octets come from SHA-256 of
``kvmops-mac/<site>/<guest>/<nic>/<attempt>``; when the result is taken already (by any NIC
of another guest in the host's facts, or of the fleet when it is known), ``attempt`` counts up
until one is free: deterministic as long as the MACs around it stay the same.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping

from kvmops.errors import InvalidInput

PREFIX = "52:54:00"
ATTEMPTS = 256  # 2^24 MACs per prefix: a host with this many collisions in a row is no host
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")


def normal(mac: str) -> str:
    """``52:54:00:AB:CD:EF`` -> ``52:54:00:ab:cd:ef``; InvalidInput unless a unicast MAC."""
    text = str(mac).strip().lower().replace("-", ":")
    if not _MAC.fullmatch(text):
        raise InvalidInput(f"MAC address {mac!r}: six hex octets separated by colons, e.g. 52:54:00:12:34:56")
    if int(text[:2], 16) & 1:
        raise InvalidInput(f"MAC address {mac!r} is a multicast address: a NIC needs a unicast one")
    return text


def _key(mac: str) -> str:
    """A MAC read from elsewhere (another guest's XML), compared without judging it."""
    return str(mac).strip().lower().replace("-", ":")


def derived(site: str, guest: str, nic: int, attempt: int = 0) -> str:
    """The MAC of NIC ``nic`` (0 = the first) of ``guest`` on ``site``, at ``attempt``."""
    digest = hashlib.sha256(f"kvmops-mac/{site}/{guest}/{nic}/{attempt}".encode()).digest()
    return PREFIX + "".join(f":{b:02x}" for b in digest[:3])


def choose(site: str, guest: str, count: int, taken: Iterable[str] = ()) -> tuple[str, ...]:
    """One MAC for each of ``count`` NICs, none of them in ``taken`` nor twice."""
    used = {_key(m) for m in taken}
    out: list[str] = []
    for nic in range(count):
        for attempt in range(ATTEMPTS):
            mac = derived(site, guest, nic, attempt)
            if mac not in used:
                break
        else:
            raise InvalidInput(f"no free MAC address for NIC {nic + 1} of guest {guest} after {ATTEMPTS} tries")
        used.add(mac)
        out.append(mac)
    return tuple(out)


def collisions(macs: Iterable[str], others: Mapping[str, Iterable[str]]) -> list[str]:
    """``MAC (guest X)`` for each of ``macs`` that another guest (name -> its MACs) has, and
    each MAC listed twice in ``macs``."""
    mine = [_key(m) for m in macs]
    out = [f"{m} (listed twice)" for i, m in enumerate(mine) if m in mine[:i]]
    for guest, theirs in sorted(others.items()):
        shared = sorted(set(mine) & {_key(m) for m in theirs})
        out += [f"{m} (guest {guest})" for m in shared]
    return out
