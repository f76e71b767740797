"""The commands at the two ends of a transfer (argv only; each runs on its own host).

``dd`` reads and writes 4 MiB blocks with O_DIRECT, so a copy of many GiB does not push the
hosts' page caches out (the guests' memory); the writer asks for full blocks
(``iflag=fullblock``: SSH hands data over in pieces of any size, and O_DIRECT writes must stay
aligned) and syncs before it exits (``conv=fsync``), so its exit means the data is on disk.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvmops.cmd import Cmd, change, read
from kvmops.errors import InvalidInput

ZSTD, GZIP = "zstd", "gzip"
TOOL_PATHS = {ZSTD: "/usr/bin/zstd", GZIP: "/usr/bin/gzip"}


def _path(path: str) -> str:
    if not path.startswith("/") or "\0" in path or "\n" in path:
        raise InvalidInput(f"bad path {path!r}: an absolute path is needed")
    return path


def dd_read(device: str) -> Cmd:
    """``dd if=DEV bs=4M iflag=direct status=none``: the data on stdout."""
    return read("dd", f"if={_path(device)}", "bs=4M", "iflag=direct", "status=none")


def dd_write(device: str) -> Cmd:
    """``dd of=DEV bs=4M iflag=fullblock oflag=direct conv=fsync status=none``: stdin onto a device."""
    return change("dd", f"of={_path(device)}", "bs=4M", "iflag=fullblock", "oflag=direct", "conv=fsync",
                  "status=none")


def dd_file(path: str) -> Cmd:
    """``dd of=FILE bs=4M conv=fsync status=none``: stdin into a file (a compressed backup)."""
    return change("dd", f"of={_path(path)}", "bs=4M", "conv=fsync", "status=none")


def cat(path: str) -> Cmd:
    """``cat -- FILE``: a small file's bytes on stdout."""
    return read("cat", "--", _path(path))


def install_stdin(path: str) -> Cmd:
    """``install -D -m 0600 /dev/stdin FILE``: stdin into a new file only root can read."""
    return change("install", "-D", "-m", "0600", "/dev/stdin", _path(path))


@dataclass(frozen=True)
class Codec:
    """A compressor: its name, the file suffix, and its commands."""

    name: str
    suffix: str

    def compress(self, device: str) -> Cmd:
        """Reads the device itself (a pipe from dd would need a shell): the compressed data on stdout."""
        if self.name == ZSTD:  # --force: zstd refuses block devices without it
            return read("zstd", "--quiet", "--force", "--stdout", "--threads=2", "--", _path(device))
        return read("gzip", "--fast", "--stdout", "--", _path(device))

    def decompress(self, path: str) -> Cmd:
        """The raw data of a compressed file on stdout."""
        quiet = ("--quiet",) if self.name == ZSTD else ()
        return read(self.name, "--decompress", *quiet, "--stdout", "--", _path(path))

    def test(self, path: str) -> Cmd:
        """The format's own integrity check of a compressed file (zstd and gzip both checksum)."""
        return read(self.name, "--test", "--quiet", "--", _path(path))


CODECS = {ZSTD: Codec(ZSTD, ".zst"), GZIP: Codec(GZIP, ".gz")}


def codec(name: str) -> Codec:
    if name not in CODECS:
        raise InvalidInput(f"unknown compression {name!r}: use {' or '.join(CODECS)}")
    return CODECS[name]
