"""Measure the lab: image build (or cache hit), QEMU start to ``ssh true``, prepare, power off.

Usage (root): ``.venv/bin/python bench/lab_boot.py [--rebuild]``. Prints one JSON object.
Destroys any running lab first and at the end (``--rebuild`` also drops the image cache).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import kvmops_lab as lab
from kvmops_lab.guest_image import ensure_guest_image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import write_results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rebuild", action="store_true", help="drop the image cache first")
    args = ap.parse_args()
    lab.destroy(cache=args.rebuild)
    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    t0 = time.monotonic()
    image = ensure_guest_image()
    built = time.monotonic() - t0
    t1 = time.monotonic()
    try:
        lab.up(guest_image=image, say=say)
        up = time.monotonic() - t1
        t2 = time.monotonic()
        lab.down(say=say)
        down = time.monotonic() - t2
    finally:
        lab.destroy()
    ssh = next((float(m.group(1)) for ln in lines if (m := re.search(r"ssh answers after (\d+)s", ln))), None)
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[0]
    data = {"images_s": round(built, 1), "qemu_start_to_ssh_s": ssh, "up_total_s": round(up, 1),
            "down_s": round(down, 1), "loadavg_1m": float(load)}
    print(json.dumps(data))
    write_results("lab_boot", {**data, "goal": "measured, no goal (the lab's boot under TCG)"})


if __name__ == "__main__":
    main()
