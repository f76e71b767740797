"""The static-address tweak (guide 3.3.3): for each NIC with a static address, the image's
NetworkManager profile that binds it changed in place (:mod:`kvmops.images.nmprofiles`), a new
keyfile bound to the NIC's MAC only when it has none; cloud-init's network step switched off."""

from __future__ import annotations

import configparser
from collections.abc import Sequence
from dataclasses import dataclass

from kvmops.errors import InvalidInput
from kvmops.images import nmprofiles as nm
from kvmops.images.imagefs import ImageFacts, ImageWanted
from kvmops.net.address import StaticAddress, nm_keyfile
from kvmops.plan import Plan

CLOUD_NET_OFF = "/etc/cloud/cloud.cfg.d/99-kvmops-network.cfg"
NM_DAEMON = ("/usr/sbin/NetworkManager", "/usr/bin/NetworkManager")
KERNEL_LINES = ("/etc/default/grub", "/etc/kernel/cmdline")  # where an image keeps net.ifnames=0


@dataclass(frozen=True)
class NicIp:
    """One NIC's static address: the settings, and the keyfile to write when the image has no
    profile for the NIC (named ``profile``)."""

    settings: nm.Settings
    keyfile: str
    profile: str = "eth0"

    def __post_init__(self) -> None:
        parse_keyfile(self.keyfile)
        if not self.profile or "/" in self.profile or self.profile.startswith("."):
            raise InvalidInput(f"profile name {self.profile!r} cannot be a file name")

    @classmethod
    def from_address(cls, a: StaticAddress) -> NicIp:
        """From the networks helper's validated address (``kvmops.net.address``)."""
        s = nm.Settings(a.device, a.with_prefix, str(a.gateway) if a.default_route else None,
                        tuple(str(d) for d in a.dns), a.mac, a.nic)
        return cls(s, nm_keyfile(a), a.profile)


@dataclass(frozen=True)
class StaticIp:
    """The static addresses a guest boots with, one per NIC, set in the image's EXISTING
    NetworkManager profiles (keyfile or ifcfg), as the guide's ``nmcli con mod`` does; a new
    keyfile only for a NIC the image has none for. cloud-init's network step is switched off
    (it would write its own profiles again)."""

    nics: tuple[NicIp, ...]
    disable_cloud_init_network: bool = True

    def __post_init__(self) -> None:
        if not self.nics:
            raise InvalidInput("a static address tweak needs at least one NIC")
        idx = [n.settings.nic for n in self.nics]
        if len(set(idx)) != len(idx) or len({n.profile for n in self.nics}) != len(idx):
            raise InvalidInput("a NIC (or a profile name) is given twice")
        if sum(n.settings.gateway is not None for n in self.nics) > 1:
            raise InvalidInput("the default route goes on one NIC only")

    @classmethod
    def from_address(cls, a: StaticAddress) -> StaticIp:
        return cls((NicIp.from_address(a),))

    @classmethod
    def from_addresses(cls, found: Sequence[StaticAddress]) -> StaticIp:
        return cls(tuple(NicIp.from_address(a) for a in found))

    @property
    def settings(self) -> nm.Settings:
        """The first NIC's settings."""
        return self.nics[0].settings

    @property
    def device(self) -> str:
        return self.settings.device

    def _files(self, img: ImageFacts) -> list[str]:
        keyfiles = nm.candidates(img.listings.get(nm.KEYFILE_DIR), nm.KEYFILE_DIR, "keyfile")
        return keyfiles + nm.candidates(img.listings.get(nm.IFCFG_DIR), nm.IFCFG_DIR, "ifcfg")

    def _new_paths(self, img: ImageFacts) -> list[str]:
        """Where each NIC's new keyfile would go: ``<profile>.nmconnection``, or with a
        ``kvmops-`` prefix when the image has a file of that name that binds another NIC."""
        have = set(img.listings.get(nm.KEYFILE_DIR) or ())
        out = []
        for n in self.nics:
            name = f"{n.profile}.nmconnection"
            out.append(f"{nm.KEYFILE_DIR}/{name}" if name not in have or _ours(img, name, n)
                       else f"{nm.KEYFILE_DIR}/kvmops-{name}")
        return out

    def wants(self, img: ImageFacts) -> ImageWanted:
        found = self._files(img)
        new = self._new_paths(img)
        return ImageWanted.of(
            listings=(nm.KEYFILE_DIR, nm.IFCFG_DIR), files=(*found, CLOUD_NET_OFF, *new, *KERNEL_LINES),
            stats=(*found, CLOUD_NET_OFF, *new, nm.KEYFILE_DIR),
            exists=("/etc/cloud/cloud.cfg.d", *NM_DAEMON))

    def plan(self, img: ImageFacts) -> Plan:
        plan = Plan("static address" + (f"es of {len(self.nics)} NICs" if len(self.nics) > 1 else
                                        f" for {self.settings.what}"))
        if img.listing(nm.KEYFILE_DIR) is None and img.listing(nm.IFCFG_DIR) is None \
                and img.first_existing(*NM_DAEMON) is None:
            plan.notes.append("the image has no NetworkManager: the profile is written, but nothing may read it")
        keyfiles = {p: img.read(p) for p in nm.candidates(img.listing(nm.KEYFILE_DIR), nm.KEYFILE_DIR, "keyfile")}
        ifcfgs = {p: img.read(p) for p in nm.candidates(img.listing(nm.IFCFG_DIR), nm.IFCFG_DIR, "ifcfg")}
        scheme = nm.naming([img.read(p) for p in KERNEL_LINES])
        plan.notes.append((f"the image names its NICs with {scheme}" if scheme else "the image does not say how it "
                           "names its NICs (no kernel line in /etc/default/grub or /etc/kernel/cmdline): eth<n> and "
                           "enp<n+1>s0 both count") + "; a profile is matched to a NIC by its MAC first, else its name")
        made_dir = False
        for a, new_path in zip(nm.assign([n.settings for n in self.nics], nm.ethernet_profiles(keyfiles, ifcfgs),
                                         scheme), self._new_paths(img), strict=True):
            nic = next(n for n in self.nics if n.settings is a.nic)
            made_dir = _nic(img, plan, a, nic, new_path, made_dir)
        if self.disable_cloud_init_network and img.exists("/etc/cloud/cloud.cfg.d"):
            _file(img, plan, CLOUD_NET_OFF, "network: {config: disabled}\n", 0o644,
                  "switch cloud-init's network step off (it would write its own profile)")
        if not plan.steps:
            which = ", ".join(n.settings.address for n in self.nics)
            plan.noop(f"already so: every NIC's profile has its static address ({which})")
        return plan


def _ours(img: ImageFacts, name: str, n: NicIp) -> bool:
    """The keyfile ``name`` in the image binds NIC ``n`` (or nothing): kvmops may write it."""
    text = img.peek(f"{nm.KEYFILE_DIR}/{name}")
    if text is None:
        return False
    p = nm.Profile(f"{nm.KEYFILE_DIR}/{name}", "keyfile", name, text)
    return (p.mac == (n.settings.mac or "").lower() and p.mac is not None) or (
        n.settings.mac is None and p.bound_name in (None, n.settings.device))


def _nic(img: ImageFacts, plan: Plan, a: nm.Assignment, nic: NicIp, new_path: str, made_dir: bool) -> bool:
    s = a.nic
    what = f"{s.address}" + (f", gateway {s.gateway}" if s.gateway else ", no default route") + \
        (f", DNS {' '.join(s.dns)}" if s.dns else "")
    for other in a.quiet:
        _file(img, plan, other.path, nm.quiet(other), _mode(other), f"switch off the image's profile {other.name!r} "
              f"({other.path}, bound to {other.binding}): it would compete for {s.what}")
    if a.profile is not None:
        p = a.profile
        how = f"bound to nothing: bind it to {s.what} and" if a.bind else f"bound to {p.binding}:"
        _file(img, plan, p.path, nm.edit(p, s, bind=a.bind), _mode(p),
              f"change the image's profile {p.name!r} ({p.path}), {how} set static {what} (as nmcli con mod does)")
        return made_dir
    if img.stat(nm.KEYFILE_DIR) is None and not made_dir:
        for reason, cmd in img.dir_steps(nm.KEYFILE_DIR, 0o700):
            plan.add(reason, cmd)
        made_dir = True
    _file(img, plan, new_path, nic.keyfile, 0o600,
          f"the image has no profile for {s.what}: a new one ({new_path}) bound to "
          f"{'its MAC' if s.mac else 'its name ' + s.device}, static {what}")
    return made_dir


def _mode(p: nm.Profile) -> int:
    return 0o600 if p.format == "keyfile" else 0o644


def _file(img: ImageFacts, plan: Plan, path: str, text: str, mode: int, why: str) -> None:
    st = img.stat(path)
    if img.read(path) == text and st and (st.mode, st.uid, st.gid) == (mode, 0, 0):
        return
    steps = img.write_steps(path, text, mode)
    plan.add(f"{why}: {steps[0][0]}", steps[0][1])
    for reason, cmd in steps[1:]:
        plan.add(reason, cmd)


def parse_keyfile(text: str) -> None:
    """A NetworkManager keyfile needs a [connection] section with type= (and parses as INI)."""
    cp = configparser.ConfigParser(interpolation=None)
    try:
        cp.read_string(text)
    except configparser.Error as exc:
        raise InvalidInput(f"the keyfile does not parse: {exc}") from None
    if not cp.has_section("connection") or not cp.has_option("connection", "type"):
        raise InvalidInput("the keyfile needs a [connection] section with id= and type=")
