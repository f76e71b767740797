"""A guest root's content as facts, read once through ``chroot``, and the commands that write it.

The tweaks plan purely from :class:`ImageFacts`: what each one needs (:class:`ImageWanted`:
files to read, paths to stat, links, folders to list) is read by :func:`read_image` while the
image is mounted, before any plan is made. :func:`gather` asks the tweaks again until they
want nothing more (a user's home is known only once ``/etc/passwd`` was read).

Every path is resolved *inside* the image (``chroot MNT ...``), so a symlink in the image
(``/home/centos/.ssh -> /root/.ssh``) can never make kvmops read or write the host's files.
Files are written in four steps that show in the plan: ``dd of=P.kvmops-new`` (content on
stdin), ``chown``, ``chmod``, (a check), ``mv -f`` into place: a file is never seen
half-written or with loose modes, and a check that fails leaves the old file untouched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

from kvmops.cmd import Cmd, change
from kvmops.errors import InvalidInput
from kvmops.hostfacts import FactsIncomplete
from kvmops.images import content as c

TMP_SUFFIX = ".kvmops-new"
PLACEHOLDER = "/run/kvmops/mnt-XXXXXX"
"""Where the image will be mounted when a plan runs (the folder is made fresh then)."""
ROUNDS = 4
T = TypeVar("T")


@dataclass(frozen=True)
class FileStat:
    """``stat -c '%F|%a|%u|%g'``: kind (regular file, directory, symbolic link), mode, owner."""

    kind: str
    mode: int
    uid: int
    gid: int


def _set(paths: Iterable[str]) -> frozenset[str]:
    return frozenset(_abs(p) for p in paths)


@dataclass(frozen=True)
class ImageWanted:
    """What to read inside an image: file contents, stats (the final link not followed),
    existence (links followed), link targets and folder listings."""

    files: frozenset[str] = frozenset()
    stats: frozenset[str] = frozenset()
    exists: frozenset[str] = frozenset()
    links: frozenset[str] = frozenset()
    listings: frozenset[str] = frozenset()

    @classmethod
    def of(cls, *, files: Iterable[str] = (), stats: Iterable[str] = (), exists: Iterable[str] = (),
           links: Iterable[str] = (), listings: Iterable[str] = ()) -> ImageWanted:
        return cls(_set(files), _set(stats), _set(exists), _set(links), _set(listings))

    def __or__(self, other: ImageWanted) -> ImageWanted:
        return ImageWanted(self.files | other.files, self.stats | other.stats, self.exists | other.exists,
                           self.links | other.links, self.listings | other.listings)

    def unread(self, img: ImageFacts) -> ImageWanted:
        """What of this ``img`` has not read yet."""
        return ImageWanted(self.files - img.files.keys(), self.stats - img.stats.keys(),
                           self.exists - img.exist.keys() - img.files.keys(), self.links - img.links.keys(),
                           self.listings - img.listings.keys())

    @property
    def empty(self) -> bool:
        return not (self.files or self.stats or self.exists or self.links or self.listings)


@dataclass(frozen=True)
class ImageFacts:
    """What was read inside the image mounted at ``root``; plans are made from it alone.

    ``new_users``: accounts a tweak planned earlier in the same run will create (their ids
    are not known before ``useradd`` runs: owners are then given by name).
    """

    root: str
    files: Mapping[str, str | None] = field(default_factory=dict)
    stats: Mapping[str, FileStat | None] = field(default_factory=dict)
    exist: Mapping[str, bool] = field(default_factory=dict)
    links: Mapping[str, str | None] = field(default_factory=dict)
    listings: Mapping[str, tuple[str, ...] | None] = field(default_factory=dict)
    new_users: Mapping[str, c.Account] = field(default_factory=dict)

    # ------------------------------------------------------------- facts
    def read(self, path: str) -> str | None:
        """The content of a file inside the image; None when it does not exist."""
        return self._get(self.files, path, "files")

    def stat(self, path: str) -> FileStat | None:
        """Kind, mode and owner of ``path`` (not following a final symlink); None: missing."""
        return self._get(self.stats, path, "stats")

    def readlink(self, path: str) -> str | None:
        return self._get(self.links, path, "links")

    def exists(self, path: str) -> bool:
        """Whether ``path`` exists inside the image (links followed; a read file counts)."""
        if path in self.files:
            return self.files[path] is not None
        return bool(self._get(self.exist, path, "exists"))

    def listing(self, path: str) -> tuple[str, ...] | None:
        """The names in a folder of the image; None when it is no folder."""
        return self._get(self.listings, path, "listings")

    def first_existing(self, *paths: str) -> str | None:
        return next((p for p in paths if self.exists(p)), None)

    def peek(self, path: str) -> str | None:
        """A file's content if it was read and exists (for deciding what else to read)."""
        return self.files.get(path)

    def accounts(self) -> dict[str, c.Account]:
        """The image's users (``/etc/passwd``), plus those a tweak of this run creates."""
        text = self.read("/etc/passwd")
        if text is None:
            raise InvalidInput(f"the image at {self.root} has no /etc/passwd: not a Linux root")
        return {**c.parse_passwd(text), **self.new_users}

    def _get(self, table: Mapping[str, T], path: str, what: str) -> T:
        if path not in table:
            raise FactsIncomplete(f"{path} inside the image was not read ({what}): the tweak must want it")
        return table[path]

    # ------------------------------------------------------------- derived facts
    def merged(self, other: ImageFacts) -> ImageFacts:
        return replace(self, files={**self.files, **other.files}, stats={**self.stats, **other.stats},
                       exist={**self.exist, **other.exist}, links={**self.links, **other.links},
                       listings={**self.listings, **other.listings})

    def at(self, root: str) -> ImageFacts:
        """The same content, mounted at ``root`` (the commands of a plan name it)."""
        return replace(self, root=root)

    def with_user(self, account: c.Account) -> ImageFacts:
        return replace(self, new_users={**self.new_users, account.name: account})

    # ------------------------------------------------------------- builders (pure)
    def cmd(self, *argv: str, stdin: str | None = None, stdin_secret: bool = False,
            ok: tuple[int, ...] = (0,)) -> Cmd:
        """``chroot MNT argv...``: a change inside the image."""
        return change("chroot", self.root, *argv, stdin=stdin, stdin_secret=stdin_secret, ok=ok)

    def write_steps(self, path: str, content: str, mode: int, owner: str = "0:0",
                    check: tuple[str, ...] = ()) -> list[tuple[str, Cmd]]:
        """Steps that put ``content`` at ``path`` with ``mode`` and ``owner`` (``UID:GID``, or
        ``NAME:`` for a user created in the same run); ``check``: a command run on the new
        file first, e.g. ``visudo -c -f`` (the file name is appended)."""
        _abs(path)
        tmp = path + TMP_SUFFIX
        steps = [
            (f"write {path} (new content, {len(content)} bytes)",
             self.cmd("dd", f"of={tmp}", "status=none", stdin=content)),
            (f"owner of {path}: {owner}", self.cmd("chown", owner, tmp)),
            (f"mode of {path}: {mode:o}", self.cmd("chmod", f"{mode:o}", tmp)),
        ]
        if check:
            steps.append((f"check {path} before it takes effect", self.cmd(*check, tmp)))
        steps.append((f"move the new {path} into place", self.cmd("mv", "-f", tmp, path)))
        return steps

    def dir_steps(self, path: str, mode: int, owner: str = "0:0") -> list[tuple[str, Cmd]]:
        """``mkdir -p PATH``, ``chown OWNER PATH``, ``chmod MODE PATH`` inside the image.

        Only tools every Linux root has (coreutils or busybox): not ``install -d``, which a
        busybox image may lack.
        """
        _abs(path)
        return [
            (f"create {path}", self.cmd("mkdir", "-p", path)),
            (f"owner of {path}: {owner}", self.cmd("chown", owner, path)),
            (f"mode of {path}: {mode:o}", self.cmd("chmod", f"{mode:o}", path)),
        ]


class Wants(Protocol):
    def wants(self, img: ImageFacts) -> ImageWanted: ...


def _abs(path: str) -> str:
    if (not path.startswith("/") or "\0" in path or "\n" in path
            or any(p == ".." for p in path.split("/"))):
        raise InvalidInput(f"bad path inside the image {path!r}: absolute, without '..'")
    return path
