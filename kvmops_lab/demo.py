"""``kvmops demo``: the main job. Creates a guest with the runbooks against the best site
this machine offers, and says which one it used:

- the lab (a KVM host in QEMU, `kvmops lab`) when this machine can run it (root, QEMU,
  debootstrap): host-network then guest-create, applied for real;
- otherwise plan mode against the demo site (recorded facts and the libvirt test driver):
  the same runbooks, nothing executed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil

from kvmops.cli.runbooks import report
from kvmops.runbook.execute import run_runbook
from kvmops.runbook.journal import RunRecord

DEMO_GUEST = "demo1"
PLAN_GUEST = "test2"  # a new guest: the demo site plans any name from its recorded facts
VLAN = 2368
LAB_IMAGE = "/var/lib/kvmops/images/guest.raw"
# The small guest reaches its login prompt in the lab in 70-105 s (KVM inside the TCG lab,
# measured on a loaded 2-core machine): wait up to this long for it.
CONSOLE_SECONDS = 180.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="create a guest with the runbooks on the best site this machine offers")
    p.add_argument("--plan", action="store_true", help="plan mode against the demo site, even where a lab can run")
    p.add_argument("--guest", help=f"guest name (default {DEMO_GUEST} in the lab, {PLAN_GUEST} in plan mode)")
    p.add_argument("--down", action="store_true", help="stop the lab at the end (default: leave it running)")
    p.set_defaults(func=cmd_demo)


def lab_possible() -> tuple[bool, str]:
    """Whether the lab can run here, and why not."""
    if os.geteuid() != 0:
        return False, "not root (the lab needs loop devices and debootstrap)"
    missing = [t for t in ("qemu-system-x86_64", "qemu-img", "debootstrap", "mkfs.ext4") if not shutil.which(t)]
    if missing:
        return False, f"missing {', '.join(missing)} (run scripts/bootstrap as root)"
    return True, ""


def say(line: str) -> None:
    print(line, flush=True)


def cmd_demo(args: argparse.Namespace) -> int:
    possible, why = lab_possible()
    if args.plan or not possible:
        reason = "--plan was given" if args.plan else f"the lab cannot run here: {why}"
        print(f"kvmops demo: PLAN MODE against the demo site (recorded facts, libvirt test driver), "
              f"because {reason}. Nothing is executed.\n", flush=True)
        params = {**_params(args.guest or PLAN_GUEST, image=None), "size": "10g", "setup": "nocloud"}
        rec = run_runbook("guest-create", params, site="demo", apply=False, progress=say)
        return report(rec)
    return _lab_demo(args)


def _params(guest: str, image: str | None) -> dict[str, object]:
    params: dict[str, object] = {"guest": guest, "vlans": str(VLAN), "memory": "512m", "vcpus": 1,
                                 "size": "1g", "setup": "tweaks", "sudo": False, "address": "10.5.68.237",
                                 "console_seconds": CONSOLE_SECONDS}
    if image:
        params["image"] = image
    return params


def boot_summary(guest: str, rec: RunRecord) -> str:
    """What the demo proved about the guest's boot, from guest-create's own verdict (a login
    prompt on the serial console, kvmops.guests.boot): booted, or plainly NOT verified."""
    texts = [rec.error or ""]
    if rec.notebook and rec.notebook_path.exists():
        nb = json.loads(rec.notebook_path.read_text())
        texts += ["".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", [])]
    lines = [ln.strip() for t in texts for ln in t.splitlines()]
    booted = next((ln for ln in lines if ln.startswith(f"guest {guest} booted:")), None)  # the start's boot wait
    if booted and rec.ok:
        return f"guest {guest} BOOTED in the lab: {booted}"
    failed = next((ln for ln in lines if "boot NOT verified" in ln), None)
    if failed:
        return f"guest {guest} was started, but its boot was NOT verified: {failed[failed.index('boot NOT verified'):]}"
    return f"guest {guest}: boot NOT verified (guest-create did not get as far as reading its console)"


def _lab_demo(args: argparse.Namespace) -> int:
    import kvmops_lab as lab
    from kvmops_lab.guest_image import ensure_guest_image

    print("kvmops demo: using the LAB (a KVM host in QEMU on this machine; first run builds it, "
          "~4 min). Changes are applied inside the lab only.\n", flush=True)
    guest = args.guest or DEMO_GUEST
    state = lab.up(guest_image=ensure_guest_image())
    site = str(state.site)
    try:
        steps: list[tuple[str, dict[str, object]]] = [
            ("host-network", {"vlan": VLAN}), ("guest-create", _params(guest, LAB_IMAGE))]
        for name, params in steps:
            print(f"\n== kvmops run {name} --site {site} --apply", flush=True)
            rec = run_runbook(name, params, site=site, apply=True, progress=say)
            failed = report(rec) != 0
            if name == "guest-create":
                print(f"\n{boot_summary(guest, rec)}", flush=True)
            if failed:
                return 1
        print(f"\nLook: kvmops inventory --site {site}; kvmops lab ssh -- virsh list --all; "
              f"stop the lab: kvmops lab down")
        return 0
    finally:
        if args.down:
            print(lab.down())

