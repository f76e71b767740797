"""What a transfer did (:class:`Transferred`: the stream's sha256, each end's) and the
command that computes an end's sha256 (pure). Running one: :mod:`kvmops.runners.transfer`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from kvmops.cmd import Cmd, read
from kvmops.errors import KvmopsError

_SHA = re.compile(r"^\\?([0-9a-f]{64})\s")


@dataclass(frozen=True)
class Transferred:
    """The result of a transfer: its key, what went through, and the sha256 of each end.

    ``skipped``: the target held the data already (a reused earlier copy): nothing streamed.
    ``in_flight``: the ends in ``sums`` whose sha256 is the stream's own (a source that cannot
    change while it streams), not read again.
    """

    key: str
    bytes: int
    sha256: str
    seconds: float
    sums: Mapping[str, str] = field(default_factory=dict)  # each verified end's display -> sha256
    measured: Mapping[str, str] = field(default_factory=dict)  # each measured end's display -> sha256
    skipped: bool = False
    in_flight: tuple[str, ...] = ()

    @property
    def measured_sha256(self) -> str:
        """The one measured sum (e.g. the raw data behind a compressed stream)."""
        if len(self.measured) != 1:
            raise KvmopsError(f"{self.key}: {len(self.measured)} measured sums, one expected")
        return next(iter(self.measured.values()))


def sha256_cmd(path: str) -> Cmd:
    """``openssl dgst -sha256 -r -- PATH`` (reads the whole device or file; read-only).

    OpenSSL's sha256 uses the CPU's SHA instructions: about 1.4 GB/s a core here against
    230 MB/s for coreutils' ``sha256sum`` (Debian 12), whose time would be most of a verified
    move's. Its ``-r`` output is ``sha256sum``'s (``<64 hex> *PATH``). kvmops needs openssl on
    the hosts already (NoCloud seeds).
    """
    return read("openssl", "dgst", "-sha256", "-r", "--", path)


def parse_sha256(text: str, what: str) -> str:
    """The hex digest of ``openssl dgst -sha256 -r`` (or ``sha256sum``) output (``<64 hex> *PATH``)."""
    m = _SHA.match(text.strip() + "\n")
    if m is None:
        raise KvmopsError(f"sha256sum of {what} printed no checksum: {text.strip()[:200]!r}")
    return m.group(1)


