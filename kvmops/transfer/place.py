"""The backup place: a directory on another host over SSH (named by a site, or
``user@host:/path`` with strict host keys) or on this machine; and what it holds.

A place holds ``<dir>/<guest>/<stamp>/`` folders, each with the compressed disks and, written
last, ``manifest.json``: a folder without it (or with one that does not read back) is an
incomplete backup, listed but never used for a restore and never counted as a kept one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from kvmops.errors import InvalidInput
from kvmops.site import Site, load_site, resolve_site
from kvmops.sshtarget import SSHTarget
from kvmops.transfer.manifest import MANIFEST, MAX_BYTES, Manifest, ManifestError, parse_manifest
from kvmops.transfer.signing import SUFFIX, Trust

_STAMP = re.compile(r"^\d{8}T\d{6}Z$")
_SAFE_DIR = re.compile(r"^/[A-Za-z0-9_.+@:/=,-]*$")
_SSH_URL = re.compile(r"ssh://(?P<dest>[^/\[\]:]+|[^/\[\]:]*\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d{1,5}))?(?P<dir>/.*)")
_SITE_FILE = re.compile(r"^(/[^:]*\.toml):(/.*)$")  # SITE:/dir with SITE a site file's absolute path
LOCAL = "local"
SIGNATURE = MANIFEST + SUFFIX  # manifest.json.sig: the signature of the manifest by the host that wrote it


@dataclass(frozen=True)
class Place:
    """Where backups go: ``label`` names its host in plans, ``directory`` is absolute."""

    label: str
    directory: str
    site: Site | None = None  # a place named by a site file (its SSH settings, or its recorded facts)
    ssh: SSHTarget | None = None  # a place given as user@host:/path

    @property
    def recorded(self) -> bool:
        return bool(self.site and self.site.recorded)

    def folder(self, guest: str, stamp: str) -> str:
        return f"{self.directory}/{guest}/{stamp}"

    def __str__(self) -> str:
        return f"{self.label}:{self.directory}"


def parse_place(text: str) -> Place:
    """``/srv/backups`` (this machine), ``root@nas:/srv/backups`` or ``ssh://root@nas:2222/srv/backups``
    (SSH, strict host keys, the user's known_hosts), ``SITE:/srv/backups`` (a shipped site name
    or a site file: its SSH settings)."""
    text = text.strip()
    if not text:
        raise InvalidInput("no backup place given: a directory (/srv/backups), user@host:/dir or SITE:/dir")
    site_file = _SITE_FILE.match(text)
    if site_file:  # /etc/kvmops/nas.toml:/srv/backups: a site file by its absolute path, not a local folder
        site = load_site(resolve_site(site_file.group(1)))
        return Place(site.name, _directory(site_file.group(2)), site=site)
    if text.startswith("/"):
        return Place(LOCAL, _directory(text))
    if text.startswith("ssh://"):
        return _ssh_url(text)
    where, sep, directory = text.partition(":/")
    if not sep or not where:
        raise InvalidInput(f"backup place {text!r}: give /dir, user@host:/dir or SITE:/dir")
    if "@" in where:
        return Place(where, _directory("/" + directory), ssh=SSHTarget(where))
    site = load_site(resolve_site(where))
    return Place(site.name, _directory("/" + directory), site=site)


def _ssh_url(text: str) -> Place:
    """``ssh://user@host[:port]/dir``; an IPv6 host in brackets: ``ssh://u@[::1]:22/dir``."""
    m = _SSH_URL.fullmatch(text)
    port = int(m.group("port")) if m and m.group("port") else None
    if m is None or (port is not None and not 0 < port < 65536):
        raise InvalidInput(f"backup place {text!r}: give ssh://user@host[:port]/dir (port 1-65535; an IPv6 "
                           "address in brackets: ssh://root@[2001:db8::1]:22/dir)")
    return Place(m.group("dest"), _directory(m.group("dir")), ssh=SSHTarget(m.group("dest"), port))


def _directory(path: str) -> str:
    norm = os.path.normpath(path)
    if norm != path.rstrip("/") or ".." in path.split("/") or not _SAFE_DIR.match(norm) or norm == "/":
        raise InvalidInput(f"backup directory {path!r}: give a plain absolute path below / (letters, digits, "
                           "_ . + @ : = , - and /)")
    return norm


# -- what the place holds ----------------------------------------------------------------------


@dataclass(frozen=True)
class Backup:
    """One ``<guest>/<stamp>`` folder: complete when its manifest reads back. ``text`` is the
    manifest as read and ``signature`` its ``manifest.json.sig`` ("": none); ``trust`` says
    whether that signature verifies (None: not checked, :func:`kvmops.facts.place.verify_backups`)."""

    guest: str
    stamp: str
    folder: str
    files: tuple[tuple[str, int], ...] = ()  # (name, size) of the files in it
    manifest: Manifest | None = None
    problem: str = ""  # why it is incomplete
    text: str = ""
    signature: str = ""
    trust: Trust | None = None

    @property
    def complete(self) -> bool:
        return self.manifest is not None


@dataclass(frozen=True)
class PlaceFacts:
    """The place at one moment: its backups and the compressors it has."""

    place: Place
    exists: bool
    backups: tuple[Backup, ...] = ()
    tools: frozenset[str] = field(default_factory=frozenset)

    def of(self, guest: str) -> tuple[Backup, ...]:
        """A guest's backups, newest first."""
        return tuple(sorted((b for b in self.backups if b.guest == guest), key=lambda b: b.stamp, reverse=True))

    def complete(self, guest: str) -> tuple[Backup, ...]:
        return tuple(b for b in self.of(guest) if b.complete)


Texts = dict[str, "str | None"]  # a file's path below the place -> its text as read (None: not there)


def backup_folders(entries: list[tuple[str, int, str]], guest: str | None = None) -> list[str]:
    """The ``<guest>/<stamp>`` folders of a place's listing (of one guest when given)."""
    return sorted(p for kind, _, p in entries if kind == "d" and p.count("/") == 1 and _STAMP.match(p.split("/")[1])
                  and (guest is None or p.split("/")[0] == guest))


def to_read(entries: list[tuple[str, int, str]], guest: str | None = None) -> list[str]:
    """The manifests and their signatures to read (each on its own): the files of that name in
    a backup's folder, not larger than a manifest can be (a larger one is refused unread)."""
    folders = set(backup_folders(entries, guest))
    return [p for kind, size, p in entries if kind == "f" and p.rsplit("/", 1)[0] in folders
            and p.rsplit("/", 1)[-1] in (MANIFEST, SIGNATURE) and size <= MAX_BYTES]


def _backups(place: Place, entries: list[tuple[str, int, str]], texts: Texts,
             guest: str | None = None) -> tuple[Backup, ...]:
    out = []
    for rel in backup_folders(entries, guest):
        g, stamp = rel.split("/")
        files = tuple(sorted((p.rsplit("/", 1)[1], size) for kind, size, p in entries
                             if kind == "f" and p.startswith(rel + "/") and p.count("/") == 2))
        out.append(_backup(place, g, stamp, files, texts.get(f"{rel}/{MANIFEST}"),
                           texts.get(f"{rel}/{SIGNATURE}") or ""))
    return tuple(out)


def _backup(place: Place, guest: str, stamp: str, files: tuple[tuple[str, int], ...], text: str | None,
            signature: str = "") -> Backup:
    folder = place.folder(guest, stamp)
    size = dict(files).get(MANIFEST)
    if text is None and size is not None and size > MAX_BYTES:
        return Backup(guest, stamp, folder, files, None, f"its manifest is larger than {MAX_BYTES} bytes: refused "
                      "unread (not a manifest kvmops wrote)")
    if text is None:
        return Backup(guest, stamp, folder, files, None, "no manifest (the backup did not finish)")
    try:
        m = parse_manifest(text, f"{folder}/{MANIFEST}")
    except ManifestError as exc:
        return Backup(guest, stamp, folder, files, None, f"its manifest does not read back: {exc}")
    have = dict(files)
    missing = [d.file for d in m.disks if d.file not in have]
    if m.guest != guest or m.stamp != stamp or missing:
        why = f"its data file(s) {', '.join(missing)} are missing" if missing else "its manifest names another backup"
        return Backup(guest, stamp, folder, files, None, why)
    return Backup(guest, stamp, folder, files, m, text=text, signature=signature)


def to_prune(facts: PlaceFacts, guest: str, keep: int) -> tuple[Backup, ...]:
    """The complete backups beyond the ``keep`` newest (0: keep all); the newest complete one
    is never among them, nor is an incomplete one (those are only reported)."""
    if keep < 0:
        raise InvalidInput(f"keep={keep}: give how many complete backups to keep (0 = all)")
    if keep == 0:
        return ()
    return facts.complete(guest)[max(keep, 1):]
