"""Measure real guests (issue 12): the realistic image's build, its boot with one level of QEMU
(to the login prompt and to SSH, setups offline and nocloud), the small guest's boot inside the
lab (KVM inside the TCG lab), and what the lab's QEMU costs while that guest idles.

Usage (root): ``.venv/bin/python bench/guest_boot.py [--rebuild]``. Reuses a running lab (or
starts one and destroys it at the end); ``--rebuild`` builds the cloud image anew. Writes
``bench/guest_boot-results.json``. The load average is recorded: on a shared machine other
work slows the (emulated) guests down a lot.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import kvmops_lab as lab
from kvmops.host import connect
from kvmops.site import load_site
from kvmops_lab import guestboot as gb
from kvmops_lab import proofguest as pg
from kvmops_lab.build import safe_rmtree
from kvmops_lab.cloud_image import cloud_dir, ensure_cloud_image
from kvmops_lab.cloud_recipe import CloudRecipe
from kvmops_lab.guest_image import ensure_guest_image
from kvmops_lab.nested import boot_small_guest
from kvmops_lab.paths import LabPaths

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import write_results

PASSWORD = "Bench-root-51c2"  # a throwaway guest's root password, in the lab only
VLAN = 2368


def load() -> float:
    return round(os.getloadavg()[0], 2)


def one_level(host: Any, state: Any, setup: str, key: Path) -> dict[str, Any]:
    t0 = time.monotonic()
    guest = pg.create(host, f"bench{setup[:3]}", setup, vlan=VLAN, address="10.5.68.61", key=key,
                      password=PASSWORD)
    made = time.monotonic() - t0
    try:
        t1 = time.monotonic()
        with gb.boot_from_lab(host, state, guest.name, address=guest.address, vlan=VLAN, say=print) as g:
            verdict = g.wait_for_login(600)
            ssh = g.wait_for_ssh(guest.login, 600) if verdict.booted else None
        session = time.monotonic() - t1
        timings = dict(g.timings)  # "power off" is set on the way out
    finally:
        pg.remove(host, guest)
    print(f"one level, {setup}: {verdict.message}; ssh after {ssh} s")
    return {"setup": setup, "copy_and_setup_s": round(made, 1), "booted": verdict.booted,
            "qemu_start_to_login_prompt_s": round(verdict.seconds, 1),
            "qemu_start_to_ssh_s": round(ssh, 1) if ssh else None,
            "harness_setup_s": round(timings.get("setup (seed, nbd, forward)", 0.0), 1),
            "power_off_s": round(timings.get("power off", 0.0), 1), "session_s": round(session, 1),
            "loadavg_1m_after": load()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rebuild", action="store_true", help="build the cloud image anew")
    args = ap.parse_args()
    data: dict[str, Any] = {"loadavg_1m_start": load()}
    if args.rebuild:
        old = cloud_dir(LabPaths.default(), CloudRecipe())
        if old.dir.exists():
            safe_rmtree(old.dir)
    t0 = time.monotonic()
    img = ensure_cloud_image()
    manifest = img.manifest()
    data["cloud_image"] = {"build_s": manifest["build_s"], "built_now": time.monotonic() - t0 > 30,
                           "debootstrap_s": manifest.get("debootstrap_s"), "packages_s": manifest.get("packages_s"),
                           "virtual_bytes": manifest["virtual_bytes"], "allocated_bytes": manifest["allocated_bytes"],
                           "root_fs_used_bytes": manifest["root_fs_used_bytes"], "kernel": manifest["kernel"],
                           "packages": manifest["packages"]}
    started_here = lab.status(check_ssh=False).kind != "running"
    state = lab.up(guest_image=ensure_guest_image(), cloud_image=img.raw)
    host = connect(load_site(state.site), apply=True)
    try:
        with tempfile.TemporaryDirectory(prefix="kvmops-bench-") as tmp:
            key = Path(tmp) / "id_bench"
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
            data["one_level"] = [one_level(host, state, s, key) for s in ("offline", "nocloud")]
        nested = boot_small_guest(host, state.pid, say=print)
        data["nested_small_guest"] = {
            "domain_type": nested.domain_type, "virsh_start_s": round(nested.start_s, 1),
            "booted": nested.verdict.booted, "virsh_start_to_login_prompt_s": round(nested.verdict.seconds, 1),
            "lab_qemu_cpu_pct_idle_lab": round(nested.lab_idle_cpu_pct or 0.0, 1),
            "lab_qemu_cpu_pct_guest_idle": round(nested.idle_cpu_pct, 1) if nested.idle_cpu_pct is not None else None,
            "message": nested.verdict.message}
    finally:
        host.close()
        if started_here:
            lab.destroy()
    data["loadavg_1m_end"] = load()
    data["goal"] = "small guest: login prompt < 120 s after virsh start, idle lab QEMU < 50 % of a core"
    write_results("guest_boot", data)


if __name__ == "__main__":
    main()
