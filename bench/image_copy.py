"""Benchmark: copy an image onto a block device: kvmops' ``auto`` versus ``qemu-img convert -n`` and ``dd``.

Run as root: ``.venv/bin/python bench/image_copy.py [--size-mib 512] [--repeat 7] [--target DIR]``.

Images: *dense* (all random data), *75% data* (every 4th MiB a hole: near the ``auto``
threshold), *sparse* (10 % random data, 90 % holes) and *zeros* (10 % random data, 90 % explicit
zero blocks, all allocated: a downloaded raw image). *kvmops auto* is what ``kvmops image copy``
does by default: the command :func:`kvmops.images.copy.pick` chooses for ``auto``.
Target: a loop device over a fresh file, written through (``-t none`` / ``oflag=direct``),
each run ended with ``sync``; a fresh target per run. The methods take turns within each
repetition (a burst of load on the shared machine hits all of them alike); best and median
of the repetitions are kept. The numbers land in
``bench/image_copy-results.json``. Caveat: on a loop device over a file, qemu-img's
write-zeroes becomes a cheap fallocate; on a thick LV zeroing costs real writes (unless the
storage offloads it), so the sparse win is smaller there but still saves reading the zeroes
and any writes of already-zero regions when ``--target-is-zero`` is known true.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from machine import write_results

from kvmops.images import copy
from kvmops.images.probe import ImageInfo

MiB = 1 << 20

Method = Callable[[str, str], list[str]]

CHOSEN: dict[str, str] = {}  # image path -> the method auto chose (for the results)


def kvmops_auto(src: str, dst: str) -> list[str]:
    """Choose as ``kvmops image copy`` does; the argv of the chosen command."""
    info = ImageInfo(src, "raw", os.path.getsize(src))
    method, _why = copy.pick("auto")
    cmd = copy.dd_cmd(info, dst) if method == "dd" else copy.convert_cmd(info, dst)
    CHOSEN[src] = " ".join(cmd.argv[:2] + tuple(a for a in cmd.argv if a == "-W"))
    return list(cmd.argv)


METHODS: dict[str, Method] = {
    "kvmops auto": kvmops_auto,
    "qemu-img convert -n -t none": lambda src, dst: [
        "qemu-img", "convert", "-n", "-p", "-f", "raw", "-O", "raw", "-t", "none", src, dst],
    "qemu-img convert -n -t none -W": lambda src, dst: [
        "qemu-img", "convert", "-n", "-p", "-W", "-f", "raw", "-O", "raw", "-t", "none", src, dst],
    "dd bs=4M oflag=direct": lambda src, dst: [
        "dd", f"if={src}", f"of={dst}", "bs=4M", "oflag=direct", "status=progress"],
}


KVMOPS_METHOD = "kvmops auto"  # what kvmops.images.copy uses by default
DD_METHOD = "dd bs=4M oflag=direct"  # the guide's dd, written through like kvmops' copy


def sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def make_images(folder: Path, size_mib: int) -> dict[str, Path]:
    """dense, 75 % data (25 % holes), sparse (90 % holes) and zeros (90 % zero blocks, allocated)."""
    dense, sparse, zeros = folder / "dense.raw", folder / "sparse.raw", folder / "zeros.raw"
    three = folder / "75.raw"
    with three.open("wb") as f:
        f.truncate(size_mib * MiB)
        for mib in range(size_mib):
            if mib % 4:
                f.seek(mib * MiB)
                f.write(os.urandom(MiB))
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
    return {"dense": dense, "75% data, 25% holes": three, "sparse 90% holes": sparse, "zeros 90% written": zeros}


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
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--target", default="/var/tmp", help="folder for images and the target file")
    ap.add_argument("--out", default=str(Path(__file__).with_name("image_copy-results.json")))
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (loop devices)", file=sys.stderr)
        return 2
    # the system's tools first, as on a KVM host: a pyenv shim for python3 costs 0.2 s per start
    os.environ["PATH"] = "/usr/bin:/bin:" + os.environ.get("PATH", "")
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="kvmops-bench-", dir=args.target) as tmp:
        folder = Path(tmp)
        images = make_images(folder, args.size_mib)
        for kind, src in images.items():
            times: dict[str, list[float]] = {name: [] for name in METHODS}
            for _ in range(args.repeat):
                for name, method in METHODS.items():  # in turns: load bursts hit every method alike
                    times[name].append(run_once(method, src, folder, args.size_mib))
            for name, runs in times.items():
                best, median = min(runs), statistics.median(runs)
                row: dict[str, object] = {"image": kind, "method": name, "seconds": [round(t, 2) for t in runs],
                                          "best_mib_s": round(args.size_mib / best, 1),
                                          "median_mib_s": round(args.size_mib / median, 1)}
                if name == KVMOPS_METHOD:
                    row["chose"] = CHOSEN[str(src)]
                    name = f"{name} ({CHOSEN[str(src)]})"
                results.append(row)
                print(f"{kind:20} {name:34} best {args.size_mib / best:7.1f} MiB/s  median "
                      f"{args.size_mib / median:7.1f} MiB/s", flush=True)
    write_results("image_copy", {
        "size_mib": args.size_mib, "qemu_img": sh("qemu-img", "--version").splitlines()[0],
        "kvmops_method": KVMOPS_METHOD, "dd_method": DD_METHOD, "repeat": args.repeat,
        "results": results,
        "goal": "kvmops' method >= dd's throughput on dense data, >= 3x dd's on a 90%-empty image",
    }, Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
