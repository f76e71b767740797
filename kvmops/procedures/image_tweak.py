"""image-tweak: the guide's offline tweaks (3.3) on a shut-off guest's disk or a raw image file.

- :func:`tweaks`: the tweaks for the runbook's parameters, in the order they run (the login
  user first, created like cloud-init would when the image lacks it; SELinux relabel last);
  also what guest-create's ``setup=tweaks`` runs.
- :func:`check`: the guest is shut off, its LV exists and is free (or the raw image file is
  used by no running guest).
- :func:`look` (read-only, transient mapping) then :func:`plan`: every tweak planned from the
  image's content, all shown before anything changes.
- :func:`apply`: mapped and mounted read-write, content read afresh, planned again, each plan
  executed by the one executor; :func:`verify`: looked at again, every tweak "already so".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from kvmops.facts import tweaks as tweak_facts
from kvmops.guests.xml import read_domain
from kvmops.host import Host
from kvmops.hostfacts import HostFacts, Wanted
from kvmops.images import tweaks as tw
from kvmops.images.passwords import Password
from kvmops.net.address import StaticAddress
from kvmops.plan import Plan, Progress
from kvmops.procedures import disks
from kvmops.procedures.base import Verdict, need
from kvmops.site import Site
from kvmops.units import human


def tweaks(login: str, *, password: str = "", root_password: str = "", keys: Sequence[str] = (),
           sudo: bool = False, console: bool = False, address: StaticAddress | None = None) -> list[tw.Tweak]:
    """The tweaks for these parameters; refused when none is asked for.

    The login user comes first whenever a tweak concerns it (a stock cloud image lacks it
    until cloud-init runs: it is then created offline); the SELinux relabel comes last.
    """
    todo: list[tw.Tweak] = []
    todo += [tw.SetPassword(Password.clear(login, password))] if password else []
    todo += [tw.SetPassword(Password.clear("root", root_password))] if root_password else []
    key_lines = tuple(k.strip() for k in keys if k.strip())
    todo += [tw.AuthorizedKeys(login, key_lines)] if key_lines else []
    todo += [tw.Sudoers(login)] if sudo else []
    todo += [tw.SerialGetty(), tw.GrubSerial()] if console else []
    todo += [tw.StaticIp.from_address(address)] if address else []
    need(todo, "nothing to do: give a password, keys, sudo=True, console=True or an address")
    if password or key_lines or sudo:
        todo.insert(0, tw.LoginUser(login))
    return [*todo, tw.SelinuxRelabel()]  # files written offline carry no SELinux labels


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


def source(site: Site, guest: str, image: str = "") -> dict[str, str]:
    """Where the tweaks go: ``{"image": PATH}`` or ``{"lv": "VG/LV"}`` (the guest's disk)."""
    return {"image": image} if image else {"lv": f"{site.vg}/{site.guest_lv(guest)}"}


def wanted(image: str = "", replay: bool = False) -> Wanted:
    """The image file is probed (a replay site has nothing to probe)."""
    return Wanted(images=(image,)) if image and not replay else Wanted()


def check(facts: HostFacts, guest: str, image: str = "", *, replay: bool = False) -> str:
    """The guest is shut off; its LV exists and is free, or the raw image is used by no running guest."""
    info = facts.domain(guest)
    need(info is None or not info.active, f"guest {guest} is running: shut it down first (guest-lifecycle "
         "action=shutdown); an image is never changed under a running guest")
    if image:
        users = facts.running_guests_with_file(image)
        need(not users, f"{image} is a disk of running guest(s) {', '.join(users)}: shut them down first")
        if replay:
            return f"image {image}: not probed (recorded facts)"
        probed = facts.image(image)
        need(probed.format == "raw", f"{image} is a {probed.format} image: only raw images can be mounted; "
             "tweak the LV it was copied to (guest-create copies it)")
        return f"image {image}: raw, {human(probed.virtual_size)}"
    lv = facts.site.guest_lv(guest)
    found = facts.lvm.get(lv)
    need(found is not None, f"guest {guest}: LV {facts.site.vg}/{lv} does not exist (see the inventory runbook)")
    assert found is not None
    busy = facts.lv_in_use(found)
    need(not busy, f"{found.path} is in use: {busy}")
    return f"{found.path}: {human(found.size)}; guest {guest} is {info.state if info else 'not defined'}"


def look(host: Host, facts: HostFacts, todo: Sequence[tw.Tweak], where: dict[str, str]) -> tw.Look:
    """The image's content the tweaks need, read through a read-only mapping (undone after)."""
    return tweak_facts.look(host.runner, facts, todo, **where)


def plan(seen: tw.Look, todo: Sequence[tw.Tweak]) -> tw.TweakReport:
    """Every tweak planned from what :func:`look` read (pure)."""
    return tw.planned(seen, todo)


def apply(host: Host, facts: HostFacts, todo: Sequence[tw.Tweak], where: dict[str, str],
          progress: Progress | None = None) -> tw.TweakReport:
    """Mounted read-write, read afresh, planned again and executed (``facts``: read just before)."""
    return disks.tweak_image(host, facts, todo, progress=progress, **where)


def verify(again: tw.TweakReport) -> Verdict:
    """Planned again from the image after the apply: every tweak must be "already so"."""
    return Verdict.of([(p.empty, f"{p.title}: {_said(p)}") for p in again.plans])


def _said(p: Plan) -> str:
    return p.steps[0].reason if p.empty and p.steps else "still plans a change"
