"""Two "hosts" for transfer tests: private sshd's on 127.0.0.1 (strict host keys), data in
regular files or loop devices, and LV device paths (``/dev/<vg>/<lv>``, what udev makes for an
active LV) pointing at loop devices: this machine has no device-mapper, so no LV holds data."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kvmops.runners import SSHRunner
from kvmops.sshtarget import SSHTarget
from tests.support.sshd import Sshd


def ssh_runner(s: Sshd) -> SSHRunner:
    return SSHRunner(SSHTarget("root@127.0.0.1", s.port, str(s.identity), str(s.known_hosts)))


def random_data(path: Path, size: int, seed: int = 7) -> str:
    """Write ``size`` bytes of repeatable, poorly compressible data; return their sha256."""
    block = hashlib.sha256(str(seed).encode()).digest() * 32768  # 1 MiB
    sha = hashlib.sha256()
    with open(path, "r+b" if path.exists() else "wb") as f:
        left, i = size, 0
        while left:
            chunk = bytes(b ^ (i & 0xFF) for b in block[:64]) + block[64:min(left, len(block))]
            chunk = chunk[:min(left, len(block))]
            f.write(chunk)
            sha.update(chunk)
            left -= len(chunk)
            i += 1
    return sha.hexdigest()


def sha256_of(path: str | Path, size: int | None = None) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        left = size
        while chunk := f.read(min(1 << 20, left) if left is not None else 1 << 20):
            sha.update(chunk)
            if left is not None:
                left -= len(chunk)
                if not left:
                    break
    return sha.hexdigest()


@contextmanager
def dev_links(vg: str, links: dict[str, str]) -> Iterator[Path]:
    """``/dev/<vg>/<name>`` -> each device, as udev makes them for active LVs; removed after.

    ``vg`` must be a name of this test's own (e.g. with the process id): nothing else is touched.
    """
    folder = Path("/dev") / vg
    if folder.exists():
        raise RuntimeError(f"{folder} exists already: not this test's")
    folder.mkdir()
    try:
        for name, target in links.items():
            os.symlink(target, folder / name)
        yield folder
    finally:
        shutil.rmtree(folder)
