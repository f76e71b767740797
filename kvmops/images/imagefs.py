"""A mounted guest root seen through ``chroot``: reads facts, builds the commands that write.

Every path is resolved *inside* the image (``chroot MNT ...``), so a symlink in the image
(``/home/centos/.ssh -> /root/.ssh``) can never make kvmops write into the host. Files are
written in four steps that show in the plan: ``dd of=P.kvmops-new`` (content on stdin),
``chown``, ``chmod``, (a check), ``mv -f`` into place: a file is never seen half-written or
with loose modes, and a check that fails leaves the old file untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvmops.cmd import Cmd, change, read
from kvmops.errors import InvalidInput
from kvmops.runners.base import Runner

TMP_SUFFIX = ".kvmops-new"


@dataclass(frozen=True)
class FileStat:
    """``stat -c '%F|%a|%u|%g'``: kind (regular file, directory, symbolic link), mode, owner."""

    kind: str
    mode: int
    uid: int
    gid: int


@dataclass(frozen=True)
class ImageFs:
    """The guest root mounted at ``root``; commands go through ``runner``."""

    runner: Runner
    root: str

    # ------------------------------------------------------------- builders
    def cmd(self, *argv: str, mutates: bool = True, stdin: str | None = None,
            stdin_secret: bool = False, ok: tuple[int, ...] = (0,)) -> Cmd:
        """``chroot MNT argv...``."""
        if mutates:
            return change("chroot", self.root, *argv, stdin=stdin, stdin_secret=stdin_secret, ok=ok)
        return read("chroot", self.root, *argv, ok=ok)

    def write_steps(self, path: str, content: str, mode: int, uid: int = 0, gid: int = 0,
                    check: tuple[str, ...] = ()) -> list[tuple[str, Cmd]]:
        """Steps that put ``content`` at ``path`` with ``mode`` and owner (``check``: a command
        run on the new file first, e.g. ``visudo -c -f``; the file name is appended)."""
        _abs(path)
        tmp = path + TMP_SUFFIX
        steps = [
            (f"write {path} (new content, {len(content)} bytes)",
             self.cmd("dd", f"of={tmp}", "status=none", stdin=content)),
            (f"owner of {path}: {uid}:{gid}", self.cmd("chown", f"{uid}:{gid}", tmp)),
            (f"mode of {path}: {mode:o}", self.cmd("chmod", f"{mode:o}", tmp)),
        ]
        if check:
            steps.append((f"check {path} before it takes effect", self.cmd(*check, tmp)))
        steps.append((f"move the new {path} into place", self.cmd("mv", "-f", tmp, path)))
        return steps

    def dir_steps(self, path: str, mode: int, uid: int = 0, gid: int = 0) -> list[tuple[str, Cmd]]:
        """``mkdir -p PATH``, ``chown UID:GID PATH``, ``chmod MODE PATH`` inside the image.

        Only tools every Linux root has (coreutils or busybox): not ``install -d``, which a
        busybox image may lack.
        """
        _abs(path)
        return [
            (f"create {path}", self.cmd("mkdir", "-p", path)),
            (f"owner of {path}: {uid}:{gid}", self.cmd("chown", f"{uid}:{gid}", path)),
            (f"mode of {path}: {mode:o}", self.cmd("chmod", f"{mode:o}", path)),
        ]

    # ------------------------------------------------------------- facts
    def read(self, path: str) -> str | None:
        """The content of a file inside the image; None when it does not exist."""
        res = self.runner.run(self.cmd("cat", _abs(path), mutates=False, ok=(0, 1)))
        return res.stdout if res.returncode == 0 else None

    def stat(self, path: str) -> FileStat | None:
        """Kind, mode and owner of ``path`` (not following a final symlink); None: missing."""
        res = self.runner.run(self.cmd("stat", "-c", "%F|%a|%u|%g", _abs(path), mutates=False, ok=(0, 1)))
        if res.returncode != 0 or not res.stdout.strip():
            return None
        kind, mode, uid, gid = res.stdout.strip().split("|")
        return FileStat(kind, int(mode, 8), int(uid), int(gid))

    def readlink(self, path: str) -> str | None:
        res = self.runner.run(self.cmd("readlink", _abs(path), mutates=False, ok=(0, 1)))
        return res.stdout.strip() if res.returncode == 0 else None

    def exists(self, path: str) -> bool:
        """``chroot MNT test -e PATH`` (follows symlinks inside the image)."""
        return self.runner.run(self.cmd("test", "-e", _abs(path), mutates=False, ok=(0, 1))).returncode == 0

    def first_existing(self, *paths: str) -> str | None:
        for p in paths:
            if self.exists(p):
                return p
        return None


def _abs(path: str) -> str:
    if not path.startswith("/") or "\0" in path or any(p == ".." for p in path.split("/")):
        raise InvalidInput(f"bad path inside the image {path!r}: absolute, without '..'")
    return path
