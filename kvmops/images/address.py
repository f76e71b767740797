"""The static-address tweak (guide 3.3.3): the image's existing NetworkManager profile for the
interface changed in place (:mod:`kvmops.images.nmprofiles`), a new keyfile only when it has
none; cloud-init's network step switched off."""

from __future__ import annotations

import configparser
from dataclasses import dataclass

from kvmops.errors import InvalidInput
from kvmops.images import nmprofiles as nm
from kvmops.images.imagefs import ImageFacts, ImageWanted
from kvmops.net.address import StaticAddress, nm_keyfile
from kvmops.plan import Plan

CLOUD_NET_OFF = "/etc/cloud/cloud.cfg.d/99-kvmops-network.cfg"
NM_DAEMON = ("/usr/sbin/NetworkManager", "/usr/bin/NetworkManager")


@dataclass(frozen=True)
class StaticIp:
    """A static address the guest boots with, set in the image's EXISTING NetworkManager
    profile(s) for the interface, as the guide's ``nmcli con mod`` does (keyfile or ifcfg, see
    :mod:`kvmops.images.nmprofiles`); a new keyfile only when the image has none for it.
    cloud-init's network step is switched off (it would write its own profile again)."""

    settings: nm.Settings
    keyfile: str  # the new profile, when the image has none for the interface
    profile: str = "eth0"
    disable_cloud_init_network: bool = True

    def __post_init__(self) -> None:
        parse_keyfile(self.keyfile)

    @classmethod
    def from_address(cls, a: StaticAddress) -> StaticIp:
        """From the networks helper's validated address (``kvmops.net.address``)."""
        s = nm.Settings(a.device, a.with_prefix, str(a.gateway), tuple(str(d) for d in a.dns))
        return cls(s, nm_keyfile(a), a.profile)

    @property
    def device(self) -> str:
        return self.settings.device

    @property
    def new_path(self) -> str:
        return f"{nm.KEYFILE_DIR}/{self.profile}.nmconnection"

    def _files(self, img: ImageFacts) -> list[str]:
        keyfiles = nm.candidates(img.listings.get(nm.KEYFILE_DIR), nm.KEYFILE_DIR, "keyfile")
        return keyfiles + nm.candidates(img.listings.get(nm.IFCFG_DIR), nm.IFCFG_DIR, "ifcfg")

    def wants(self, img: ImageFacts) -> ImageWanted:
        found = self._files(img)
        return ImageWanted.of(
            listings=(nm.KEYFILE_DIR, nm.IFCFG_DIR), files=(*found, CLOUD_NET_OFF, self.new_path),
            stats=(*found, CLOUD_NET_OFF, self.new_path, nm.KEYFILE_DIR),
            exists=("/etc/cloud/cloud.cfg.d", *NM_DAEMON))

    def plan(self, img: ImageFacts) -> Plan:
        plan = Plan(f"static address for {self.device}")
        if img.listing(nm.KEYFILE_DIR) is None and img.listing(nm.IFCFG_DIR) is None \
                and img.first_existing(*NM_DAEMON) is None:
            plan.notes.append("the image has no NetworkManager: the profile is written, but nothing may read it")
        keyfiles = {p: img.read(p) for p in nm.candidates(img.listing(nm.KEYFILE_DIR), nm.KEYFILE_DIR, "keyfile")}
        ifcfgs = {p: img.read(p) for p in nm.candidates(img.listing(nm.IFCFG_DIR), nm.IFCFG_DIR, "ifcfg")}
        profiles = nm.profiles_for(self.device, keyfiles, ifcfgs)
        for prof in profiles:
            mode = 0o600 if prof.format == "keyfile" else 0o644
            why = (f"change the image's profile {prof.name!r} ({prof.path}) for {self.device}: static "
                   f"{self.settings.address}, gateway {self.settings.gateway} (as nmcli con mod does)")
            _file(img, plan, prof.path, nm.edit(prof, self.settings), mode, why)
        if not profiles:
            if img.stat(nm.KEYFILE_DIR) is None:
                for reason, cmd in img.dir_steps(nm.KEYFILE_DIR, 0o700):
                    plan.add(reason, cmd)
            _file(img, plan, self.new_path, self.keyfile, 0o600,
                  f"the image has no profile for {self.device}: a new one ({self.new_path})")
        if self.disable_cloud_init_network and img.exists("/etc/cloud/cloud.cfg.d"):
            _file(img, plan, CLOUD_NET_OFF, "network: {config: disabled}\n", 0o644,
                  "switch cloud-init's network step off (it would write its own profile)")
        if len(profiles) > 1:
            plan.notes.append(f"{len(profiles)} profiles apply to {self.device} "
                              f"({', '.join(p.path for p in profiles)}): each gets the static address")
        if not plan.steps:
            which = ", ".join(p.path for p in profiles) or self.new_path
            plan.noop(f"already so: {which} has the static address for {self.device}")
        return plan


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
