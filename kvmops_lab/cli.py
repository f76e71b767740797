"""``kvmops lab``: the lab VM, a faithful KVM host booted with QEMU on this machine."""

from __future__ import annotations

import argparse
import subprocess

import kvmops_lab as lab
from kvmops_lab.errors import LabError
from kvmops_lab.paths import LabPaths
from kvmops_lab.ssh import ssh_argv
from kvmops_lab.state import RUNNING


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("lab", help="the lab VM: a KVM host in QEMU to run the runbooks against")
    cmds = p.add_subparsers(dest="lab_cmd", required=True)

    c = cmds.add_parser("up", help="build (cached) and boot the lab; reuse a running one")
    c.add_argument("--port", type=int, help="SSH port on 127.0.0.1 (default: a free one)")
    c.add_argument("--accel", choices=("kvm", "tcg"), help="skip the KVM probe and use this")
    c.add_argument("--timeout", type=float, help="seconds to wait for SSH (default 180 KVM, 480 TCG)")
    c.add_argument("--no-guest-image", action="store_true",
                   help="do not build/attach the small busybox guest image")
    c.add_argument("--no-cloud-image", action="store_true",
                   help="do not build/attach the realistic cloud image (/var/lib/kvmops/images/cloud.raw)")
    _name(c)
    c.add_argument("--keep-disks", action="store_true",
                   help="boot the disks the earlier lab left (after its QEMU was killed or powered off)")
    c.set_defaults(func=cmd_up)

    c = cmds.add_parser("status", help="running / stopped / stale")
    _name(c)
    c.set_defaults(func=cmd_status)

    c = cmds.add_parser("ssh", help="a shell (or a command) in the lab as root")
    c.add_argument("command", nargs=argparse.REMAINDER, help="command to run (after --)")
    _name(c)
    c.set_defaults(func=cmd_ssh)

    c = cmds.add_parser("site", help="print the path of the lab site file (for --site)")
    _name(c)
    c.set_defaults(func=cmd_site)

    c = cmds.add_parser("down", help="destroy its guests, power the lab off (kill it if it hangs)")
    c.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the poweroff (default 30)")
    _name(c)
    c.set_defaults(func=cmd_down)

    c = cmds.add_parser("destroy", help="kill QEMU, remove the run folder: always back to clean")
    c.add_argument("--cache", action="store_true", help="also remove the built images (default lab only)")
    _name(c)
    c.set_defaults(func=cmd_destroy)

    c = cmds.add_parser("guest-image", help="build (cached) the small guest cloud image; print its path")
    c.set_defaults(func=cmd_guest_image)

    c = cmds.add_parser("cloud-image", help="build (cached) the realistic GenericCloud-like image; print its path")
    c.set_defaults(func=cmd_cloud_image)


def _name(c: argparse.ArgumentParser) -> None:
    c.add_argument("--name", help="a named lab (its own run folder, ports and VG; the image is shared), "
                                  "e.g. kvm2 for a second host; default: the one lab")


def _lab(args: argparse.Namespace) -> LabPaths:
    return LabPaths.named(args.name)


def cmd_up(args: argparse.Namespace) -> int:
    from kvmops_lab.cloud_image import ensure_cloud_image
    from kvmops_lab.guest_image import ensure_guest_image

    image = None if args.no_guest_image else ensure_guest_image()
    cloud = None if args.no_cloud_image else ensure_cloud_image().raw
    p = _lab(args)
    state = lab.up(p, port=args.port, accel=args.accel, timeout=args.timeout, guest_image=image, cloud_image=cloud,
                   keep_disks=args.keep_disks)
    print(f"lab running: pid {state.pid}, {state.accel}, ssh port {state.port}")
    print(f"site file:   {state.site}   (kvmops lv list --site {state.site})")
    print(f"shell:       {p.cli('ssh')}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    st = lab.status(_lab(args))
    print(st.message)
    return 0 if st.kind == RUNNING else 3


def cmd_ssh(args: argparse.Namespace) -> int:
    st = lab.status(_lab(args), check_ssh=False)
    if st.kind != RUNNING or st.state is None:
        raise LabError(st.message)
    command = [a for a in args.command if a != "--"] if args.command[:1] == ["--"] else args.command
    return subprocess.call(ssh_argv(st.state, *command, batch=bool(command)))


def cmd_site(args: argparse.Namespace) -> int:
    p = _lab(args)
    path = lab.site_path(p)
    if not path.exists():
        raise LabError(f"no lab site file at {path}: start the lab with `{p.cli('up')}`")
    print(path)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    print(lab.down(_lab(args), timeout=args.timeout))
    return 0


def cmd_destroy(args: argparse.Namespace) -> int:
    lab.destroy(_lab(args), cache=args.cache)
    return 0


def cmd_guest_image(args: argparse.Namespace) -> int:
    from kvmops_lab.guest_image import ensure_guest_image

    print(ensure_guest_image())
    return 0


def cmd_cloud_image(args: argparse.Namespace) -> int:
    from kvmops_lab.cloud_image import IN_LAB_FILE, ensure_cloud_image

    img = ensure_cloud_image()
    m = img.manifest()
    print(img.raw)
    print(f"built in {m['build_s']:.0f} s; {m['allocated_bytes'] / 2**20:.0f} MiB allocated of "
          f"{m['virtual_bytes'] / 2**30:.1f} GiB; kernel {m['kernel']}; in the lab: {IN_LAB_FILE}")
    return 0
