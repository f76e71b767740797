"""Benchmark: an LV streamed between two hosts through kvmops versus a plain ``ssh | ssh`` pipe.

Run as root: ``.venv/bin/python bench/transfer.py [--size-mib 512] [--runs 3]``.

Two "hosts" are two private sshd's on 127.0.0.1 (strict host keys, the runners' own SSH
options and shared connections), the data a loop device over a file on each side (block
devices, so the real O_DIRECT flags apply; this machine has no device-mapper for LVs).

- *move*: ``dd if=SRC iflag=direct`` on one end, ``dd of=DST iflag=fullblock oflag=direct
  conv=fsync`` on the other. kvmops: the data passes through kvmops, which computes its sha256
  (:func:`kvmops.runners.stream.stream`); *+ both ends checked* adds what guest-move does
  after the stream (``sha256sum`` of each end on its own host). Plain: the same two commands
  joined by a shell pipe through ``ssh`` (``ssh src dd ... | ssh dst dd ...``), no checksum.
- *backup*: ``zstd --threads=2`` reading the device on the source, the compressed stream into a
  file on the other end (``dd conv=fsync``), kvmops versus the same commands piped.

Both ends run on the same 2-core machine here, so the ciphers of both SSH connections, both
sshd's and kvmops share two cores: the numbers compare the methods; a real network between two
hosts is usually the limit. Results: ``bench/transfer-results.json``.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(TOP))
from machine import write_results  # noqa: E402

from kvmops.cmd import Cmd  # noqa: E402
from kvmops.plan import Endpoint, Transfer  # noqa: E402
from kvmops.runners import SSHRunner  # noqa: E402
from kvmops.runners.stream import stream  # noqa: E402
from kvmops.runners.transfer import run_transfer  # noqa: E402
from kvmops.transfer import commands as tc  # noqa: E402
from kvmops.transfer.result import sha256_cmd  # noqa: E402
from tests.support.loop import loop_device  # noqa: E402
from tests.support.sshd import private_sshd  # noqa: E402
from tests.support.transfer import ssh_runner  # noqa: E402

MiB = 1 << 20


def fill(device: str, size: int, random_share: float) -> None:
    """Random data in ``random_share`` of each 4 MiB block, zeros in the rest."""
    with open("/dev/urandom", "rb") as rnd, open(device, "r+b") as out:
        block = 4 * MiB
        for _ in range(size // block):
            data = rnd.read(int(block * random_share))
            out.write(data + bytes(block - len(data)))
        out.flush()
        os.fsync(out.fileno())


def piped(src: SSHRunner, a: Cmd, dst: SSHRunner, b: Cmd) -> None:
    """The baseline: ``ssh src A | ssh dst B`` (a shell pipe; only here, in the benchmark)."""
    line = f"{shlex.join(src.stream_argv(a))} | {shlex.join(dst.stream_argv(b))}"
    subprocess.run(["bash", "-o", "pipefail", "-c", line], check=True)


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        subprocess.run(["sync"], check=True)
        t0 = time.monotonic()
        fn()
        out.append(round(time.monotonic() - t0, 3))
    return out


def row(case: str, method: str, seconds: list[float], size: int) -> dict[str, object]:
    best, median = min(seconds), statistics.median(seconds)
    r = {"case": case, "method": method, "seconds": seconds, "best_mib_s": round(size / MiB / best, 1),
         "median_mib_s": round(size / MiB / median, 1)}
    print(f"{case:22} {method:46} best {r['best_mib_s']:7} MiB/s  median {r['median_mib_s']:7} MiB/s  {seconds}")
    return r


def one_case(a: SSHRunner, b: SSHRunner, src_dev: str, dst_dev: str, packed: str, size: int, runs: int,
             case: str) -> list[dict[str, object]]:
    peers = {"a": a, "b": b}.__getitem__
    rd, wr = tc.dd_read(src_dev), tc.dd_write(dst_dev)
    check = Transfer(Endpoint("a", rd), Endpoint("b", wr), size=size,
                     verify=(Endpoint("a", sha256_cmd(src_dev)), Endpoint("b", sha256_cmd(dst_dev))))
    zst = tc.codec(tc.ZSTD).compress(src_dev)
    return [
        row(f"move, {case}", "kvmops (dd | kvmops sha256 | dd)", timed(lambda: stream(a, rd, b, wr, size=size), runs),
            size),
        row(f"move, {case}", "kvmops + both ends checked (sha256sum)",
            timed(lambda: run_transfer(check, peers, lambda _: None), runs), size),
        row(f"move, {case}", "plain: ssh a dd | ssh b dd", timed(lambda: piped(a, rd, b, wr), runs), size),
        row(f"backup, {case}", "kvmops (zstd | kvmops sha256 | dd)",
            timed(lambda: stream(a, zst, b, tc.dd_file(packed)), runs), size),
        row(f"backup, {case}", "plain: ssh a zstd | ssh b dd",
            timed(lambda: piped(a, zst, b, tc.dd_file(packed)), runs), size),
    ]


def bench(size: int, runs: int, folder: Path) -> list[dict[str, object]]:
    for d in ("s1", "s2"):
        (folder / d).mkdir()
    with private_sshd(folder / "s1") as s1, private_sshd(folder / "s2") as s2, \
            loop_device(folder / "src.img", f"{size // MiB}M") as src_dev, \
            loop_device(folder / "dst.img", f"{size // MiB}M") as dst_dev:
        a, b = ssh_runner(s1), ssh_runner(s2)
        out = []
        try:
            for share, case in ((1.0, "random data"), (0.1, "10% data, 90% zeros")):
                fill(src_dev, size, share)
                out += one_case(a, b, src_dev, dst_dev, str(folder / "backup.raw.zst"), size, runs, case)
        finally:
            a.close()
            b.close()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--size-mib", type=int, default=512, help="MiB of data per copy (a multiple of 4)")
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    if os.geteuid() != 0:
        print("bench/transfer.py needs root (loop devices)", file=sys.stderr)
        return 2
    size = args.size_mib * MiB
    with tempfile.TemporaryDirectory(prefix="kvmops-bench-transfer-") as tmp:
        results = bench(size, args.runs, Path(tmp))
    load = round(os.getloadavg()[0], 1)
    write_results("transfer", {"size_mib": args.size_mib, "runs": args.runs, "load_1m_after": load, "results": results,
                               "note": "both ends and kvmops on one 2-core machine over loopback SSH"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
