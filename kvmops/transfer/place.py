"""The backup place: a directory on another host over SSH (named by a site, or
``user@host:/path`` with strict host keys) or on this machine; and what it holds.

A place holds ``<dir>/<guest>/<stamp>/`` folders, each with the compressed disks and, written
last, ``manifest.json``: a folder without it (or with one that does not read back) is an
incomplete backup, listed but never used for a restore and never counted as a kept one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace

from kvmops.cmd import read
from kvmops.errors import InvalidInput, KvmopsError
from kvmops.host import Host, connect
from kvmops.runners import LocalRunner, PlanRunner, SSHRunner
from kvmops.runners.base import Runner
from kvmops.runners.ssh import SSHTarget
from kvmops.site import Site, load_site
from kvmops.transfer.commands import GZIP, TOOL_PATHS
from kvmops.transfer.manifest import MANIFEST, Manifest, ManifestError, parse_manifest

_STAMP = re.compile(r"^\d{8}T\d{6}Z$")
_SAFE_DIR = re.compile(r"^/[A-Za-z0-9_.+@:/=,-]*$")
_SITE_FILE = re.compile(r"^(/[^:]*\.toml):(/.*)$")  # SITE:/dir with SITE a site file's absolute path
LOCAL = "local"
MAX_MANIFEST = 4 << 20  # bytes of a manifest read at most (a guest's XML and a few lines per disk)


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
    from kvmops.runbook.sites import resolve_site

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
    rest = text.removeprefix("ssh://")
    host, slash, directory = rest.partition("/")
    dest, _, port = host.partition(":") if host.count(":") == 1 else (host, "", "")
    if not slash or not dest or (port and not port.isdigit()):
        raise InvalidInput(f"backup place {text!r}: give ssh://user@host[:port]/dir")
    return Place(dest, _directory("/" + directory), ssh=SSHTarget(dest, int(port) if port else None))


def _directory(path: str) -> str:
    norm = os.path.normpath(path)
    if norm != path.rstrip("/") or ".." in path.split("/") or not _SAFE_DIR.match(norm) or norm == "/":
        raise InvalidInput(f"backup directory {path!r}: give a plain absolute path below / (letters, digits, "
                           "_ . + @ : = , - and /)")
    return norm


def place_host(place: Place, base: Site, *, apply: bool) -> Host:
    """The place as a host the executor can run commands on (only its runner is used): the
    site's own host, or this machine, or ``user@host`` over SSH (strict host keys)."""
    if place.site is not None:
        return connect(place.site, apply=apply)
    runner: Runner = LocalRunner(place.label) if place.ssh is None else SSHRunner(place.ssh)
    site = replace(base, name=place.label, ssh=place.ssh.destination if place.ssh else "", recorded="")
    return Host(site, runner if apply else PlanRunner(runner), "")


# -- what the place holds ----------------------------------------------------------------------


@dataclass(frozen=True)
class Backup:
    """One ``<guest>/<stamp>`` folder: complete when its manifest reads back."""

    guest: str
    stamp: str
    folder: str
    files: tuple[tuple[str, int], ...] = ()  # (name, size) of the files in it
    manifest: Manifest | None = None
    problem: str = ""  # why it is incomplete

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


def read_place(place: Place, host: Host) -> PlaceFacts:
    """What the place holds: its folder tree and manifests (read-only, also in plan mode)."""
    if place.recorded:
        return _recorded(place)
    runner = host.runner
    have = runner.run(read("ls", "-1d", "--", *TOOL_PATHS.values(), ok=(0, 1, 2))).stdout.split()
    tools = frozenset(t for t, path in TOOL_PATHS.items() if path in have)
    res = runner.run(read("find", place.directory, "-mindepth", "1", "-maxdepth", "3", "-printf", r"%y\t%s\t%P\n",
                          ok=(0, 1)))
    if res.returncode != 0:
        if "No such file" not in res.stderr:
            raise KvmopsError(f"cannot list the backup place {place}: {res.stderr.strip()}")
        return PlaceFacts(place, False, (), tools)
    entries = [ln.split("\t", 2) for ln in res.stdout.splitlines() if ln.count("\t") >= 2]
    manifests = [p for kind, _, p in entries if kind == "f" and p.endswith("/" + MANIFEST) and p.count("/") == 2]
    texts = _heads(runner, place.directory, manifests)
    return PlaceFacts(place, True, _backups(place, [(k, int(s), p) for k, s, p in entries], texts), tools)


def _heads(runner: Runner, top: str, rels: list[str]) -> dict[str, str | None]:
    """The manifests' texts in one command: ``head -v`` marks each file with ``==> PATH <==``
    (a line a manifest's JSON cannot hold: its strings escape line breaks)."""
    if not rels:
        return {}
    paths = {f"{top}/{r}": r for r in rels}
    out = runner.run(read("head", "-v", "-c", str(MAX_MANIFEST), "--", *paths, ok=(0, 1))).stdout
    texts: dict[str, list[str]] = {}
    current = None
    for line in out.splitlines(keepends=True):
        marker = line.rstrip("\n")
        if marker.startswith("==> ") and marker.endswith(" <==") and marker[4:-4] in paths:
            current = paths[marker[4:-4]]
            texts[current] = []
        elif current is not None:
            texts[current].append(line)
    return {r: "".join(texts[r]) if r in texts else None for r in rels}


def _recorded(place: Place) -> PlaceFacts:
    """A plan-only place (a recorded site): its recorded files and paths under the directory."""
    from kvmops.recorded import load_recorded

    assert place.site is not None
    rec = load_recorded(place.site.recorded)
    top = place.directory + "/"
    known = {p: rec.files.get(p) for p in (*rec.files, *rec.paths) if p.startswith(top)}
    entries = [("f", len(t or ""), p.removeprefix(top)) for p, t in known.items()]
    dirs = {"/".join(e[2].split("/")[:n]) for e in entries for n in (1, 2) if e[2].count("/") >= n}
    entries += [("d", 0, d) for d in dirs]
    texts = {p.removeprefix(top): t for p, t in known.items() if p.endswith("/" + MANIFEST)}
    tools = frozenset(t for t, path in TOOL_PATHS.items() if path in rec.paths) | {GZIP}
    exists = bool(known) or place.directory in rec.paths
    return PlaceFacts(place, exists, _backups(place, entries, texts), tools)


def _backups(place: Place, entries: list[tuple[str, int, str]], texts: dict[str, str | None]) -> tuple[Backup, ...]:
    folders = sorted(p for kind, _, p in entries if kind == "d" and p.count("/") == 1)
    out = []
    for rel in folders:
        guest, stamp = rel.split("/")
        if not _STAMP.match(stamp):
            continue
        files = tuple(sorted((p.rsplit("/", 1)[1], size) for kind, size, p in entries
                             if kind == "f" and p.startswith(rel + "/") and p.count("/") == 2))
        out.append(_backup(place, guest, stamp, files, texts.get(f"{rel}/{MANIFEST}")))
    return tuple(out)


def _backup(place: Place, guest: str, stamp: str, files: tuple[tuple[str, int], ...], text: str | None) -> Backup:
    folder = place.folder(guest, stamp)
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
    return Backup(guest, stamp, folder, files, m)


def to_prune(facts: PlaceFacts, guest: str, keep: int) -> tuple[Backup, ...]:
    """The complete backups beyond the ``keep`` newest (0: keep all); the newest complete one
    is never among them, nor is an incomplete one (those are only reported)."""
    if keep < 0:
        raise InvalidInput(f"keep={keep}: give how many complete backups to keep (0 = all)")
    if keep == 0:
        return ()
    return facts.complete(guest)[max(keep, 1):]
