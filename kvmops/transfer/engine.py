"""The backup engine: a BorgBackup repository as the place's store (pure: argv and parsers).

Why BorgBackup (measured against restic and ``dd | zstd``: ``bench/backup_engines.py``, the
manual's backups page): it deduplicates any byte stream in content-defined chunks, compresses,
encrypts, checks and prunes, and ``borg serve --append-only`` (an SSH forced command on the
place) gives a host a key that can add backups but not delete them. Debian packages it.

Borg runs **on the host** kvmops works on (the source of a backup, the target of a restore),
and reaches the repository itself (a folder there, or ``ssh://user@place/path``): only new
chunks cross the network. kvmops keeps what is its own:

- one archive per backup, ``<guest>-<stamp>``, made by ONE ``borg create`` (an archive exists
  only once complete): the disks read from LVM snapshots of the stopped guest
  (``--read-special``: the device's data, item ``dev/<vg>/<snapshot>``), and on its stdin the
  sealed manifest (item :data:`MANIFEST_ITEM`: the manifest of
  :mod:`kvmops.transfer.manifest` and its signature, :mod:`kvmops.transfer.signing`, in one
  bounded JSON object, :func:`seal`);
- a verification's verdict: one more archive ``<guest>-<stamp>.verified-<stamp>`` holding
  ``verdict.json`` (an append-only repository takes it);
- retention: ``borg prune`` over one guest's archives, then ``borg compact``.

The passphrase is in a file on the host (``[backup] passphrase_file``, root only) that borg
reads itself (``BORG_PASSCOMMAND=cat -- FILE``): it never passes through kvmops, an argv, a
plan, a log or a notebook. The commands' environment names only that file and the SSH key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from kvmops import names
from kvmops.bounded import load_json
from kvmops.cmd import Cmd, Kind
from kvmops.errors import InvalidInput, KvmopsError
from kvmops.plan import Plan
from kvmops.site import Site
from kvmops.transfer.manifest import ENGINE_FORMAT, ManifestError, parse_manifest
from kvmops.transfer.place import Backup, Place

ENGINE = "borg"
BORG = "/usr/bin/borg"
MANIFEST_ITEM = "kvmops/manifest.json"  # the sealed manifest, an archive's stdin item
VERDICT_ITEM = "verdict.json"
VERIFIED = ".verified-"
COMPRESSION = "zstd,3"
ENCRYPTION = "repokey-blake2"
STAMP = r"\d{8}T\d{6}Z"
_ARCHIVE = re.compile(rf"(?P<guest>[A-Za-z0-9][A-Za-z0-9_.-]*?)-(?P<stamp>{STAMP})"
                      rf"(?:{re.escape(VERIFIED)}(?P<verified>{STAMP}))?")
_LOCAL = re.compile(r"/[A-Za-z0-9_.+@:=,/-]*")
_SSH = re.compile(r"ssh://(?P<dest>[A-Za-z0-9_.@-]+|[A-Za-z0-9_.-]*@?\[[0-9A-Fa-f:.]+\])(?::(?P<port>\d{1,5}))?"
                  r"(?P<path>/[A-Za-z0-9_.+@:=,/~-]*)")
_PATH = re.compile(r"/[A-Za-z0-9_.+@=,/-]+")
MAX_LIST = 16 << 20  # bytes of a repository's archive list read at most (~60,000 archives)
MAX_ITEMS = 1 << 20  # bytes of one archive's item list (a backup holds a few items)
MAX_ARCHIVES = 100_000


@dataclass(frozen=True)
class Repo:
    """A repository as borg on a host reaches it: ``url`` (a folder there, or
    ``ssh://user@place[:port]/path``), the file holding its passphrase and the SSH key for
    the place (both paths on that host)."""

    url: str
    passphrase_file: str
    ssh_key: str = ""
    base_dir: str = ""  # borg's own folder (cache, keys' security records); "": borg's default, ~/.config/borg

    @property
    def remote(self) -> bool:
        return self.url.startswith("ssh://")

    def archive(self, name: str) -> str:
        return f"{self.url}::{archive_name_ok(name)}"

    def __str__(self) -> str:
        return self.url


def parse_repo(url: str, passphrase_file: str, ssh_key: str = "", base_dir: str = "") -> Repo:
    """A repository from the site's ``[backup]`` keys (or a runbook's ``repository``)."""
    url = url.strip()
    if not url:
        raise InvalidInput("no backup repository named: set [backup] repository in the site file (a folder on "
                           "the host, or ssh://user@place/path), or the runbook's repository")
    m = _SSH.fullmatch(url)
    if m is not None:
        port = int(m.group("port")) if m.group("port") else None
        if port is not None and not 0 < port < 65536:
            raise InvalidInput(f"backup repository {url!r}: port {port} is not 1-65535")
    elif not _LOCAL.fullmatch(url) or ".." in url.split("/") or url == "/":
        raise InvalidInput(f"backup repository {url!r}: give a folder (/srv/kvmops-borg) or "
                           "ssh://user@place[:port]/path (letters, digits and _ . + @ : = , - /)")
    for what, path in (("passphrase file", passphrase_file), ("SSH key", ssh_key), ("borg folder", base_dir)):
        if path and (not _PATH.fullmatch(path) or ".." in path.split("/")):
            raise InvalidInput(f"backup {what} {path!r}: give an absolute path on the host")
    if not passphrase_file:
        raise InvalidInput("no passphrase file for the backup repository: set [backup] passphrase_file")
    return Repo(url, passphrase_file, ssh_key, base_dir)


def repo_of(site: Site) -> Repo:
    """The repository a site's ``[backup]`` table names (refused, saying which key, when it names none)."""
    return parse_repo(site.backup_repository, site.backup_passphrase_file, site.backup_ssh_key)


def archive_name(guest: str, stamp: str) -> str:
    """A backup's archive: ``web1-20261201T020000Z``."""
    return archive_name_ok(f"{names.guest_name(guest)}-{stamp}")


def verdict_name(guest: str, stamp: str, checked: str) -> str:
    """A verification's archive: ``web1-20261201T020000Z.verified-20261202T031500Z``."""
    return archive_name_ok(f"{archive_name(guest, stamp)}{VERIFIED}{checked}")


def archive_name_ok(name: str) -> str:
    if not _ARCHIVE.fullmatch(name):
        raise InvalidInput(f"archive name {name!r} is not one kvmops makes (GUEST-YYYYMMDDTHHMMSSZ)")
    return name


@dataclass(frozen=True)
class Archive:
    """An archive of the repository, as its name says: whose, which backup, and for a
    verification's archive the time it was checked."""

    name: str
    guest: str
    stamp: str
    verified: str = ""  # the verification's time stamp ("": a backup)


def parse_archive(name: str) -> Archive | None:
    """An archive kvmops made, else None (a checkpoint, someone else's archive)."""
    m = _ARCHIVE.fullmatch(name)
    if m is None:
        return None
    try:
        names.guest_name(m.group("guest"))
    except InvalidInput:
        return None
    return Archive(name, m.group("guest"), m.group("stamp"), m.group("verified") or "")


# -- the commands --------------------------------------------------------------------------------


def env(repo: Repo) -> tuple[tuple[str, str], ...]:
    """What borg is told besides its argv: where the passphrase is (it reads the file itself),
    how to reach the place (strict host keys, batch mode), and never to accept a moved or
    unencrypted repository silently."""
    rsh = "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes"
    if repo.ssh_key:
        rsh += f" -i {repo.ssh_key} -o IdentitiesOnly=yes"
    base = (("BORG_BASE_DIR", repo.base_dir),) if repo.base_dir else ()
    return (("BORG_PASSCOMMAND", f"cat -- {repo.passphrase_file}"), ("BORG_RSH", rsh),
            ("BORG_RELOCATED_REPO_ACCESS_IS_OK", "no"), ("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "no"),
            ("BORG_DISPLAY_PASSPHRASE", "no"), *base,
            ("LVM_SUPPRESS_FD_WARNINGS", "1"))


def _cmd(repo: Repo, kind: Kind, *argv: str, stdin: str | None = None, ok: tuple[int, ...] = (0,),
         timeout: float | None = None) -> Cmd:
    return Cmd(("borg", *argv), kind, stdin=stdin, ok=ok, timeout=timeout, env=env(repo))


def init(repo: Repo) -> Cmd:
    """``borg init --encryption=repokey-blake2 --make-parent-dirs URL``: a new repository."""
    return _cmd(repo, Kind.CHANGE, "init", f"--encryption={ENCRYPTION}", "--make-parent-dirs", repo.url)


def create(repo: Repo, archive: str, when: datetime, paths: Iterable[str], sealed: str) -> Cmd:
    """``borg create --read-special ... --stdin-name kvmops/manifest.json URL::ARCHIVE - PATH...``:
    one backup, one archive (block devices read as data, the sealed manifest from stdin; the
    archive's time is the backup's)."""
    items = tuple(paths)
    if not items or not all(_PATH.fullmatch(p) and ".." not in p.split("/") for p in items):
        raise InvalidInput(f"bad paths to back up: {items!r}")
    return _cmd(repo, Kind.CHANGE, "create", "--read-special", "--compression", COMPRESSION, "--timestamp",
                when.strftime("%Y-%m-%dT%H:%M:%S"), "--stdin-name", MANIFEST_ITEM, repo.archive(archive), "-",
                *items, stdin=sealed)


def create_text(repo: Repo, archive: str, item: str, text: str) -> Cmd:
    """``borg create --stdin-name ITEM URL::ARCHIVE -`` with ``text`` on stdin (a verdict)."""
    return _cmd(repo, Kind.CHANGE, "create", "--stdin-name", item, repo.archive(archive), "-", stdin=text)


def list_archives(repo: Repo) -> Cmd:
    """``borg list --json URL``: the archives (names and times; no data is read)."""
    return _cmd(repo, Kind.READ, "list", "--json", repo.url, ok=(0, 2), timeout=600)


def list_items(repo: Repo, archive: str) -> Cmd:
    """``borg list --json-lines URL::ARCHIVE``: each item's path, type and size."""
    return _cmd(repo, Kind.READ, "list", "--json-lines", repo.archive(archive), timeout=600)


def extract(repo: Repo, archive: str, item: str) -> Cmd:
    """``borg extract --stdout URL::ARCHIVE ITEM``: one item's data on stdout."""
    return _cmd(repo, Kind.READ, "extract", "--stdout", repo.archive(archive), _item(item))


@dataclass(frozen=True)
class Keep:
    """Retention as borg prune says it: the newest ``last``, and one per day/week/month."""

    last: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0

    @property
    def any(self) -> bool:
        return any((self.last, self.daily, self.weekly, self.monthly))

    def args(self) -> list[str]:
        out = []
        for key in ("last", "daily", "weekly", "monthly"):
            n = getattr(self, key)
            if n:
                out += [f"--keep-{key}", str(n)]
        return out

    def __str__(self) -> str:
        return ", ".join(f"{k}={getattr(self, k)}" for k in ("last", "daily", "weekly", "monthly")
                         if getattr(self, k)) or "keep all"


def parse_keep(text: str | int) -> Keep:
    """``"last=3,daily=7,weekly=4"`` (or a number: the newest N); ``""`` or 0: keep all."""
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str):
        raise InvalidInput(f"retention {text!r}: give last=N,daily=N,weekly=N,monthly=N")
    text = text.strip()
    if text.isdigit():
        text = f"last={text}"
    values: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, n = part.partition("=")
        if key not in ("last", "daily", "weekly", "monthly") or not n.isdigit() or key in values or int(n) > 100000:
            raise InvalidInput(f"retention {text!r}: give last=N,daily=N,weekly=N,monthly=N (each once)")
        values[key] = int(n)
    return Keep(**values)


def backups_glob(guest: str) -> str:
    """The archives of one guest's backups, and only those (not its verdicts, not another
    guest's whose name starts alike)."""
    return f"{names.guest_name(guest)}-" + "[0-9]" * 8 + "T" + "[0-9]" * 6 + "Z"


def verdicts_glob(guest: str) -> str:
    return backups_glob(guest) + VERIFIED + "*"


def prune(repo: Repo, guest: str, keep: Keep, *, verdicts: bool = False) -> Cmd:
    """``borg prune --glob-archives GLOB --keep-... URL``: one guest's older backups (or
    verifications) go. The repository's space comes back with :func:`compact`."""
    if not keep.any:
        raise InvalidInput("a prune that keeps everything is no prune")
    glob = verdicts_glob(guest) if verdicts else backups_glob(guest)
    return _cmd(repo, Kind.CHANGE, "prune", "--list", "--glob-archives", glob, *keep.args(), repo.url)


def compact(repo: Repo) -> Cmd:
    """``borg compact URL``: frees the space of pruned archives (an append-only repository
    keeps it until its owner compacts it without that mode)."""
    return _cmd(repo, Kind.CHANGE, "compact", repo.url)


def _item(item: str) -> str:
    if not item or item.startswith("/") or ".." in item.split("/") or any(c in item for c in "\0\n*?["):
        raise InvalidInput(f"bad archive item {item!r}")
    return item


def device_item(device: str) -> str:
    """The item a device path becomes in an archive (borg drops the leading ``/``)."""
    return _item(device.lstrip("/"))


MAX_SEALED = 8 << 20  # bytes of a sealed manifest at most (a manifest and its signature)


def seal(manifest: str, signature: str) -> str:
    """A manifest and its signature as one archive item (a JSON object of two strings)."""
    return json.dumps({"manifest": manifest, "signature": signature}, sort_keys=True) + "\n"


def unseal(text: str, where: str) -> tuple[str, str]:
    """The manifest text and its signature ("": unsigned) of a sealed item; RepoError when it is
    not one (bounded: size and depth)."""
    data = load_json(text, where, max_bytes=MAX_SEALED, max_depth=2)
    if not isinstance(data, dict) or set(data) != {"manifest", "signature"} or not all(
            isinstance(v, str) for v in data.values()):
        raise RepoError(f"{where}: not a sealed kvmops manifest (an object of manifest and signature)")
    return data["manifest"], data["signature"]


# -- plans ---------------------------------------------------------------------------------------


def init_plan(repo: Repo) -> Plan:
    return Plan(f"make the backup repository {repo}").add(
        f"a new repository, encrypted ({ENCRYPTION}); its key is in the repository, its passphrase in "
        f"{repo.passphrase_file}", init(repo))


def backup_plan(repo: Repo, guest: str, stamp: str, when: datetime, devices: Iterable[str], sealed: str) -> Plan:
    """One backup of ``guest``: its disks (devices or files, read as data) and the sealed
    manifest in one new archive (a repository in append-only mode takes it)."""
    name = archive_name(guest, stamp)
    devs = tuple(devices)
    return Plan(f"back up {guest} into {repo}::{name}").add(
        f"one archive {name}: {len(devs)} disk(s) and the signed manifest; only chunks the repository "
        "lacks are stored", create(repo, name, when, devs, sealed))


def verdict_plan(repo: Repo, guest: str, stamp: str, checked: str, verdict: str) -> Plan:
    name = verdict_name(guest, stamp, checked)
    return Plan(f"record the verification of {archive_name(guest, stamp)}").add(
        f"the verdict beside the backup, as archive {name}", create_text(repo, name, VERDICT_ITEM, verdict))


def prune_plan(repo: Repo, guest: str, keep: Keep) -> Plan:
    """Retention: the engine's prune over ``guest``'s backups (confirmed by the guest's name),
    then its compact."""
    return (Plan(f"prune {guest}'s backups in {repo} (keep {keep})")
            .add(f"borg prune: {guest}'s older backups go (keep {keep})", prune(repo, guest, keep), target=guest)
            .add("borg compact: the space of pruned archives comes back", compact(repo)))


# -- parsers ---------------------------------------------------------------------------------------


class RepoError(KvmopsError):
    """The repository's answer is not what borg prints (or borg refused)."""


def parse_list(text: str, where: str) -> tuple[Archive, ...]:
    """``borg list --json``: the archives kvmops made, oldest first (others are left out)."""
    data = load_json(text, where, max_bytes=MAX_LIST, max_depth=6)
    archives = data.get("archives") if isinstance(data, dict) else None
    if not isinstance(archives, list) or len(archives) > MAX_ARCHIVES:
        raise RepoError(f"{where}: not a borg archive list")
    out = []
    for a in archives:
        name = a.get("name") if isinstance(a, dict) else None
        found = parse_archive(name) if isinstance(name, str) else None
        if found is not None:
            out.append(found)
    return tuple(out)


@dataclass(frozen=True)
class Item:
    path: str
    kind: str  # borg's type: "-" a file (a device read as data is one), "d" a folder
    size: int


def parse_items(text: str, where: str) -> tuple[Item, ...]:
    """``borg list --json-lines URL::ARCHIVE``: its items."""
    if len(text) > MAX_ITEMS:
        raise RepoError(f"{where}: more than {MAX_ITEMS} bytes of items: not an archive kvmops made")
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except ValueError:
            raise RepoError(f"{where}: not borg's item list ({line[:80]!r})") from None
        if not isinstance(d, dict) or not isinstance(d.get("path"), str) or not isinstance(d.get("size"), int):
            raise RepoError(f"{where}: an item without path or size")
        out.append(Item(d["path"], str(d.get("type", "")), d["size"]))
    return tuple(out)


MAX_BACKUPS_READ = 1000  # a guest's backups whose manifests one read extracts at most (newest first)


def place_of(repo: Repo, host: str) -> Place:
    """The repository as the restore's place (``label``: the host borg runs on)."""
    return Place(host, repo.url)


def backups_of(archives: Iterable[Archive], guest: str) -> tuple[Archive, ...]:
    """``guest``'s backup archives (not its verdicts), newest first, at most :data:`MAX_BACKUPS_READ`."""
    mine = sorted((a for a in archives if a.guest == guest and not a.verified), key=lambda a: a.stamp, reverse=True)
    return tuple(mine[:MAX_BACKUPS_READ])


def backup_of(archive: Archive, sealed: str | None, items: Iterable[str] = ()) -> Backup:
    """One archive as a backup: complete when its sealed manifest reads back, is of format 2,
    names this very archive and only items the archive holds."""
    name = archive.name

    def incomplete(why: str) -> Backup:
        return Backup(archive.guest, archive.stamp, name, (), None, why)

    if sealed is None:
        return incomplete(f"no {MANIFEST_ITEM} in the archive (not a backup kvmops finished)")
    try:
        text, signature = unseal(sealed, f"{name}/{MANIFEST_ITEM}")
        m = parse_manifest(text, f"{name}/{MANIFEST_ITEM}")
    except (KvmopsError, ManifestError) as exc:
        return incomplete(f"its manifest does not read back: {exc}")
    have = set(items)
    missing = [d.file for d in m.disks if d.file not in have]
    if m.format != ENGINE_FORMAT or m.archive != name or (m.guest, m.stamp) != (archive.guest, archive.stamp):
        return incomplete("its manifest names another backup")
    if missing:
        return incomplete(f"its data item(s) {', '.join(missing)} are missing from the archive")
    return Backup(archive.guest, archive.stamp, name, (), m, text=text, signature=signature)
