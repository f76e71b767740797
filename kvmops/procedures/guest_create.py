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
5. start and autostart, and the boot verified: a login prompt on the serial console, the
   decisive signal (the one boot check, :class:`~kvmops.plan.Booted`; a boot not verified in
   ``console_seconds`` fails the run),
6. with ``setup=nocloud``, only after that verified boot, the seed retired: it holds password
   hashes, so it is ejected, dropped from the definition and removed
   (:mod:`kvmops.procedures.guest_seed`); a no-op saying why when this run verified no boot.

Every NIC gets a MAC chosen up front (:mod:`kvmops.guests.macs`: from the site's and the
guest's names, none that a guest of the host, or of the fleet when given, has): the seed's
network-config and the image's profiles match the NICs by it, the domain XML carries it, the
plan shows it, and the DHCP reservation can be made before the first boot.

One procedure: every confirmation is checked before the first change (the executor's
``run_procedure``). Then :func:`verify` (libvirt's view, and the seed gone when it was retired).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from kvmops import names
from kvmops.errors import InvalidInput
from kvmops.executor import Phase, Procedure
from kvmops.guests import hostfile, lifecycle, macs
from kvmops.guests.domain import DomainInfo
from kvmops.guests.spec import GuestSpec, guest_spec
from kvmops.guests.xml import disk_source, read_domain, render_domain_xml
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
from kvmops.plan import Booted, Call, Plan, Step, Wait
from kvmops.procedures import disks, guest_seed
from kvmops.procedures.base import Verdict, need
from kvmops.procedures.image_tweak import describe
from kvmops.site import Site
from kvmops.units import human, parse_size

SETUPS = ("nocloud", "tweaks", "none")


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
    console_seconds: float = 120.0  # how long the start waits for a login prompt (0: the boot is not verified)
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
        keys=content.parse_keys("keys", keys),
        root_keys=content.parse_keys("root_keys", root_keys),
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
    """What the phases found when they ran: whether this run created the LV, and whether its
    start waits for the boot (a login prompt; the seed is retired only after that)."""

    created_lv: bool = False
    start: Plan = field(default_factory=lambda: Plan("start"))  # the start phase as it ran


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
    return _define_start_retire(proc, seeded, req, run, chosen)


def _rest(facts: HostFacts, req: Request) -> Procedure:
    """What is left once the guest is defined as asked: its definition checked, start, autostart."""
    done = Plan(f"the LV, the image and the setup of guest {req.guest}").noop(
        f"guest {req.guest} is defined as asked: an earlier run made and filled its disk before defining it")
    proc = Procedure(f"create guest {req.guest} (the rest of an earlier run)", facts=facts)
    proc.add(Phase("the LV, the image, the setup", lambda _f: done), done)
    return _define_start_retire(proc, facts, req, _Run(), macs_of(facts, req))


def _define_start_retire(proc: Procedure, facts: HostFacts, req: Request, run: _Run,
                         chosen: tuple[str, ...]) -> Procedure:
    """The last phases, previewed from ``facts`` (the host as the earlier phases leave it):
    define, start (with the boot's wait), and with a seed its retirement after that boot."""
    site, spec = facts.site, spec_of(facts, req, chosen)

    def start(f: HostFacts) -> Plan:
        run.start = _start(f, req, chosen)
        return run.start

    proc.add(Phase(f"define guest {req.guest}", lambda f: lifecycle.define(f, spec),
                   lifecycle.define_wanted(site, spec)), lifecycle.define(facts, spec))
    defined = facts if facts.domain(req.guest) else _with_domain(facts, spec)
    starting = _start(defined, req, chosen)
    proc.add(Phase(f"start guest {req.guest}", start), starting)
    if spec.cdrom is not None:
        retire = _retire_preview(defined, req, spec) if _waits_for_boot(starting) else _seed_stays(req, starting)
        proc.add(Phase(f"retire the seed of guest {req.guest}", lambda f: _retire(f, req, run),
                       guest_seed.wanted(site, req.guest)), retire)
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
    """The offline tweaks, by the one builder (:func:`kvmops.images.tweaks.build`: the login
    user first whenever a tweak concerns it, the SELinux relabel last); a serial getty always
    (the boot is verified on the serial console); the static addresses (each NIC's profile
    found by its MAC in ``chosen``)."""
    found = addresses_of(req, chosen) if chosen else req.addresses
    return tw.build(req.login, password=req.password, root_password=req.root_password, keys=req.keys,
                    root_keys=req.root_keys, sudo=req.sudo, getty=True,
                    network=tw.StaticIp.from_addresses(found) if found else None)


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
    """Start, autostart, and when it starts the guest, wait for a login prompt on its serial
    console (``console_seconds``; 0: the boot is not verified, which the plan says)."""
    plan = lifecycle.start(facts, req.guest)
    starts = _starts(plan)
    if req.autostart:
        plan.extend(lifecycle.autostart(facts, req.guest, True))
    if not plan.empty:
        plan.notes += [f"before this start: {n}" for n in dhcp_notes(facts.site, req, chosen)]
    if starts and req.console_seconds > 0:
        g, secs = req.guest, req.console_seconds
        plan.add(f"wait up to {secs:g} s for a login prompt on its serial console (the decisive signal: it booted)",
                 Wait(f"read the console of {g} until a login prompt", Booted(g, secs, way_out=(
                     f"Follow the guest-unreachable runbook for {g}. Its seed (password hashes, with setup=nocloud) "
                     f"stays until a boot is verified: then run kvmops guest seed-done {g} --apply"))))
    elif starts:
        plan.notes.append("boot NOT verified: console_seconds=0 skipped the console check (a start is not a boot)")
    return plan


def _starts(plan: Plan) -> bool:
    return any(isinstance(s.effect, Call) and s.effect.verb == "start" for s in plan.steps)


def _waits_for_boot(plan: Plan) -> bool:
    return any(isinstance(s.effect, Wait) and isinstance(s.effect.until, Booted) for s in plan.steps)


def _retire(facts: HostFacts, req: Request, run: _Run) -> Plan:
    """After the boot this run verified (its start phase waited for it, else it failed): the
    seed retired (:func:`guest_seed.plan`); else a no-op saying why it stays."""
    if not _waits_for_boot(run.start):
        return _seed_stays(req, run.start)
    return guest_seed.plan(facts, req.guest)


def _seed_stays(req: Request, start: Plan) -> Plan:
    why = ("console_seconds=0: this run does not verify the boot" if _starts(start)
           else f"guest {req.guest} runs already: this run does not start it, nor verify its boot")
    return Plan(f"retire the NoCloud seed of guest {req.guest}").noop(
        f"the seed stays ({why}); once the guest has booted: kvmops guest seed-done {req.guest} --apply")


def _retire_preview(facts: HostFacts, req: Request, spec: GuestSpec) -> Plan:
    """The seed's retirement as it runs after the verified boot: from the guest running as
    defined, its kept XML written, its seed made."""
    site = facts.site
    assert spec.cdrom is not None
    xml = render_domain_xml(site, spec)
    running = DomainInfo(req.guest, "running", True, req.autostart, True, xml, xml)
    after = replace(facts, domains=(*(d for d in facts.domains if d.name != req.guest), running),
                    files={**facts.files, hostfile.xml_path(site, req.guest): xml},
                    paths={**facts.paths, spec.cdrom: True})
    shown = guest_seed.plan(after, req.guest)
    shown.title = f"only after a verified boot: {shown.title}"
    return shown


# -- verification ----------------------------------------------------------------------------


def verify_wanted(site: Site, req: Request) -> Wanted:
    seed = guest_seed.wanted(site, req.guest) if seed_of(site, req) else Wanted()
    return Wanted(paths=(hostfile.xml_path(site, req.guest),)) | seed


def starts_guest(facts: HostFacts, req: Request) -> bool:
    """The run planned from ``facts`` starts the guest (it does not run yet)."""
    info = facts.domain(req.guest)
    return not (info and info.active)


def retires_seed(facts: HostFacts, req: Request) -> bool:
    """The run planned from ``facts`` retires the seed: there is one, and it starts the guest
    and verifies its boot."""
    return seed_of(facts.site, req) is not None and req.console_seconds > 0 and starts_guest(facts, req)


def verify(facts: HostFacts, req: Request, before: HostFacts | None = None) -> Verdict:
    """libvirt's view, read afresh: defined as asked, running, autostart, the kept XML; when the
    run planned from ``before`` started the guest, its boot verified by that start (not with
    ``console_seconds=0``: then nothing claims a boot nobody saw), and the seed gone when it
    retired it (:func:`retires_seed`)."""
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
    if before is not None and starts_guest(before, req):
        checks.append((req.console_seconds > 0, "its boot verified by the start: a login prompt on its serial console"
                       if req.console_seconds > 0 else "boot NOT verified: console_seconds=0 skipped the console "
                       "check (a start is not a boot)"))
    libvirt = Verdict.of(checks)
    if before is None or not retires_seed(before, req) or info is None:
        return libvirt
    seed = guest_seed.verify(facts, req.guest)
    return Verdict(libvirt.ok and seed.ok, libvirt.lines + seed.lines)
