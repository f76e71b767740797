"""TODO docstring."""

from __future__ import annotations

from collections.abc import Iterable

from kvmops.cmd import read
from kvmops.images.imagefs import ROUNDS, FileStat, ImageFacts, ImageWanted, Wants
from kvmops.runners.base import Runner


# ----------------------------------------------------------------- reading (the edge)
def read_image(runner: Runner, root: str, wanted: ImageWanted) -> ImageFacts:
    """Read what ``wanted`` names inside the image mounted at ``root`` (only reads)."""
    files = {p: _cat(runner, root, p) for p in sorted(wanted.files)}
    stats = _stats(runner, root, sorted(wanted.stats))
    exist = _exist(runner, root, sorted(wanted.exists))
    links = {p: _readlink(runner, root, p) for p in sorted(wanted.links)}
    listings = {p: _list(runner, root, p) for p in sorted(wanted.listings)}
    return ImageFacts(root, files, stats, exist, links, listings)


def gather(runner: Runner, root: str, asking: Iterable[Wants]) -> ImageFacts:
    """Read what every tweak wants, again until nothing more is wanted (a few rounds)."""
    askers = list(asking)
    img = ImageFacts(root)
    for _ in range(ROUNDS):
        want = ImageWanted()
        for a in askers:
            want |= a.wants(img)
        want = want.unread(img)
        if want.empty:
            break
        img = img.merged(read_image(runner, root, want))
    return img


def _cat(runner: Runner, root: str, path: str) -> str | None:
    res = runner.run(read("chroot", root, "cat", path, ok=(0, 1)))
    return res.stdout if res.returncode == 0 else None


def _stats(runner: Runner, root: str, paths: list[str]) -> dict[str, FileStat | None]:
    """One ``stat -c '%F|%a|%u|%g|%n' P...`` for all paths (missing ones print nothing)."""
    out: dict[str, FileStat | None] = dict.fromkeys(paths)
    if not paths:
        return out
    res = runner.run(read("chroot", root, "stat", "-c", "%F|%a|%u|%g|%n", "--", *paths, ok=(0, 1)))
    for line in res.stdout.splitlines():
        parts = line.split("|", 4)
        if len(parts) == 5 and parts[4] in out:
            kind, mode, uid, gid, name = parts
            out[name] = FileStat(kind, int(mode, 8), int(uid), int(gid))
    return out


def _exist(runner: Runner, root: str, paths: list[str]) -> dict[str, bool]:
    """One ``stat -L -c '%n' P...``: the paths that exist, symlinks followed inside the image."""
    if not paths:
        return {}
    res = runner.run(read("chroot", root, "stat", "-L", "-c", "%n", "--", *paths, ok=(0, 1)))
    found = set(res.stdout.splitlines())
    return {p: p in found for p in paths}


def _readlink(runner: Runner, root: str, path: str) -> str | None:
    res = runner.run(read("chroot", root, "readlink", path, ok=(0, 1)))
    return res.stdout.strip() if res.returncode == 0 else None


def _list(runner: Runner, root: str, path: str) -> tuple[str, ...] | None:
    res = runner.run(read("chroot", root, "ls", "-A1", "--", path, ok=(0, 1, 2)))
    if res.returncode != 0:
        return None
    return tuple(sorted(n for n in res.stdout.splitlines() if n))
