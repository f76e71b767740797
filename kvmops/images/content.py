"""Pure helpers for file contents inside a guest image (no I/O).

``/etc/passwd``, ``/etc/group`` and ``/etc/shadow`` parsing, cloud-init's default user
(``/etc/cloud/cloud.cfg``), SSH public key validation, the sudoers line, the GRUB serial
console edit of ``/etc/default/grub`` and the SELinux mode.
"""

from __future__ import annotations

import base64
import binascii
import re
import shlex
from dataclasses import dataclass

import yaml

from kvmops.errors import InvalidInput

KEY_TYPES = (
    "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
)
USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
SERIAL_CONSOLE = ("console=tty0", "console=ttyS0,115200n8")


@dataclass(frozen=True)
class Account:
    """A line of the image's /etc/passwd."""

    name: str
    uid: int
    gid: int
    home: str
    shell: str

    @property
    def pending(self) -> bool:
        """An account a tweak of this run is about to create (its ids are not known yet)."""
        return self.uid < 0

    @property
    def owner(self) -> str:
        """``UID:GID`` for chown; ``NAME:`` (the user and its login group, resolved inside the
        image) for an account created in the same run."""
        return f"{self.name}:" if self.pending else f"{self.uid}:{self.gid}"


def planned_account(name: str, home: str, shell: str) -> Account:
    """An account ``useradd`` will create: its ids are known only afterwards."""
    return Account(name, -1, -1, home, shell)


@dataclass(frozen=True)
class DefaultUser:
    """cloud-init's ``system_info.default_user`` of an image: what the login user gets."""

    name: str | None
    groups: tuple[str, ...]
    shell: str | None
    gecos: str | None


FALLBACK_SHELL = "/bin/bash"
FALLBACK_GROUPS = ("wheel",)


def user_name(name: str) -> str:
    """A Linux user name (``centos``, ``root``); anything else is refused before any command."""
    if not USER_RE.match(name or ""):
        raise InvalidInput(f"bad user name {name!r}: lower-case letters, digits, _ and -, at most 32")
    return name


def parse_passwd(text: str) -> dict[str, Account]:
    """``name:x:uid:gid:gecos:home:shell`` lines into accounts by name."""
    out = {}
    for line in text.splitlines():
        f = line.split(":")
        if len(f) >= 7 and f[2].isdigit() and f[3].isdigit():
            out[f[0]] = Account(f[0], int(f[2]), int(f[3]), f[5], f[6])
    return out


def parse_group(text: str) -> dict[str, tuple[str, ...]]:
    """``name:x:gid:member,member`` lines into group -> members."""
    out = {}
    for line in text.splitlines():
        f = line.split(":")
        if len(f) >= 4 and f[0] and not f[0].startswith("#"):
            out[f[0]] = tuple(m for m in f[3].split(",") if m)
    return out


def default_user(cloud_cfg: str | None, *dropins: str | None) -> DefaultUser:
    """``system_info.default_user`` of ``/etc/cloud/cloud.cfg`` (name, groups, shell, gecos),
    with the ``cloud.cfg.d/*.cfg`` drop-ins (in name order) over it, key by key, as cloud-init
    merges them (a RHEL image's ``default_user`` may come from a drop-in).

    ``groups`` may be a YAML list or a comma-separated string, as cloud-init accepts both.
    A missing, unreadable or differently shaped file adds nothing (no file: an empty default;
    the callers fall back to ``/bin/bash`` and ``wheel``).
    """
    user: dict[object, object] = {}
    for text in (cloud_cfg, *dropins):
        user.update(_default_user_dict(text))
    raw = user.get("groups") or ()
    groups = raw.split(",") if isinstance(raw, str) else raw if isinstance(raw, list) else ()
    return DefaultUser(
        name=_text(user.get("name")),
        groups=tuple(g.strip() for g in groups if isinstance(g, str) and g.strip()),
        shell=_text(user.get("shell")),
        gecos=_text(user.get("gecos")),
    )


def _default_user_dict(text: str | None) -> dict[object, object]:
    if not text:
        return {}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    info = data.get("system_info") if isinstance(data, dict) else None
    user = info.get("default_user") if isinstance(info, dict) else None
    return dict(user) if isinstance(user, dict) else {}


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def password_state(text: str | None, user: str) -> str:
    """What /etc/shadow says of ``user``'s password, never the hash: ``set``, ``locked``,
    ``none (no password login)``, ``EMPTY (login without password)``, ``no shadow entry``."""
    stored = shadow_hash(text or "", user)
    if stored is None:
        return "no shadow entry"
    if stored == "":
        return "EMPTY (login without password)"
    if stored.startswith("!") and len(stored) > 2:
        return "locked"
    if stored in ("*", "!", "!!", "!*"):
        return "none (no password login)"
    return "set"


def shadow_hash(text: str, user: str) -> str | None:
    """The stored hash of ``user`` in /etc/shadow text (None: no such line)."""
    for line in text.splitlines():
        f = line.split(":")
        if len(f) >= 2 and f[0] == user:
            return f[1]
    return None


def need_account(accounts: dict[str, Account], user: str, image: str) -> Account:
    if user not in accounts:
        raise InvalidInput(
            f"user {user!r} does not exist in the image's /etc/passwd ({image}): "
            f"the image's users are {', '.join(sorted(accounts)) or 'none'}; use one of them "
            "(the login user of the image, e.g. centos, rocky, debian, cloud-user)"
        )
    return accounts[user]


def parse_keys(what: str, text: str) -> tuple[str, ...]:
    """The one parser of an SSH keys parameter: public key lines separated by ``;`` or newlines,
    each validated (:func:`public_key`); an error names the parameter (``what``)."""
    lines = [k.strip() for k in re.split(r"[;\n]", text) if k.strip()]
    try:
        return tuple(public_key(k) for k in lines)
    except InvalidInput as exc:
        raise InvalidInput(f"{what}: {exc}") from None


def public_key(line: str) -> str:
    """Validate one OpenSSH public key line (``type base64 [comment]``); returns it stripped.

    The key blob must decode and name the same type. A private key is refused without
    echoing it.
    """
    text = (line or "").strip()
    if not text:
        raise InvalidInput("an SSH public key is empty: give the contents of a .pub file")
    if "PRIVATE KEY" in text:
        raise InvalidInput("that is a PRIVATE key (not shown): give the public key (.pub) instead")
    if "\n" in text or "\r" in text:
        raise InvalidInput("one SSH public key per entry: this one spans several lines")
    parts = text.split(None, 2)
    shown = text[:40] + ("..." if len(text) > 40 else "")
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        raise InvalidInput(f"not an OpenSSH public key: {shown!r}: expected '<type> <base64> [comment]' "
                           f"with a type of {', '.join(KEY_TYPES[:3])}, ...")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"the key data of {shown!r} is not valid base64: was it cut or wrapped?") from None
    n = int.from_bytes(blob[:4], "big") if len(blob) >= 4 else -1
    if blob[4:4 + n].decode("ascii", "replace") != parts[0]:
        raise InvalidInput(f"the key data of {shown!r} is not a {parts[0]} key: a damaged or mixed-up key")
    return text


def merge_keys(existing: str, keys: list[str]) -> str:
    """The authorized_keys text with ``keys`` added once each (compared by type and blob)."""
    lines = [ln for ln in existing.splitlines() if ln.strip()]
    have = {_key_id(ln) for ln in lines}
    for key in keys:
        if _key_id(key) not in have:
            lines.append(key)
            have.add(_key_id(key))
    return "".join(ln + "\n" for ln in lines)


def _key_id(line: str) -> tuple[str, ...]:
    parts = line.split()
    for i, p in enumerate(parts):
        if p in KEY_TYPES and i + 1 < len(parts):
            return (p, parts[i + 1])
    return (line.strip(),)


def sudoers_line(user: str, nopasswd: bool = True) -> str:
    """The guide's line (3.3.1): ``centos  ALL=(ALL)       NOPASSWD: ALL``."""
    user_name(user)
    return f"{user}  ALL=(ALL)       {'NOPASSWD: ' if nopasswd else ''}ALL\n"


def sudoers_file_name(name: str) -> str:
    """A sudoers.d name sudo reads: no dot, not ending in ``~`` (sudo skips those silently)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name or ""):
        raise InvalidInput(f"bad sudoers.d file name {name!r}: letters, digits, _ and - only "
                           "(sudo ignores files with a dot or ending in ~)")
    return name


def selinux_mode(config: str | None) -> str:
    """``SELINUX=`` of /etc/selinux/config: enforcing, permissive, disabled (no file: disabled)."""
    if config is None:
        return "disabled"
    for line in config.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key.strip() == "SELINUX":
            return value.strip().strip("\"'").lower()
    return "disabled"


def grub_serial(defaults: str, speed: int = 115200, unit: int = 0) -> str:
    """Edit /etc/default/grub for a serial console for GRUB and the kernel (idempotent).

    ``GRUB_TERMINAL="serial console"``, ``GRUB_SERIAL_COMMAND="serial --speed=115200
    --unit=0 --word=8 --parity=no --stop=1"``, and ``console=tty0 console=ttyS0,115200n8``
    in ``GRUB_CMDLINE_LINUX`` (earlier ``console=`` words are replaced; the last console
    named is the one ``/dev/console`` follows, so ttyS0 comes last).
    """
    if speed not in (9600, 19200, 38400, 57600, 115200):
        raise InvalidInput(f"bad serial speed {speed}: use 9600, 19200, 38400, 57600 or 115200")
    consoles = ("console=tty0", f"console=ttyS{unit},{speed}n8")
    values = {
        "GRUB_TERMINAL": "serial console",
        "GRUB_SERIAL_COMMAND": f"serial --speed={speed} --unit={unit} --word=8 --parity=no --stop=1",
    }
    lines = defaults.splitlines()
    cmdline = _get(lines, "GRUB_CMDLINE_LINUX") or ""
    words = [w for w in shlex.split(cmdline) if not w.startswith("console=")]
    values["GRUB_CMDLINE_LINUX"] = " ".join([*words, *consoles])
    lines = [ln for ln in lines if not re.match(r"^\s*GRUB_TERMINAL_(OUTPUT|INPUT)=", ln)]
    for key, value in values.items():
        lines = _set(lines, key, value)
    return "\n".join(lines) + "\n"


def _get(lines: list[str], key: str) -> str | None:
    for ln in lines:
        m = re.match(rf"^\s*{key}=(.*)$", ln)
        if m:
            try:
                return " ".join(shlex.split(m.group(1)))
            except ValueError:
                return m.group(1).strip("\"'")
    return None


def _set(lines: list[str], key: str, value: str) -> list[str]:
    new = f'{key}="{value}"'
    out, done = [], False
    for ln in lines:
        if re.match(rf"^\s*{key}=", ln):
            if not done:
                out.append(new)
                done = True
            continue
        out.append(ln)
    if not done:
        out.append(new)
    return out
