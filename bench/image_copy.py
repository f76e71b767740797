"""Benchmark: copy an image onto a block device with ``qemu-img convert -n`` versus ``dd``.

Run as root: ``.venv/bin/python bench/image_copy.py [--size-mib 512] [--target DIR]``.

Images: *dense* (all random data), *sparse* (10 % random data, 90 % holes) and *zeros*
(10 % random data, 90 % explicit zero blocks, all allocated: a downloaded raw image).
Target: a loop device over a fresh file, written through (``-t none`` / ``oflag=direct``),
each run ended with ``sync``; a fresh target per run. The numbers land in
``bench/image_copy-results.json``. Caveat: on a loop device over a file, qemu-img's
write-zeroes becomes a cheap fallocate; on a thick LV zeroing costs real writes (unless the
storage offloads it), so the sparse win is smaller there but still saves reading the zeroes
and any writes of already-zero regions when ``--target-is-zero`` is known true.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

MiB = 1 << 20

Method = Callable[[str, str], list[str]]

METHODS: dict[str, Method] = {
    "qemu-img convert -n -t none": lambda src, dst: [
        "qemu-img", "convert", "-n", "-p", "-f", "raw", "-O", "raw", "-t", "none", src, dst],
    "qemu-img convert -n (writeback)": lambda src, dst: [
        "qemu-img", "convert", "-n", "-p", "-f", "raw", "-O", "raw", "-t", "writeback", src, dst],
    "qemu-img convert -n -t none -W": lambda src, dst: [
        "qemu-img", "convert", "-n", "-p", "-W", "-f", "raw", "-O", "raw", "-t", "none", src, dst],
    "dd bs=4M oflag=direct": lambda src, dst: [
        "dd", f"if={src}", f"of={dst}", "bs=4M", "oflag=direct", "status=progress"],
    "dd bs=4M (page cache)": lambda src, dst: [
        "dd", f"if={src}", f"of={dst}", "bs=4M", "status=progress"],
}


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def make_images(folder: Path, size_mib: int) -> dict[str, Path]:
    """dense, sparse (90 % holes) and zeros (90 % zero blocks, allocated)."""
    dense, sparse, zeros = folder / "dense.raw", folder / "sparse.raw", folder / "zeros.raw"
    with dense.open("wb") as f:
        for _ in range(size_mib):
            f.write(os.urandom(MiB))
    for path in (sparse, zeros):
        with path.open("wb") as f:
            f.truncate(size_mib * MiB)
            for mib in range(size_mib):
                f.seek(mib * MiB)
                if mib % 10 == 0:
                    f.write(os.urandom(MiB))
                elif path is zeros:
                    f.write(bytes(MiB))
    return {"dense": dense, "sparse 90% holes": sparse, "zeros 90% written": zeros}


def run_once(method: Method, src: Path, folder: Path, size_mib: int) -> float:
    target = folder / "target.img"
    target.unlink(missing_ok=True)
    with target.open("wb") as f:
        f.truncate(size_mib * MiB)
    loop = sh("losetup", "--find", "--show", str(target)).strip()
    try:
        t0 = time.monotonic()
        subprocess.run(method(str(src), loop), check=True, capture_output=True)
        subprocess.run(["sync"], check=True)
        seconds = time.monotonic() - t0
        same = subprocess.run(["cmp", "-n", str(size_mib * MiB), str(src), loop], capture_output=True)
        if same.returncode != 0:
            raise SystemExit(f"copy differs from source: {same.stdout!r}")
        return seconds
    finally:
        sh("losetup", "--detach", loop)
        target.unlink(missing_ok=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mib", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--target", default="/var/tmp", help="folder for images and the target file")
    ap.add_argument("--out", default=str(Path(__file__).with_name("image_copy-results.json")))
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (loop devices)", file=sys.stderr)
        return 2
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="kvmops-bench-", dir=args.target) as tmp:
        folder = Path(tmp)
        images = make_images(folder, args.size_mib)
        for kind, src in images.items():
            for name, method in METHODS.items():
                times = [run_once(method, src, folder, args.size_mib) for _ in range(args.repeat)]
                best = min(times)
                row = {"image": kind, "method": name, "seconds": [round(t, 2) for t in times],
                       "best_mib_s": round(args.size_mib / best, 1)}
                results.append(row)
                print(f"{kind:20} {name:34} best {best:6.2f} s  {args.size_mib / best:8.1f} MiB/s", flush=True)
    meta = {"size_mib": args.size_mib, "kernel": os.uname().release, "cpus": os.cpu_count(),
            "qemu_img": sh("qemu-img", "--version").splitlines()[0], "results": results}
    Path(args.out).write_text(json.dumps(meta, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
