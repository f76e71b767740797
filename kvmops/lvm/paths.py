"""Which LV a guest's disk source names (pure): ``/dev/VG/LV`` or ``/dev/mapper/VG-LV``."""

from __future__ import annotations


def lv_path(source: str | None) -> str | None:
    """``VG/LV`` of a disk source: ``/dev/rl_build/vmtest1`` or ``/dev/mapper/rl_build-vmtest1``.

    Other paths (files, ``/dev/sdX``, ``/dev/disk/by-*/...``) give None.
    """
    if not source or not source.startswith("/dev/"):
        return None
    parts = source[len("/dev/"):].split("/")
    if len(parts) != 2 or not all(parts) or parts[0] in _NOT_VGS:
        return None
    if parts[0] == "mapper":
        return _mapper_path(parts[1])
    return f"{parts[0]}/{parts[1]}"


_NOT_VGS = frozenset(("disk", "block", "char", "bus", "pts", "shm", "net", "input", "snd", "dri",
                      "cpu", "hugepages", "mqueue", "vfio", "fd"))


def _mapper_path(name: str) -> str | None:
    """device-mapper names double the dashes inside VG and LV: ``rl_build-vmvgcn--test2``."""
    i = 0
    while i < len(name):
        if name[i] == "-":
            if name[i + 1 : i + 2] == "-":
                i += 2
                continue
            vg, lv = name[:i].replace("--", "-"), name[i + 1 :].replace("--", "-")
            return f"{vg}/{lv}" if vg and lv else None
        i += 1
    return None
