"""guest-create as a procedure (guide 3.2, 3.3): a new guest from a cloud image.

:func:`request` validates every parameter before anything is read; the host is read once
(:func:`wanted`); :func:`procedure` returns the phases, each previewed from those facts (a
later phase as the earlier ones would leave the host) and planned again from fresh facts
just before it runs:

1. the LV (``lvcreate``; an existing one of at least the size is kept),
2. the image copied onto it (OVERWRITES an LV that existed before this run: confirm
   ``VG/LV``; an LV made by this run needs no confirmation),
3. the setup: a NoCloud seed ISO (cloud-init), or offline tweaks planned from the image's
   content after the copy (login user's and root's keys and passwords, sudo, a serial getty,
   a static address, an SELinux relabel), or none,
4. define (the seed as CD-ROM; replacing a different kept XML file: confirm the guest's name),
5. start and autostart.

Every NIC gets a MAC chosen up front (:mod:`kvmops.guests.macs`: from the site's and the
guest's names, none that a guest of the host, or of the fleet when given, has): the seed's
network-config and the image's profiles match the NICs by it, the domain XML carries it, the
plan shows it, and the DHCP reservation can be made before the first boot.

Every confirmation is checked before the first change (the executor's ``run_procedure``).
Then :func:`verify` (libvirt's view) and :func:`verify_boot` (a login prompt on the serial
console, the decisive signal), and, only after a verified boot, the seed is retired: it
holds password hashes, so it is ejected, dropped from the definition and removed
(:mod:`kvmops.procedures.guest_seed`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from kvmops import guestlive, names
from kvmops.errors import InvalidInput, KvmopsError
from kvmops.executor import Phase, Procedure
from kvmops.guests import boot, hostfile, lifecycle, macs
from kvmops.guests.boot import BootVerdict
from kvmops.guests.domain import DomainInfo
from kvmops.guests.spec import GuestSpec, guest_spec
from kvmops.guests.xml import disk_source, read_domain, render_domain_xml
from kvmops.host import Host
from kvmops.hostfacts import HostFacts, Wanted, with_lvs
from kvmops.images import content, nocloud
from kvmops.images import tweaks as tw
from kvmops.images.copy import copy_plan
from kvmops.images.passwords import Password
from kvmops.lvm import ops
from kvmops.lvm.facts import LV
from kvmops.net import address as addr
from kvmops.net import nics
from kvmops.net.validate import vlan_id
from kvmops.plan import Plan, Progress, Step
from kvmops.procedures import disks
from kvmops.procedures.base import Verdict, need
from kvmops.procedures.image_tweak import describe
from kvmops.site import Site
from kvmops.units import human, parse_size

SETUPS = ("nocloud", "tweaks", "none")
CONSOLE_LINES = 8  # console lines quoted when the boot is not verified


# -- the parameters --------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One guest to create, every value validated (:func:`request` builds it)."""

    spec: GuestSpec  # name, memory, vCPUs, one bridge per VLAN (the seed is added as CD-ROM later)
    vlans: tuple[int, ...]
    size: int
    image: str
    setup: str
    addresses: tuple[addr.StaticAddress, ...]  # one per NIC that has one (kvmops.net.nics), MACs not yet known
    login: str
    keys: tuple[str, ...] = ()
    root_keys: tuple[str, ...] = ()
    password: Password | None = field(default=None, repr=False)
    root_password: Password | None = field(default=None, repr=False)
    sudo: bool = True
    autostart: bool = True
    console_seconds: float = 120.0  # how long verify_boot waits for a login prompt
    elsewhere: frozenset[str] = frozenset()  # MACs of the fleet's other hosts' guests (fleet_macs), when known

    @property
    def guest(self) -> str:
        return self.spec.name

    @property
    def address(self) -> addr.StaticAddress | None:
        """The first NIC's static address (the ``address`` parameter), if it has one."""
        return next((a for a in self.addresses if a.nic == 0), None)


def request(site: Site, guest: str, *, vlans: str | int, memory: str | int, vcpus: int, size: str,
            image: str, setup: str = "nocloud", address: str = "", addresses: str = "",
            gateway_vlan: int | str = 0, keys: str = "", root_keys: str = "",
            password: str = "", root_password: str = "", sudo: bool = True,
            autostart: bool = True, console_seconds: float = 120.0) -> Request:
    """The runbook's parameters checked and resolved against the site; InvalidInput names the
    parameter that is wrong and what to give instead. Nothing is read from the host.

    ``address`` is the first VLAN's static address; ``addresses`` gives any VLAN's
    (``"2368=10.5.68.237,223=132.230.223.200"``); ``gateway_vlan`` names the VLAN whose NIC
    carries the default route (0: the first). See :mod:`kvmops.net.nics`."""
    names.guest_name(guest)
    if setup not in SETUPS:
        raise InvalidInput(f"setup {setup!r}: use one of {', '.join(SETUPS)}")
    if not image.startswith("/") or "\0" in image or "\n" in image:
        raise InvalidInput(f"image {image!r}: give the absolute path of a raw or qcow2 image on the host")
    nets = parse_vlans(site, vlans)
    login = site.login_user
    req = Request(
        spec=guest_spec(site, guest, memory=memory, vcpus=vcpus, vlans=nets),
        vlans=nets,
        size=parse_size(size),
        image=image,
        setup=setup,
        addresses=nics.guest_addresses(site, guest, nets, address=address, addresses=addresses,
                                       gateway_vlan=gateway_vlan),
        login=login,
        keys=_keys("keys", keys),
        root_keys=_keys("root_keys", root_keys),
        password=Password.clear(login, password) if password else None,
        root_password=Password.clear("root", root_password) if root_password else None,
        sudo=sudo,
        autostart=autostart,
        console_seconds=lifecycle.seconds(console_seconds, "console_seconds", zero=True),
    )
    given = [n for n, v in (("address", address), ("addresses", addresses), ("keys", keys), ("root_keys", root_keys),
                            ("password", password), ("root_password", root_password)) if v]
    if setup == "none" and given:
        raise InvalidInput(f"setup=none leaves the image as it is, but {', '.join(given)} "
                           f"{'was' if len(given) == 1 else 'were'} given: use setup=nocloud or setup=tweaks")
    return req


def parse_vlans(site: Site, vlans: str | int) -> tuple[int, ...]:
    """``"2368"`` or ``"2368,223"`` (one NIC on each VLAN's bridge, in this order)."""
    items = [v.strip() for v in str(vlans).split(",")]
    if not any(items):
        raise InvalidInput("vlans: give at least one VLAN of the site, e.g. 2368 or 2368,223")
    out = tuple(vlan_id(v) for v in items if v)
    if len(set(out)) != len(out):
        raise InvalidInput(f"vlans {vlans!r}: a VLAN is listed twice (one NIC per VLAN)")
    for v in out:
        site.network(v)  # NotFound names the site's VLANs
    return out


def _keys(what: str, text: str) -> tuple[str, ...]:
    lines = [k.strip() for k in re.split(r"[;\n]", text) if k.strip()]
    try:
        return tuple(content.public_key(k) for k in lines)
    except InvalidInput as exc:
        raise InvalidInput(f"{what}: {exc}") from None


def lv_name(site: Site, req: Request) -> str:
    return req.spec.system_lv(site)


def seed_of(site: Site, req: Request) -> str | None:
    """The seed ISO's path with setup=nocloud (one place: :func:`nocloud.seed_path`)."""
    return nocloud.seed_path(site, req.guest) if req.setup == "nocloud" else None


def macs_of(facts: HostFacts, req: Request) -> tuple[str, ...]:
    """The MAC of each NIC (:func:`kvmops.guests.macs.choose`): none that another guest of the
    host has, nor one of the fleet's (``req.elsewhere``). The guest's own, when an earlier run
    defined it, do not count against it: a re-run chooses the same."""
    return macs.choose(facts.site.name, req.guest, len(req.spec.bridges), facts.macs_taken(req.guest) | req.elsewhere)


def spec_of(facts: HostFacts, req: Request, chosen: tuple[str, ...] | None = None) -> GuestSpec:
    """The guest as it is defined: its NICs' MACs, the seed ISO (if any) as its CD-ROM."""
    return replace(req.spec, cdrom=seed_of(facts.site, req),
                   macs=chosen if chosen is not None else macs_of(facts, req))


def addresses_of(req: Request, chosen: tuple[str, ...]) -> tuple[addr.StaticAddress, ...]:
    """The static addresses with their NICs' MACs."""
    return nics.with_macs(req.addresses, chosen)


def with_fleet(req: Request, elsewhere: frozenset[str]) -> Request:
    """The request whose new MACs avoid ``elsewhere`` too
    (:func:`kvmops.procedures.fleet_macs.read_fleet_macs`)."""
    return replace(req, elsewhere=frozenset(elsewhere))


# -- facts and checks ------------------------------------------------------------------------


def wanted(site: Site, req: Request) -> Wanted:
    """The one read: LVM, guests, limits, the image's format and size, the kept XML file (and
    whether the seed exists: a re-run checks the definition of an earlier one)."""
    seed = seed_of(site, req)
    return Wanted(images=(req.image,), files=(hostfile.xml_path(site, req.guest),), paths=(seed,) if seed else ())


def check(facts: HostFacts, req: Request) -> list[str]:
    """The preconditions (PreconditionFailed when one fails) and what will be made."""
    site = facts.site
    again = defined_already(facts, req)
    need(facts.domain(req.guest) is None or again,
         f"guest {req.guest} exists already (with another definition): pick another name, or remove it "
         "first (guest-remove)")
    chosen = macs_of(facts, req)
    if again:
        return [f"guest {req.guest} is defined already as asked: an earlier run got that far (its disk was made "
                "and filled before it was defined), so only what is left is done: start, autostart"]
    info = facts.image(req.image)
    lv = facts.lvm.get(lv_name(site, req))
    disk = f"{site.vg}/{lv_name(site, req)}"
    lines = [f"guest {req.guest}: {req.spec.vcpus} vCPUs, {human(req.spec.memory_kib * 1024)} memory",
             f"image {req.image}: {info.format}, {human(info.virtual_size)}"]
    if lv is None:
        lines.append(f"disk {disk}: created with {human(req.size)} (VG has {human(facts.lvm.vg.free)} free)")
    else:
        lines.append(f"disk {disk}: EXISTS ({human(lv.size)}): the copy overwrites it, confirm={disk!r}")
    lines += nic_lines(site, req, chosen)
    lines += [f"NOTE: {n}" for n in notes(site, req, chosen)]
    return lines


def nic_lines(site: Site, req: Request, chosen: tuple[str, ...]) -> list[str]:
    """One line per NIC: VLAN, bridge, MAC, its static address (or DHCP); then routes and DNS."""
    by_nic = {a.nic: a for a in addresses_of(req, chosen)}
    out = []
    for i, (vlan, bridge) in enumerate(zip(req.vlans, req.spec.bridges, strict=True)):
        a = by_nic.get(i)
        how = a.describe() if a else "no static address (DHCP, if the VLAN has it)"
        out.append(f"NIC {i + 1}: VLAN {vlan}, bridge {bridge}, MAC {chosen[i]} ({site.network(vlan).cidr}): {how}")
    if req.addresses:
        out.append(f"routes: {nics.routes_note(req.vlans, req.addresses)} (setup={req.setup}: each NIC matched "
                   "by its MAC, whatever the image names it)")
    return out


def notes(site: Site, req: Request, chosen: tuple[str, ...] = ()) -> list[str]:
    """What the person running it should know: the DHCP reminders, who can log in."""
    out = dhcp_notes(site, req, chosen)
    if req.setup != "none" and not (req.keys or req.password or req.root_keys or req.root_password):
        out.append(f"no key and no password for {req.login} or root: nobody can log in over SSH or on "
                   "the console (give keys or a password)")
    return out


def dhcp_notes(site: Site, req: Request, chosen: tuple[str, ...] = ()) -> list[str]:
    """The guide's DHCP reservation reminder (3.3.3) for each static address, with its NIC's
    MAC (known before the guest exists: the reservation can precede the first boot), unless
    the site says the VLAN has no DHCP."""
    out = []
    for a in addresses_of(req, chosen) if chosen else req.addresses:
        note = addr.dhcp_reminder(site, a.network, address=a.address, guest=req.guest, mac=a.mac)
        if note:
            out.append(note)
    return out


# -- the procedure ---------------------------------------------------------------------------


@dataclass
class _Run:
    """What the LV phase found when it ran: whether this run created the LV."""

    created_lv: bool = False


def defined_already(facts: HostFacts, req: Request) -> bool:
    """The guest is defined exactly as this request defines it: an earlier run of the same
    request got past its definition (which comes after the LV, the copy and the setup)."""
    info = facts.domain(req.guest)
    if info is None:
        return False
    xml = render_domain_xml(facts.site, spec_of(facts, req))
    return read_domain(info.inactive_xml or info.xml).lines() == read_domain(xml).lines()


def procedure(facts: HostFacts, req: Request) -> Procedure:
    """Every phase, previewed from ``facts``; each planned again from fresh facts when it runs.

    A re-run after a run that failed once the guest was defined (:func:`defined_already`)
    leaves the disk, the image and the setup alone: they were done before the definition.
    """
    site = facts.site
    if defined_already(facts, req):
        return _rest(facts, req)
    lv = lv_name(site, req)
    fresh = facts.lvm.get(lv) is None
    run = _Run()
    chosen = macs_of(facts, req)  # once: the seed or the image and the definition name the same MACs
    spec = spec_of(facts, req, chosen)
    after_lv = _with_lv(facts, lv, req.size)
    proc = Procedure(f"create guest {req.guest}", facts=facts)

    def lv_phase(f: HostFacts) -> Plan:
        plan = ops.create(f, lv, req.size)
        run.created_lv = not plan.empty
        return plan

    proc.add(Phase(f"the LV {site.vg}/{lv}", lv_phase), ops.create(facts, lv, req.size))
    proc.add(Phase("copy the image", lambda f: _copy(f, req, lv, run.created_lv), Wanted(images=(req.image,))),
             _copy(after_lv, req, lv, fresh))
    proc.add(_setup_phase(site, req, chosen), _setup_plan(site, req, chosen))
    seeded = _with_paths(after_lv, {spec.cdrom: True} if spec.cdrom else {})
    proc.add(Phase(f"define guest {req.guest}", lambda f: lifecycle.define(f, spec),
                   lifecycle.define_wanted(site, spec)), lifecycle.define(seeded, spec))
    proc.add(Phase(f"start guest {req.guest}", lambda f: _start(f, req, chosen)),
             _start(_with_domain(seeded, spec), req, chosen))
    return proc


def _rest(facts: HostFacts, req: Request) -> Procedure:
    """What is left once the guest is defined as asked: its definition checked, start, autostart."""
    chosen = macs_of(facts, req)
    spec = spec_of(facts, req, chosen)
    done = Plan(f"the LV, the image and the setup of guest {req.guest}").noop(
        f"guest {req.guest} is defined as asked: an earlier run made and filled its disk before defining it")
    proc = Procedure(f"create guest {req.guest} (the rest of an earlier run)", facts=facts)
    proc.add(Phase("the LV, the image, the setup", lambda _f: done), done)
    proc.add(Phase(f"define guest {req.guest}", lambda f: lifecycle.define(f, spec),
                   lifecycle.define_wanted(facts.site, spec)), lifecycle.define(facts, spec))
    proc.add(Phase(f"start guest {req.guest}", lambda f: _start(f, req, chosen)), _start(facts, req, chosen))
    return proc


def _with_lv(facts: HostFacts, lv: str, size: int) -> HostFacts:
    if facts.lvm.get(lv) is not None:
        return facts
    return with_lvs(facts, [LV(lv, facts.site.vg, "-wi-a-----", size, "", None, None)])


def _with_paths(facts: HostFacts, paths: dict[str, bool]) -> HostFacts:
    return replace(facts, paths={**facts.paths, **paths})


def _with_domain(facts: HostFacts, spec: GuestSpec) -> HostFacts:
    """The facts once ``spec`` is defined (shut off), to preview its start."""
    xml = render_domain_xml(facts.site, spec)
    info = DomainInfo(spec.name, "shut off", False, False, True, xml, xml)
    return replace(facts, domains=(*facts.domains, info))


def _copy(facts: HostFacts, req: Request, lv: str, created_here: bool) -> Plan:
    """The copy; onto an LV this run created it needs no confirmation (nothing to lose)."""
    plan = copy_plan(facts, lv, facts.image(req.image))
    if not created_here:
        return plan
    path = f"{facts.site.vg}/{lv}"
    steps = [Step(s.reason.replace("OVERWRITE", "fill", 1) + " (the LV is new: made by this run)", s.effect)
             if s.target == path else s for s in plan.steps]
    return Plan(plan.title, steps, list(plan.notes))


def _setup_phase(site: Site, req: Request, chosen: tuple[str, ...]) -> Phase:
    if req.setup == "tweaks":
        return disks.tweak_phase(tweaks(req, chosen), lv=f"{site.vg}/{lv_name(site, req)}")
    return Phase(f"setup ({req.setup})", lambda _f: _setup_plan(site, req, chosen))


def _setup_plan(site: Site, req: Request, chosen: tuple[str, ...]) -> Plan:
    if req.setup == "nocloud":
        path = seed_of(site, req)
        assert path is not None
        return nocloud.seed_plan(seed(req, chosen), path)
    if req.setup == "tweaks":
        return _tweaks_plan(site, req, chosen)
    return Plan("setup: none").noop("setup=none: the image boots as it is (no accounts, console or address set)")


def seed(req: Request, chosen: tuple[str, ...] = ()) -> nocloud.Seed:
    """The NoCloud seed: the login user (keys, password, sudo), root (password, keys), and one
    network-config entry per static address, matched by its NIC's MAC (``chosen``: one per NIC;
    without them, by the kernel name ``eth<n>``)."""
    users = nocloud.users_for(req.login, req.keys, req.password, req.root_password, req.root_keys, sudo=req.sudo)
    nets = tuple(
        nocloud.StaticNet(a.with_prefix, str(a.gateway) if a.default_route else None, tuple(str(d) for d in a.dns),
                          interface=f"nic{a.nic + 1}" if a.mac else a.device, mac=a.mac)
        for a in (addresses_of(req, chosen) if chosen else req.addresses))
    return nocloud.Seed(req.guest, users, nets)


def tweaks(req: Request, chosen: tuple[str, ...] = ()) -> list[tw.Tweak]:
    """The offline tweaks: the login user first whenever a tweak concerns it (a stock cloud
    image lacks it until cloud-init runs: created offline as cloud-init would), the static
    addresses (each NIC's profile found by its MAC in ``chosen``), the SELinux relabel last
    (files written offline carry no labels)."""
    concerns_login = req.sudo or bool(req.keys) or req.password is not None
    out: list[tw.Tweak] = [tw.LoginUser(req.login)] if concerns_login else []
    out += [tw.Sudoers(req.login)] if req.sudo else []
    out.append(tw.SerialGetty())
    out += [tw.SetPassword(p) for p in (req.password, req.root_password) if p is not None]
    out += [tw.AuthorizedKeys(req.login, req.keys)] if req.keys else []
    out += [tw.AuthorizedKeys("root", req.root_keys)] if req.root_keys else []
    found = addresses_of(req, chosen) if chosen else req.addresses
    out += [tw.StaticIp.from_addresses(found)] if found else []
    out.append(tw.SelinuxRelabel())
    return out


def _tweaks_plan(site: Site, req: Request, chosen: tuple[str, ...]) -> Plan:
    """The tweak phase's preview: the image is not on the LV yet, so the tweaks are planned from
    its content when the phase runs (the LV mapped, its root mounted, each tweak planned from the
    files there; the exact commands show then)."""
    disk = f"{site.vg}/{lv_name(site, req)}"
    plan = Plan(f"offline tweaks of {disk}")
    plan.notes.append("planned from the image's content after the copy: the LV is mapped, its root mounted "
                      "and each tweak planned from the files there; the exact commands show when it runs")
    what = "; ".join(describe(t) for t in tweaks(req, chosen))
    return plan.noop(f"tweak the image on {disk} when this phase runs: {what}")


def _start(facts: HostFacts, req: Request, chosen: tuple[str, ...]) -> Plan:
    plan = lifecycle.start(facts, req.guest)
    if req.autostart:
        plan.extend(lifecycle.autostart(facts, req.guest, True))
    if not plan.empty:
        plan.notes += [f"before this start: {n}" for n in dhcp_notes(facts.site, req, chosen)]
    return plan


# -- verification ----------------------------------------------------------------------------


def verify_wanted(site: Site, req: Request) -> Wanted:
    return Wanted(paths=(hostfile.xml_path(site, req.guest),))


def verify(facts: HostFacts, req: Request) -> Verdict:
    """libvirt's view, read afresh: defined as asked, running, autostart, the kept XML."""
    site = facts.site
    info = facts.domain(req.guest)
    got = read_domain(info.inactive_xml or info.xml) if info else None
    disk = disk_source(site, lv_name(site, req))
    kept = hostfile.xml_path(site, req.guest)
    chosen = macs_of(facts, req)
    checks = [
        (info is not None, f"guest {req.guest} is defined"),
        (info is not None and info.active, f"it runs ({info.state if info else 'not defined'})"),
        (got is not None and got.disk_sources[:1] == (disk,), f"its system disk is {disk}"),
        (got is not None and got.bridges == req.spec.bridges, f"its NICs are on {', '.join(req.spec.bridges)}"),
        (got is not None and got.macs == chosen, f"with the MACs {', '.join(chosen)}"),
        (facts.exists(kept), f"its definition is kept in {kept}"),
    ]
    if req.autostart:
        checks.append((info is not None and info.autostart, "autostart is on"))
    return Verdict.of(checks)


def verify_boot(host: Host, guest: str, seconds: float, progress: Progress | None = None,
                marker: str | None = None) -> Verdict:
    """Booted only on the decisive signal: a login prompt on the serial console (or the
    image's own boot ``marker``), judged by :mod:`kvmops.guests.boot`, never on boot-loader
    or kernel lines. Reads up to ``seconds``; otherwise says plainly that the boot was NOT
    verified in that time, how far the console got, and why that may be."""
    if seconds <= 0:
        return Verdict(False, ("FAILED: boot NOT verified: console_seconds=0 skipped the console check; "
                               "give it some seconds (minutes under TCG) to verify the boot",))
    try:
        v = guestlive.wait_booted(host, guest, seconds, progress, (marker,) if marker else ())
    except KvmopsError as exc:
        return Verdict(False, (f"FAILED: boot NOT verified: the serial console of {guest} cannot be read: {exc}; "
                               f"look yourself: {guestlive.console_hint(host, guest).splitlines()[0]}",))
    return Verdict(v.booted, (boot_line(guest, v),))


def boot_line(guest: str, v: BootVerdict) -> str:
    """``ok: guest X booted: login prompt after 41 s`` or ``FAILED: boot NOT verified in 120 s``
    with how far the console got, its last lines and what that may mean."""
    if v.booted:
        what = "a login prompt" if v.stage == boot.LOGIN else "the image's boot marker"
        return f"ok: guest {guest} booted: {what} on its serial console after {v.seconds:.0f} s ({v.evidence!r})"
    last = "; ".join(repr(ln) for ln in v.last[-CONSOLE_LINES:]) or "(nothing)"
    why = boot.WHY[v.stage] + (f" ({v.evidence!r})" if v.fatal else "")
    hint = "" if v.fatal else "; wait longer (raise console_seconds) or look: kvmops guest console NAME"
    return (f"FAILED: boot NOT verified in {v.seconds:.0f} s: no login prompt from {guest}; its console got as far "
            f"as {v.stage}; last lines: {last}; this may be because {why}{hint}")
