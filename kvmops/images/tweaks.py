"""Offline tweaks of a guest image in a chroot (guide 3.3), each idempotent, each a Plan: the
accounts (:mod:`~kvmops.images.accounts`), the static address (:mod:`~kvmops.images.address`),
and here the console and SELinux tweaks and how all of them run.

A tweak says what it needs to read inside the image (``wants``: an :class:`ImageWanted`)
and plans purely from what was read (``plan``: an :class:`ImageFacts` in, a :class:`Plan`
out): the steps that change what differs, or a no-op saying it is "already so".

How they run (:func:`kvmops.facts.tweaks.look`, :func:`plan_all`, and the tweak phase of
:mod:`kvmops.procedures.disks`):

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
from kvmops.images import content as c
from kvmops.images.accounts import AuthorizedKeys, LoginUser, SetPassword, Sudoers
from kvmops.images.address import StaticIp, parse_keyfile
from kvmops.images.imagefs import PLACEHOLDER, ImageFacts, ImageWanted
from kvmops.images.passwords import Password
from kvmops.plan import Plan

GETTY_LINK = "/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service"
GETTY_TARGET = "/lib/systemd/system/serial-getty@.service"
GRUB_DEFAULTS = "/etc/default/grub"
MKCONFIG = (("/usr/sbin/grub2-mkconfig", "/boot/grub2/grub.cfg"),
            ("/usr/sbin/grub-mkconfig", "/boot/grub/grub.cfg"))


__all__ = ["AuthorizedKeys", "GrubSerial", "LoginUser", "SelinuxRelabel", "SerialGetty", "SetPassword",
           "StaticIp", "Sudoers", "Tweak", "TweakReport", "joined", "outcome", "parse_keyfile", "plan_all",
           "planned"]


class Tweak(Protocol):
    def wants(self, img: ImageFacts) -> ImageWanted: ...

    def plan(self, img: ImageFacts) -> Plan: ...


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


# ----------------------------------------------------------------- which tweaks
def build(login: str, *, password: Password | None = None, root_password: Password | None = None,
          keys: Sequence[str] = (), root_keys: Sequence[str] = (), sudo: bool = False, getty: bool = False,
          grub: bool = False, network: Tweak | None = None) -> list[Tweak]:
    """The one builder of a tweak list (image-tweak's, and guest-create's ``setup=tweaks``), in
    the order they run: the login user first whenever a tweak concerns it (a stock cloud image
    lacks it until cloud-init runs: it is then created offline, as cloud-init would), then the
    passwords, the keys (validated: :func:`kvmops.images.content.parse_keys`), sudo, the serial
    getty, GRUB on the serial console, the network; the SELinux relabel last (files written
    offline carry no SELinux labels)."""
    todo: list[Tweak] = [SetPassword(p) for p in (password, root_password) if p is not None]
    todo += [AuthorizedKeys(login, tuple(keys))] if keys else []
    todo += [AuthorizedKeys("root", tuple(root_keys))] if root_keys else []
    todo += [Sudoers(login)] if sudo else []
    todo += [SerialGetty()] if getty else []
    todo += [GrubSerial()] if grub else []
    todo += [network] if network is not None else []
    if password is not None or keys or sudo:
        todo.insert(0, LoginUser(login))
    return [*todo, SelinuxRelabel()]


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


def planned(seen: Look, tweaks: Sequence[Tweak], root: str = PLACEHOLDER, *, applied: bool = False) -> TweakReport:
    """The report of every tweak planned from what was read (:func:`kvmops.facts.tweaks.look`)."""
    plans = plan_all(seen.img, tweaks, root)
    return TweakReport(seen.root, seen.os, plans, [outcome(p, applied) for p in plans], applied=applied)


def joined(plans: list[Plan], title: str = "tweaks") -> Plan:
    """The tweaks' plans as one plan (their notes kept)."""
    whole = Plan(title)
    for p in plans:
        whole.extend(p)
    return whole


def outcome(plan: Plan, write: bool) -> str:
    notes = "".join(f"\n    note: {n}" for n in plan.notes)
    if plan.empty:
        return f"{plan.title}: {plan.steps[0].reason if plan.steps else 'already so'}{notes}"
    verb = "changed" if write else "planned"
    changes = "; ".join(s.reason for s in plan.steps if not s.noop)
    return f"{plan.title}: {verb}: {changes}{notes}"
