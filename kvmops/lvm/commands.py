"""Builders of LVM commands (pure): each returns a :class:`Cmd`, guards applied.

Every LV is passed to LVM as one exact ``VG/LV``.
"""

from __future__ import annotations

from kvmops import guards, names
from kvmops.cmd import Cmd, Kind, change
from kvmops.units import lvm_size


def lv_path(vg: str, lv: str) -> str:
    return f"{names.vg_name(vg)}/{names.lv_name(lv, limit=names.MAX_LV_NAME + 16)}"


def lvcreate(vg: str, lv: str, size: int) -> Cmd:
    """``lvcreate --name vmtest1 --size 10g rl_build`` (guide 4.2.2).

    ``--wipesignatures y --yes`` clears old filesystem signatures left on reused extents
    instead of stopping at a prompt; it can only affect the new LV.
    """
    names.lv_name(lv)
    return change(
        "lvcreate", "--name", lv, "--size", lvm_size(size),
        "--wipesignatures", "y", "--yes", names.vg_name(vg),
    )


def lvrename(vg: str, old: str, new: str) -> Cmd:
    """``lvrename rl_build vmold vmnew`` (guide 4.2.4)."""
    return change("lvrename", names.vg_name(vg), names.lv_name(old), names.lv_name(new))


def lvresize(vg: str, lv: str, size: int, *, shrink: bool = False) -> Cmd:
    """``lvresize --size 20g rl_build/vmtest1``; when shrinking, LVM's prompt is answered."""
    argv = ["lvresize", "--size", lvm_size(size)]
    if shrink:
        # LVM asks before reducing; the plan's confirm is the answer, fed on stdin.
        return change(*argv, lv_path(vg, lv), stdin="y\n")
    return change(*argv, lv_path(vg, lv))


def lvsnapshot(vg: str, lv: str, snapshot: str, size: int) -> Cmd:
    """``lvcreate --snapshot --name vmtest1-20241006T1518Z --size 5g rl_build/vmtest1``."""
    return change(
        "lvcreate", "--snapshot", "--name", names.lv_name(snapshot, limit=names.MAX_LV_NAME + 16),
        "--size", lvm_size(size), lv_path(vg, lv),
    )


def lvmerge(vg: str, snapshot: str, interval: int = 10) -> Cmd:
    """``lvconvert --mergesnapshot rl_build/vmtest1-20241006T1518Z --interval 10``."""
    if interval < 1:
        raise ValueError("merge progress interval must be at least 1 second")
    return change("lvconvert", "--mergesnapshot", lv_path(vg, snapshot), "--interval", str(interval))


def lvchange_activate(vg: str, lv: str, active: bool) -> Cmd:
    """``lvchange -an rl_build/vmtest1`` / ``-ay``: a delayed merge completes on activation."""
    return change("lvchange", "-ay" if active else "-an", lv_path(vg, lv))


def lvremove(vg: str, lv: str) -> Cmd:
    """``lvremove rl_build/vmtest1``, answering LVM's own prompt for this one LV with ``y``.

    Never ``-y``/``--yes``/``-f``/``--force``; the argv is checked by the guard before use.
    """
    argv = ("lvremove", lv_path(vg, lv))
    guards.lvremove_argv(argv)
    return Cmd(argv, Kind.CHANGE, stdin="y\n")
