"""The account tweaks (guide 3.3.1): the login user (created like cloud-init would when the
image lacks it), passwords, SSH authorized keys, sudo rights. Each plans purely from the
image's content (:class:`~kvmops.images.imagefs.ImageFacts`) and converges."""

from __future__ import annotations

from dataclasses import dataclass

from kvmops.errors import InvalidInput
from kvmops.images import content as c
from kvmops.images.imagefs import ImageFacts, ImageWanted
from kvmops.images.passwords import Password
from kvmops.plan import Plan

CLOUD_CFG = "/etc/cloud/cloud.cfg"
CLOUD_CFG_D = "/etc/cloud/cloud.cfg.d"


def cloud_cfgs(img: ImageFacts) -> tuple[str, ...]:
    """cloud-init's configuration files in the image, in the order it merges them: cloud.cfg,
    then the ``cloud.cfg.d/*.cfg`` drop-ins by name (once that folder was listed)."""
    names = img.listings.get(CLOUD_CFG_D) or ()
    return (CLOUD_CFG, *(f"{CLOUD_CFG_D}/{n}" for n in sorted(names) if n.endswith(".cfg")))


def default_user(img: ImageFacts, *, peek: bool = False) -> c.DefaultUser:
    """cloud-init's default user as the image's configuration gives it (read, or only peeked)."""
    get = img.peek if peek else img.read
    return c.default_user(*(get(p) for p in cloud_cfgs(img)))
USERADD = ("/usr/sbin/useradd", "/sbin/useradd")
PASSWD = ImageWanted.of(files=("/etc/passwd",))


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
        base = PASSWD | ImageWanted.of(files=("/etc/group", *cloud_cfgs(img)), listings=(CLOUD_CFG_D,),
                                       exists=USERADD)
        shell = self._shell(default_user(img, peek=True))
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
        img.listing(CLOUD_CFG_D)  # read (None: no such folder), so no drop-in is missed
        d = default_user(img)
        known = c.parse_group(img.read("/etc/group") or "")
        asked = d.groups or c.FALLBACK_GROUPS
        groups = [g for g in asked if g in known]
        shell = self._shell(d)
        where = (f"the image's cloud-init configuration ({CLOUD_CFG}, {CLOUD_CFG_D}/*.cfg)" if d.groups or d.shell
                 else "defaults (the image's cloud-init configuration names none)")
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
        return img.with_user(c.planned_account(self.user, f"/home/{self.user}", self._shell(default_user(img))))


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
