"""Offline tweaks of a guest image in a chroot (guide 3.3), each idempotent, each a Plan.

A tweak says what it needs to read inside the image (``wants``: an :class:`ImageWanted`)
and plans purely from what was read (``plan``: an :class:`ImageFacts` in, a :class:`Plan`
out): the steps that change what differs, or a no-op saying it is "already so".

How they run (:func:`look`, :func:`plan_all`, :func:`apply`, or :func:`tweak_image` for both):

1. **Look**: the disk is mapped and its root mounted read-only (transient: undone on every
   path, so plan mode does it too) and everything the tweaks want is read, once.
2. **Plan**: every tweak is planned from that content, in order (a user created by an
   earlier tweak counts for the later ones); bad input stops everything before a change.
   The plans name the mount point as :data:`~kvmops.images.imagefs.PLACEHOLDER`.
3. **Apply** (only with ``host.apply``): the disk is mapped and mounted read-write, the
   content read afresh, every tweak planned again from it and each plan executed by the one
   executor; unmounted and unmapped on every path out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kvmops.cmd import change
from kvmops.errors import InvalidInput
from kvmops.executor import Executor
from kvmops.facts import HostFacts
from kvmops.host import Host
from kvmops.images import content as c
from kvmops.images import nmprofiles as nm
from kvmops.images.disk import open_disk
from kvmops.images.imagefs import PLACEHOLDER, ImageFacts, ImageWanted, gather
from kvmops.images.mount import RootFs, image_root
from kvmops.images.passwords import Password
from kvmops.net.address import StaticAddress, nm_keyfile
from kvmops.plan import Plan, Progress
from kvmops.runners.base import Runner

GETTY_LINK = "/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"
GETTY_TARGET = "/lib/systemd/system/serial-getty@.service"
GRUB_DEFAULTS = "/etc/default/grub"
MKCONFIG = (("/usr/sbin/grub2-mkconfig", "/boot/grub2/grub.cfg"),
            ("/usr/sbin/grub-mkconfig", "/boot/grub/grub.cfg"))
CLOUD_CFG = "/etc/cloud/cloud.cfg"
CLOUD_NET_OFF = "/etc/cloud/cloud.cfg.d/99-kvmops-network.cfg"
USERADD = ("/usr/sbin/useradd", "/sbin/useradd")
NM_DAEMON = ("/usr/sbin/NetworkManager", "/usr/bin/NetworkManager")
PASSWD = ImageWanted.of(files=("/etc/passwd",))


class Tweak(Protocol):
    def wants(self, img: ImageFacts) -> ImageWanted: ...

    def plan(self, img: ImageFacts) -> Plan: ...


def _home_wants(img: ImageFacts, user: str, *rel: str) -> ImageWanted:
    """The user's home and paths below it, once /etc/passwd is known."""
    acc = c.parse_passwd(img.peek("/etc/passwd") or "").get(user)
    if acc is None or not acc.home.startswith("/"):
        return PASSWD
    home = acc.home.rstrip("/") or "/"
    paths = [home, *(f"{home.rstrip('/')}/{r}" for r in rel)]
    return PASSWD | ImageWanted.of(stats=paths, files=paths[-1:] if rel else ())


@dataclass(frozen=True)
class LoginUser:
    """The login user exists: created offline when the image lacks it, like cloud-init would.

    A stock GenericCloud image has no ``centos``/``rocky`` user until cloud-init runs. The
    user gets what the image's own ``/etc/cloud/cloud.cfg`` gives cloud-init's default user
    (``system_info.default_user``: groups, shell, gecos; only groups the image's /etc/group
    has), else ``/bin/bash`` and ``wheel``; a home in ``/home``; its password stays locked.
    """

    user: str

    def __post_init__(self) -> None:
        c.user_name(self.user)

    def wants(self, img: ImageFacts) -> ImageWanted:
        base = PASSWD | ImageWanted.of(files=("/etc/group", CLOUD_CFG), exists=USERADD)
        shell = self._shell(c.default_user(img.peek(CLOUD_CFG)))
        return base | ImageWanted.of(exists=(shell,))

    @staticmethod
    def _shell(d: c.DefaultUser) -> str:
        return d.shell if d.shell and d.shell.startswith("/") else c.FALLBACK_SHELL

    def plan(self, img: ImageFacts) -> Plan:
        plan = Plan(f"login user {self.user}")
        have = img.accounts().get(self.user)
        if have is not None:
            return plan.noop(f"already so: the image has user {self.user} ({have.home}, {have.shell})")
        useradd = img.first_existing(*USERADD)
        if useradd is None:
            raise InvalidInput(f"the image has no user {self.user} and no useradd (package passwd/shadow-utils) "
                               "to create it: use an image with the login user, or setup=nocloud")
        d = c.default_user(img.read(CLOUD_CFG))
        known = c.parse_group(img.read("/etc/group") or "")
        asked = d.groups or c.FALLBACK_GROUPS
        groups = [g for g in asked if g in known]
        shell = self._shell(d)
        where = f"the image's {CLOUD_CFG}" if d.groups or d.shell else f"defaults ({CLOUD_CFG} names none)"
        left = [g for g in asked if g not in known]
        said = (f"the image has no user {self.user}: it is created like cloud-init would: groups "
                f"{', '.join(groups) or 'none'}, shell {shell}, home /home/{self.user} (from {where})")
        if left:
            plan.notes.append(f"groups not in the image's /etc/group, left out: {', '.join(left)}")
        if not img.exists(shell):
            plan.notes.append(f"the image has no {shell}: {self.user} cannot log in until it is installed")
        argv = ["useradd", "--create-home", "--shell", shell]
        argv += ["--groups", ",".join(groups)] if groups else []
        argv += ["--comment", d.gecos] if d.gecos else []
        return plan.add(said, img.cmd(*argv, self.user))

    def assume(self, img: ImageFacts) -> ImageFacts:
        """The image as the later tweaks of this run see it: with the user (ids not known yet)."""
        if self.user in img.accounts():
            return img
        return img.with_user(c.planned_account(self.user, f"/home/{self.user}", self._shell(
            c.default_user(img.read(CLOUD_CFG)))))


@dataclass(frozen=True)
class SetPassword:
    """Set a user's password with ``chpasswd -e`` (hash on stdin, masked)."""

    password: Password

    def wants(self, img: ImageFacts) -> ImageWanted:
        return PASSWD | ImageWanted.of(files=("/etc/shadow",), exists=("/usr/sbin/chpasswd", "/sbin/chpasswd"))

    def plan(self, img: ImageFacts) -> Plan:
        user = c.user_name(self.password.user)
        c.need_account(img.accounts(), user, img.root)
        plan = Plan(f"password of {user}")
        stored = c.shadow_hash(img.read("/etc/shadow") or "", user)
        if stored and self.password.matches(stored):
            return plan.noop(f"already so: {user} has the password given")
        if img.first_existing("/usr/sbin/chpasswd", "/sbin/chpasswd") is None:
            raise InvalidInput("the image has no chpasswd (package passwd/shadow-utils): cannot set passwords")
        return plan.add(
            f"set the password of {user} (SHA-512 hash on stdin)",
            img.cmd("chpasswd", "-e", stdin=f"{user}:{self.password.hash()}\n", stdin_secret=True),
        )


@dataclass(frozen=True)
class AuthorizedKeys:
    """Add SSH public keys to ``~USER/.ssh/authorized_keys`` (700/600, owner from the image)."""

    user: str
    keys: tuple[str, ...]

    def __post_init__(self) -> None:
        c.user_name(self.user)
        if not self.keys:
            raise InvalidInput(f"no SSH public key given for {self.user}")
        object.__setattr__(self, "keys", tuple(c.public_key(k) for k in self.keys))

    def wants(self, img: ImageFacts) -> ImageWanted:
        return _home_wants(img, self.user, ".ssh", ".ssh/authorized_keys")

    def plan(self, img: ImageFacts) -> Plan:
        acc = c.need_account(img.accounts(), self.user, img.root)
        plan = Plan(f"authorized_keys of {self.user}")
        home = acc.home.rstrip("/")
        ssh, keys = f"{home}/.ssh", f"{home}/.ssh/authorized_keys"
        if acc.pending:  # useradd --create-home makes the home in this run
            current, st, fst = "", None, None
        else:
            found = img.stat(acc.home) if acc.home.startswith("/") else None
            if found is None or found.kind != "directory":
                raise InvalidInput(f"the home of {self.user} ({acc.home}) is not a folder in the image")
            current, st, fst = img.read(keys) or "", img.stat(ssh), img.stat(keys)
        if st is not None and st.kind != "directory":
            raise InvalidInput(f"{ssh} in the image is a {st.kind}, not a folder: fix it by hand")
        if st is None or (st.mode, st.uid, st.gid) != (0o700, acc.uid, acc.gid):
            for reason, cmd in img.dir_steps(ssh, 0o700, acc.owner):
                plan.add(reason, cmd)
        wanted = c.merge_keys(current, list(self.keys))
        if wanted != current or fst is None or fst.kind != "regular file":
            added = len(wanted.splitlines()) - len([ln for ln in current.splitlines() if ln.strip()])
            plan.notes.append(f"{keys}: {added} key(s) added")
            for reason, cmd in img.write_steps(keys, wanted, 0o600, acc.owner):
                plan.add(reason, cmd)
        elif (fst.mode, fst.uid, fst.gid) != (0o600, acc.uid, acc.gid):
            plan.add(f"{keys}: owner {acc.owner}", img.cmd("chown", acc.owner, keys))
            plan.add(f"{keys}: mode 600", img.cmd("chmod", "600", keys))
        if not plan.steps:
            plan.noop(f"already so: {keys} holds the key(s), 600 {acc.owner}, folder 700")
        return plan


@dataclass(frozen=True)
class Sudoers:
    """``/etc/sudoers.d/USER``, 440 root:root, checked with ``visudo -c -f`` before it is moved in."""

    user: str
    nopasswd: bool = True
    file: str = ""

    @property
    def path(self) -> str:
        return f"/etc/sudoers.d/{c.sudoers_file_name(self.file or self.user)}"

    def wants(self, img: ImageFacts) -> ImageWanted:
        return PASSWD | ImageWanted.of(files=(self.path, "/etc/sudoers"), stats=(self.path, "/etc/sudoers.d"),
                                       exists=("/usr/sbin/visudo", "/usr/bin/visudo"))

    def plan(self, img: ImageFacts) -> Plan:
        c.user_name(self.user)
        path = self.path
        c.need_account(img.accounts(), self.user, img.root)
        visudo = img.first_existing("/usr/sbin/visudo", "/usr/bin/visudo")
        if visudo is None:
            raise InvalidInput("the image has no sudo (no visudo to check the file): install sudo in it first")
        plan = Plan(f"sudo rights of {self.user} ({path})")
        wanted = c.sudoers_line(self.user, self.nopasswd)
        st = img.stat(path)
        if img.read(path) == wanted and st and (st.mode, st.uid, st.gid) == (0o440, 0, 0):
            return plan.noop(f"already so: {path} holds the line, 440 root:root")
        if img.stat("/etc/sudoers.d") is None:
            for reason, cmd in img.dir_steps("/etc/sudoers.d", 0o750):
                plan.add(reason, cmd)
        if "includedir /etc/sudoers.d" not in (img.read("/etc/sudoers") or ""):
            plan.notes.append("/etc/sudoers has no '#includedir /etc/sudoers.d': sudo will not read the file")
        for reason, cmd in img.write_steps(path, wanted, 0o440, check=(visudo, "-c", "-q", "-f")):
            plan.add(reason, cmd)
        return plan


@dataclass(frozen=True)
class SerialGetty:
    """The guide's link (3.3.2): getty.target.wants/serial-getty@ttyS0.service."""

    def wants(self, img: ImageFacts) -> ImageWanted:
        return ImageWanted.of(links=(GETTY_LINK,), exists=(GETTY_TARGET,), stats=(GETTY_LINK.rsplit("/", 1)[0],))

    def plan(self, img: ImageFacts) -> Plan:
        plan = Plan("login prompt on the serial console (serial-getty@ttyS0)")
        if img.readlink(GETTY_LINK) == GETTY_TARGET:
            return plan.noop(f"already so: {GETTY_LINK} -> {GETTY_TARGET}")
        if not img.exists(GETTY_TARGET):
            plan.notes.append(f"the image has no {GETTY_TARGET} (no systemd?): the link will not work")
        folder = GETTY_LINK.rsplit("/", 1)[0]
        if img.stat(folder) is None:
            plan.add(f"create {folder}", img.cmd("mkdir", "-p", folder))
        return plan.add(f"link {GETTY_LINK} -> {GETTY_TARGET}", img.cmd("ln", "-sfn", GETTY_TARGET, GETTY_LINK))


@dataclass(frozen=True)
class GrubSerial:
    """A serial console for GRUB and the kernel (the guide's "exercise", 3.3.2).

    Edits /etc/default/grub, then regenerates grub.cfg in the chroot with /proc, /sys and
    /dev bound for the time of that one command; images without GRUB tools get a note.
    """

    speed: int = 115200

    def wants(self, img: ImageFacts) -> ImageWanted:
        cfgs = [cfg for _mk, cfg in MKCONFIG]
        return ImageWanted.of(files=(GRUB_DEFAULTS, *cfgs), stats=(GRUB_DEFAULTS,),
                              exists=(*(mk for mk, _cfg in MKCONFIG), *(cfg.rsplit("/", 1)[0] for cfg in cfgs),
                                      "/usr/sbin/grubby"))

    def plan(self, img: ImageFacts) -> Plan:
        plan = Plan("serial console for GRUB and the kernel (ttyS0)")
        current = img.read(GRUB_DEFAULTS)
        if current is None:
            plan.notes.append(f"no {GRUB_DEFAULTS} in the image: not a GRUB 2 image; nothing changed")
            return plan.noop("no GRUB 2 configuration in the image")
        wanted = c.grub_serial(current, self.speed)
        st = img.stat(GRUB_DEFAULTS)
        if wanted != current:
            for reason, cmd in img.write_steps(GRUB_DEFAULTS, wanted, st.mode if st else 0o644):
                plan.add(reason, cmd)
        self._regenerate(img, plan, changed=wanted != current)
        if not plan.steps:
            plan.noop(f"already so: {GRUB_DEFAULTS} and grub.cfg have the serial console")
        return plan

    def _regenerate(self, img: ImageFacts, plan: Plan, *, changed: bool) -> None:
        found = [(mk, cfg) for mk, cfg in MKCONFIG if img.exists(mk)]
        if not found:
            plan.notes.append("the image has no grub-mkconfig/grub2-mkconfig: grub.cfg NOT regenerated; "
                              "run `grub2-mkconfig -o /boot/grub2/grub.cfg` in the guest")
            return
        mk, cfg = found[0]
        if not img.exists(cfg.rsplit("/", 1)[0]):
            plan.notes.append(f"{cfg.rsplit('/', 1)[0]} is missing (/boot not on this disk?): grub.cfg NOT regenerated")
            return
        if not changed and "serial --speed" in (img.read(cfg) or ""):
            return
        binds = ((("mount", "-t", "proc", "proc"), "/proc"), (("mount", "-t", "sysfs", "sysfs"), "/sys"),
                 (("mount", "--bind", "/dev"), "/dev"))
        for argv, where in binds:
            plan.add(f"bind {where} for grub's device probe", change(*argv, img.root + where))
        plan.add(f"regenerate {cfg}", img.cmd(mk, "-o", cfg))
        if img.exists("/usr/sbin/grubby"):
            plan.add("kernel arguments of the BLS entries (grubby)",
                     img.cmd("grubby", "--update-kernel=ALL", f"--args={' '.join(c.SERIAL_CONSOLE)}"))
        for _argv, where in reversed(binds):
            plan.add(f"unbind {where}", change("umount", img.root + where))


@dataclass(frozen=True)
class SelinuxRelabel:
    """``touch /.autorelabel`` when the image's SELinux is not disabled (files written offline
    carry no labels). Put it last."""

    def wants(self, img: ImageFacts) -> ImageWanted:
        return ImageWanted.of(files=("/etc/selinux/config",), exists=("/.autorelabel",))

    def plan(self, img: ImageFacts) -> Plan:
        plan = Plan("SELinux relabel on next boot")
        mode = c.selinux_mode(img.read("/etc/selinux/config"))
        if mode == "disabled":
            return plan.noop("the image does not use SELinux (disabled or no /etc/selinux/config)")
        if img.exists("/.autorelabel"):
            return plan.noop(f"already so: /.autorelabel exists (SELinux {mode})")
        plan.notes.append("the first boot relabels every file and reboots once: it takes a while")
        return plan.add(f"relabel on next boot (SELinux {mode})", img.cmd("touch", "/.autorelabel"))


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
    import configparser

    cp = configparser.ConfigParser(interpolation=None)
    try:
        cp.read_string(text)
    except configparser.Error as exc:
        raise InvalidInput(f"the keyfile does not parse: {exc}") from None
    if not cp.has_section("connection") or not cp.has_option("connection", "type"):
        raise InvalidInput("the keyfile needs a [connection] section with id= and type=")


# ----------------------------------------------------------------- running them
@dataclass
class TweakReport:
    """What each tweak did: ``changed``, ``already so`` or ``planned`` (plan mode), with notes."""

    root: str = ""
    os: str = ""
    plans: list[Plan] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    applied: bool = False

    def render(self) -> str:
        """Outcome lines; in plan mode each tweak's plan (the exact commands) first."""
        shown = [] if self.applied else [p.render() + "\n" for p in self.plans]
        return "\n".join([*shown, f"# image root {self.root} ({self.os})", *self.lines])

    def __str__(self) -> str:
        return self.render()

    @property
    def pending(self) -> list[str]:
        """The tweaks that still plan a change (after an applied run: none)."""
        return [p.title for p in self.plans if not p.empty]


@dataclass(frozen=True)
class Look:
    """The image as read before anything changes: where its root is, which OS, its content."""

    root: str
    os: str
    img: ImageFacts


def look(runner: Runner, facts: HostFacts, tweaks: Sequence[Tweak], *, image: str | None = None,
         lv: str | None = None) -> Look:
    """Map the disk and mount its root read-only (transient), read what the tweaks want;
    unmounted and unmapped again on every path out."""
    with open_disk(runner, facts, image=image, lv=lv) as disk, image_root(runner, disk) as root:
        return _looked(runner, root, tweaks)


def _looked(runner: Runner, root: RootFs, tweaks: Sequence[Tweak]) -> Look:
    img = gather(runner, root.mountpoint, tweaks)
    return Look(f"{root.device} ({root.fstype})", _os_name(root), img)


def plan_all(img: ImageFacts, tweaks: Sequence[Tweak], root: str = PLACEHOLDER) -> list[Plan]:
    """Every tweak's plan from the image's content (mounted at ``root`` when they run), in order;
    a user that :class:`LoginUser` creates counts for the tweaks after it."""
    img = img.at(root)
    plans = []
    for t in tweaks:
        plans.append(t.plan(img))
        if isinstance(t, LoginUser):
            img = t.assume(img)
    return plans


def apply(host: Host, facts: HostFacts, tweaks: Sequence[Tweak], *, image: str | None = None,
          lv: str | None = None, progress: Progress | None = None) -> TweakReport:
    """Map and mount read-write, read the content afresh, plan every tweak from it, then
    execute each plan through the one executor; unmounted and unmapped on every path."""
    run = Executor(host, progress)
    runner = host.runner
    with open_disk(runner, facts, image=image, lv=lv, write=True) as disk, \
            image_root(runner, disk, write=True) as root:
        seen = _looked(runner, root, tweaks)
        plans = plan_all(seen.img, tweaks, root.mountpoint)
        report = TweakReport(seen.root, seen.os, plans, applied=True)
        for plan in plans:
            run.execute(plan)
            report.lines.append(_outcome(plan, True))
        return report


def planned(seen: Look, tweaks: Sequence[Tweak]) -> TweakReport:
    """The report of plan mode: every tweak planned from what :func:`look` read."""
    plans = plan_all(seen.img, tweaks)
    return TweakReport(seen.root, seen.os, plans, [_outcome(p, False) for p in plans])


def tweak_image(host: Host, facts: HostFacts, tweaks: Sequence[Tweak], *, image: str | None = None,
                lv: str | None = None, progress: Progress | None = None) -> TweakReport:
    """Tweak an image file or a guest LV (``lv="VG/LV"``): looked at read-only and planned;
    applied (read and planned again from the read-write mount) only when ``host.apply``."""
    seen = look(host.runner, facts, tweaks, image=image, lv=lv)
    report = planned(seen, tweaks)
    if not host.apply:
        Executor(host, progress).execute(_joined(report.plans))  # recorded as planned, not run
        return report
    return apply(host, facts, tweaks, image=image, lv=lv, progress=progress)


def _joined(plans: list[Plan]) -> Plan:
    whole = Plan("tweaks")
    for p in plans:
        whole.extend(p)
    return whole


def _os_name(root: RootFs) -> str:
    return root.os_release.get("PRETTY_NAME") or root.os_release.get("ID", "unknown")


def _outcome(plan: Plan, write: bool) -> str:
    notes = "".join(f"\n    note: {n}" for n in plan.notes)
    if plan.empty:
        return f"{plan.title}: {plan.steps[0].reason if plan.steps else 'already so'}{notes}"
    verb = "changed" if write else "planned"
    changes = "; ".join(s.reason for s in plan.steps if not s.noop)
    return f"{plan.title}: {verb}: {changes}{notes}"
