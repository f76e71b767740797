"""Offline tweaks of a guest image in a chroot (guide 3.3), each idempotent, each a Plan.

A tweak reads the image's facts through :class:`ImageFs` and returns a :class:`Plan`: the
steps that change what differs, or a no-op saying it is "already so". :func:`tweak_image`
attaches the disk, finds and mounts the root (read-write only when applying), plans every
tweak first (so bad input stops everything before a change), applies them and always
unmounts and unmaps.
"""

from __future__ import annotations

import configparser
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kvmops.cmd import change
from kvmops.errors import InvalidInput
from kvmops.executor import Executor
from kvmops.facts import HostFacts
from kvmops.host import Host
from kvmops.images import content as c
from kvmops.images.disk import open_disk
from kvmops.images.imagefs import ImageFs
from kvmops.images.mount import RootFs, image_root
from kvmops.images.passwords import Password
from kvmops.net.address import StaticAddress, ifcfg, nm_keyfile
from kvmops.plan import Plan, Progress

GETTY_LINK = "/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"
GETTY_TARGET = "/lib/systemd/system/serial-getty@.service"
GRUB_DEFAULTS = "/etc/default/grub"
MKCONFIG = (("/usr/sbin/grub2-mkconfig", "/boot/grub2/grub.cfg"),
            ("/usr/sbin/grub-mkconfig", "/boot/grub/grub.cfg"))


class Tweak(Protocol):
    def plan(self, img: ImageFs) -> Plan: ...


def accounts(img: ImageFs) -> dict[str, c.Account]:
    text = img.read("/etc/passwd")
    if text is None:
        raise InvalidInput(f"the image at {img.root} has no /etc/passwd: not a Linux root")
    return c.parse_passwd(text)


@dataclass(frozen=True)
class SetPassword:
    """Set a user's password with ``chpasswd -e`` (hash on stdin, masked)."""

    password: Password

    def plan(self, img: ImageFs) -> Plan:
        user = c.user_name(self.password.user)
        c.need_account(accounts(img), user, img.root)
        plan = Plan(f"password of {user}")
        shadow = img.read("/etc/shadow")
        stored = c.shadow_hash(shadow or "", user)
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

    def plan(self, img: ImageFs) -> Plan:
        acc = c.need_account(accounts(img), self.user, img.root)
        plan = Plan(f"authorized_keys of {self.user}")
        home = img.stat(acc.home) if acc.home.startswith("/") else None
        if home is None or home.kind != "directory":
            raise InvalidInput(f"the home of {self.user} ({acc.home}) is not a folder in the image")
        ssh, keys = f"{acc.home.rstrip('/')}/.ssh", f"{acc.home.rstrip('/')}/.ssh/authorized_keys"
        st = img.stat(ssh)
        if st is not None and st.kind != "directory":
            raise InvalidInput(f"{ssh} in the image is a {st.kind}, not a folder: fix it by hand")
        if st is None or (st.mode, st.uid, st.gid) != (0o700, acc.uid, acc.gid):
            for reason, cmd in img.dir_steps(ssh, 0o700, acc.uid, acc.gid):
                plan.add(reason, cmd)
        current = img.read(keys) or ""
        wanted = c.merge_keys(current, list(self.keys))
        fst = img.stat(keys)
        if wanted != current or fst is None or fst.kind != "regular file":
            added = len(wanted.splitlines()) - len([ln for ln in current.splitlines() if ln.strip()])
            plan.notes.append(f"{keys}: {added} key(s) added")
            for reason, cmd in img.write_steps(keys, wanted, 0o600, acc.uid, acc.gid):
                plan.add(reason, cmd)
        elif (fst.mode, fst.uid, fst.gid) != (0o600, acc.uid, acc.gid):
            plan.add(f"{keys}: owner {acc.uid}:{acc.gid}", img.cmd("chown", f"{acc.uid}:{acc.gid}", keys))
            plan.add(f"{keys}: mode 600", img.cmd("chmod", "600", keys))
        if not plan.steps:
            plan.noop(f"already so: {keys} holds the key(s), 600 {acc.uid}:{acc.gid}, folder 700")
        return plan


@dataclass(frozen=True)
class Sudoers:
    """``/etc/sudoers.d/USER``, 440 root:root, checked with ``visudo -c -f`` before it is moved in."""

    user: str
    nopasswd: bool = True
    file: str = ""

    def plan(self, img: ImageFs) -> Plan:
        c.user_name(self.user)
        path = f"/etc/sudoers.d/{c.sudoers_file_name(self.file or self.user)}"
        c.need_account(accounts(img), self.user, img.root)
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
        for reason, cmd in img.write_steps(path, wanted, 0o440, 0, 0, check=(visudo, "-c", "-q", "-f")):
            plan.add(reason, cmd)
        return plan


@dataclass(frozen=True)
class SerialGetty:
    """The guide's link (3.3.2): getty.target.wants/serial-getty@ttyS0.service."""

    def plan(self, img: ImageFs) -> Plan:
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

    def plan(self, img: ImageFs) -> Plan:
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

    def _regenerate(self, img: ImageFs, plan: Plan, *, changed: bool) -> None:
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

    def plan(self, img: ImageFs) -> Plan:
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
    """A static address the guest boots with: a NetworkManager keyfile, or ifcfg for older images.

    The contents come from the networks helper (``kvmops.net``: ``nm_keyfile(...)`` /
    ``ifcfg(...)``), which validates addresses; here they are only checked for shape.
    ifcfg is written when the image already has ``ifcfg-NAME`` (its DHCP profile would
    otherwise compete); else the keyfile. cloud-init's network step is switched off.
    """

    name: str = "eth0"
    keyfile: str | None = None
    ifcfg: str | None = None
    disable_cloud_init_network: bool = True
    profile: str = ""

    def __post_init__(self) -> None:
        if not self.keyfile and not self.ifcfg:
            raise InvalidInput("give the keyfile and/or ifcfg content for the static address")
        if self.keyfile:
            parse_keyfile(self.keyfile)

    @classmethod
    def from_address(cls, a: StaticAddress) -> StaticIp:
        """Both contents from the networks helper's validated address (``kvmops.net.address``)."""
        return cls(a.device, nm_keyfile(a), ifcfg(a), profile=a.profile)

    def plan(self, img: ImageFs) -> Plan:
        plan = Plan(f"static address for {self.name}")
        ifcfg_path = f"/etc/sysconfig/network-scripts/ifcfg-{self.name}"
        if img.exists(ifcfg_path) or (self.keyfile is None):
            if self.ifcfg is None:
                raise InvalidInput(f"the image configures {self.name} with {ifcfg_path}: give ifcfg content")
            self._file(img, plan, ifcfg_path, self.ifcfg, 0o644)
        else:
            path = f"/etc/NetworkManager/system-connections/{self.profile or self.name}.nmconnection"
            if img.stat("/etc/NetworkManager/system-connections") is None:
                for reason, cmd in img.dir_steps("/etc/NetworkManager/system-connections", 0o700):
                    plan.add(reason, cmd)
            self._file(img, plan, path, self.keyfile or "", 0o600)
        if self.disable_cloud_init_network and img.exists("/etc/cloud/cloud.cfg.d"):
            self._file(img, plan, "/etc/cloud/cloud.cfg.d/99-kvmops-network.cfg",
                       "network: {config: disabled}\n", 0o644)
        if not plan.steps:
            plan.noop(f"already so: {self.name} has the static address files")
        return plan

    @staticmethod
    def _file(img: ImageFs, plan: Plan, path: str, text: str, mode: int) -> None:
        st = img.stat(path)
        if img.read(path) == text and st and (st.mode, st.uid, st.gid) == (mode, 0, 0):
            return
        for reason, cmd in img.write_steps(path, text, mode):
            plan.add(reason, cmd)


def parse_keyfile(text: str) -> configparser.ConfigParser:
    """A NetworkManager keyfile as configparser reads it; needs [connection] with id and type."""
    cp = configparser.ConfigParser(interpolation=None)
    try:
        cp.read_string(text)
    except configparser.Error as exc:
        raise InvalidInput(f"the keyfile does not parse: {exc}") from None
    if not cp.has_section("connection") or not cp.has_option("connection", "type"):
        raise InvalidInput("the keyfile needs a [connection] section with id= and type=")
    return cp


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


def tweak_image(host: Host, facts: HostFacts, tweaks: Sequence[Tweak], *, image: str | None = None,
                lv: str | None = None, progress: Progress | None = None) -> TweakReport:
    """Apply ``tweaks`` to an image file or a guest LV (``lv="VG/LV"``); plan only unless host.apply.

    In plan mode the disk is attached and mounted read-only to read the facts, and the
    changing steps are only recorded.
    """
    write = host.apply
    run = Executor(host, progress or print)
    with open_disk(host.runner, facts, image=image, lv=lv, write=write) as disk, \
            image_root(host.runner, disk, write=write) as root:
        img = ImageFs(host.runner, root.mountpoint)
        plans = [t.plan(img) for t in tweaks]
        report = TweakReport(f"{root.device} ({root.fstype})", _os_name(root), plans, applied=write)
        for plan in plans:
            run.execute(plan)
            report.lines.append(_outcome(plan, write))
        return report


def _os_name(root: RootFs) -> str:
    return root.os_release.get("PRETTY_NAME") or root.os_release.get("ID", "unknown")


def _outcome(plan: Plan, write: bool) -> str:
    notes = "".join(f"\n    note: {n}" for n in plan.notes)
    if plan.empty:
        return f"{plan.title}: {plan.steps[0].reason if plan.steps else 'already so'}{notes}"
    verb = "changed" if write else "planned"
    changes = "; ".join(s.reason for s in plan.steps if not s.noop)
    return f"{plan.title}: {verb}: {changes}{notes}"
