"""image-tweak: the guide's offline tweaks (3.3) on a shut-off guest's disk or a raw image file.

- :func:`request`: the tweaks for the runbook's parameters, in the order they run
  (:func:`kvmops.images.tweaks.build`, the one builder: guest-create's ``setup=tweaks`` uses it
  too), with the static address they set.
- :func:`check`: the guest is shut off, its LV exists and is free (or the raw image file is
  used by no running guest).
- :func:`procedure`: one phase holding the disk read-write (its root mounted), previewed from
  the image's content read through a read-only mapping first, planned again from the
  read-write mount just before it runs, and executed by the one executor.
- :func:`verify`: looked at again (read-only), every tweak "already so" (:func:`judge`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from kvmops.executor import Procedure
from kvmops.facts import tweaks as tweak_facts
from kvmops.guests.xml import read_domain
from kvmops.host import Host
from kvmops.hostfacts import HostFacts
from kvmops.images import tweaks as tw
from kvmops.images.content import parse_keys
from kvmops.images.passwords import Password
from kvmops.net.address import StaticAddress, static_address, summary
from kvmops.plan import Plan
from kvmops.procedures import disks
from kvmops.procedures.base import Verdict, need
from kvmops.site import Site
from kvmops.units import human


def tweaks(login: str, *, password: str = "", root_password: str = "", keys: str = "",
           sudo: bool = False, console: bool = False, address: StaticAddress | None = None) -> list[tw.Tweak]:
    """The tweaks for these parameters (``keys``: public key lines separated by ``;``); refused
    when none is asked for. ``console``: a serial getty and GRUB on the serial console."""
    todo = tw.build(login, password=Password.clear(login, password) if password else None,
                    root_password=Password.clear("root", root_password) if root_password else None,
                    keys=parse_keys("keys", keys), sudo=sudo, getty=console, grub=console,
                    network=tw.StaticIp.from_address(address) if address else None)
    # the SELinux relabel alone (always last) is nothing to do
    need(todo[:-1], "nothing to do: give a password, keys, sudo=True, console=True or an address")
    return todo


@dataclass(frozen=True)
class Request:
    """What the runbook asks for: the tweaks, in order, and the static address they set."""

    tweaks: list[tw.Tweak] = field(repr=False)
    address: StaticAddress | None = None

    def render(self) -> str:
        """One line per tweak (never a password or its hash), then the address in full."""
        lines = ["tweaks:", *(f"- {describe(t)}" for t in self.tweaks)]
        return "\n".join(lines + ([summary(self.address)] if self.address else []))


def request(site: Site, guest: str, *, password: str = "", root_password: str = "", keys: str = "",
            sudo: bool = False, console: bool = False, vlan: int = 0, address: str = "") -> Request:
    """The runbook's parameters checked (bad input refused before the host is read)."""
    fixed = static_address(site, guest, vlan, address) if address else None
    return Request(tweaks(site.login_user, password=password, root_password=root_password, keys=keys, sudo=sudo,
                          console=console, address=fixed), fixed)


def on_nic(facts: HostFacts, a: StaticAddress) -> StaticAddress:
    """The address on the guest's NIC of its VLAN, with that NIC's index and MAC, when the
    guest is defined (its profile is then found by MAC); else as given (found by name)."""
    info = facts.domain(a.guest)
    if info is None:
        return a
    dom = read_domain(info.inactive_xml or info.xml)
    nic = next((i for i, b in enumerate(dom.bridges) if b == a.network.bridge), None)
    need(nic is not None, f"guest {a.guest} has no NIC on VLAN {a.network.vlan} ({a.network.bridge}); its NICs "
         f"are on {', '.join(dom.bridges) or 'no bridge'}")
    assert nic is not None
    mac = dom.macs[nic] if nic < len(dom.macs) and dom.macs[nic] else None
    return replace(a, nic=nic, device=f"eth{nic}", profile=f"eth{nic}", mac=mac)


def on_its_nic(facts: HostFacts, req: Request) -> Request:
    """The request with its static address on the guest's NIC of its VLAN (:func:`on_nic`: by
    that NIC's MAC, when the guest is defined) and its network tweak made for it."""
    if req.address is None:
        return req
    fixed = on_nic(facts, req.address)
    todo = [tw.StaticIp.from_address(fixed) if isinstance(t, tw.StaticIp) else t for t in req.tweaks]
    return Request(todo, fixed)


def describe(t: tw.Tweak) -> str:
    """One line for a tweak (never a password or its hash)."""
    if isinstance(t, tw.LoginUser):
        return f"login user {t.user} (created like cloud-init would, when the image lacks it)"
    if isinstance(t, tw.SetPassword):
        return f"password of {t.password.user} (SHA-512 hash via chpasswd -e)"
    if isinstance(t, tw.AuthorizedKeys):
        return f"{len(t.keys)} SSH key(s) in ~{t.user}/.ssh/authorized_keys"
    if isinstance(t, tw.Sudoers):
        return f"sudo without password for {t.user} in /etc/sudoers.d"
    if isinstance(t, tw.SerialGetty):
        return "login prompt on the serial console (serial-getty@ttyS0)"
    if isinstance(t, tw.GrubSerial):
        return f"GRUB and kernel console on ttyS0,{t.speed} (grub.cfg regenerated)"
    if isinstance(t, tw.StaticIp):
        each = ", ".join(f"{n.settings.address} for {n.settings.what}" for n in t.nics)
        return (f"static address {each} in the image's NetworkManager profile that binds each NIC (by MAC, "
                "else by name; a new keyfile bound to the MAC only when it has none); cloud-init network off")
    return "SELinux relabel on the next boot, when the image uses SELinux"


source, wanted = disks.source, disks.wanted


def check(facts: HostFacts, guest: str, image: str = "") -> str:
    """The guest is shut off; its LV exists and is free, or the raw image is used by no running guest."""
    found = disks.shut_off_disk(
        facts, guest, image, running="shut it down first (guest-lifecycle action=shutdown); an image is never "
        "changed under a running guest", not_raw="only raw images can be mounted; tweak the LV it was copied to "
        "(guest-create copies it)")
    if isinstance(found, str):
        return found
    busy = facts.lv_in_use(found)
    need(not busy, f"{found.path} is in use: {busy}")
    info = facts.domain(guest)
    return f"{found.path}: {human(found.size)}; guest {guest} is {info.state if info else 'not defined'}"


def look(host: Host, guest: str, todo: Sequence[tw.Tweak], where: dict[str, str]) -> tw.TweakReport | None:
    """Every tweak planned from the image's content, read through a read-only mapping while
    holding the guest's lock; None on a recorded host (no disk can be mapped there)."""
    seen = disks.look_read_only(host, guest, "image-tweak (read-only)",
                                lambda facts: tweak_facts.look(host.runner, facts, todo, **where))
    return tw.planned(seen, todo) if seen is not None else None


def procedure(host: Host, facts: HostFacts, guest: str, todo: Sequence[tw.Tweak], where: dict[str, str]) -> Procedure:
    """The tweaks as one phase holding the disk read-write with its root mounted (the executor
    locks its guest), previewed from :func:`look` (each tweak's outcome a note); planned again
    from the read-write mount just before it runs."""
    what = where.get("lv") or where.get("image")
    seen = look(host, guest, todo, where)
    if seen is None:
        preview = Plan(f"offline tweaks of {what}")
        preview.notes.append(disks.recorded_note(host, "the exact commands (computed from the image's content) "
                                                       "are not planned here"))
    else:
        preview = tw.joined(seen.plans, f"offline tweaks of {what} ({seen.os})")
        preview.notes += seen.lines
    proc = Procedure(f"tweak {what}", facts=facts)
    return proc.add(disks.tweak_phase(todo, lv=where.get("lv"), image=where.get("image")), preview)


def verify(host: Host, guest: str, todo: Sequence[tw.Tweak], where: dict[str, str]) -> Verdict:
    """After the apply: the image looked at again (read-only), every tweak planned once more."""
    again = look(host, guest, todo, where)
    need(again is not None, f"{host.site.name} is a recorded site: its image cannot be looked at")
    assert again is not None
    return judge(again)


def judge(again: tw.TweakReport) -> Verdict:
    """Planned again from the image after the apply: every tweak must be "already so"."""
    return Verdict.of([(p.empty, f"{p.title}: {_said(p)}") for p in again.plans]
                      + [(not again.pending, f"every tweak is in place ({again.os})")])


def _said(p: Plan) -> str:
    return p.steps[0].reason if p.empty and p.steps else "still plans a change"
