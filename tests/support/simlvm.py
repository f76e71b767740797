"""LVM as data, for runbooks run in-process on this machine (no device-mapper here).

:class:`SimLvm` is a runner that answers ``vgs``/``lvs`` from its own LVs and changes them for
``lvcreate`` (also ``--snapshot``), ``lvrename``, ``lvresize``, ``lvremove`` and ``lvconvert
--mergesnapshot`` as LVM does, refusing what LVM refuses (an existing name, a missing LV, a
full VG, an unchanged size). A merge completes at once (an active origin nobody holds open:
``lvconvert --interval`` returns when the merge is done). ``qemu-img convert``/``compare`` onto
an LV only succeed (an LV has no device node without device-mapper). Every other command (locks,
kept XML, the seed ISO, ``qemu-img info``) runs for real through a LocalRunner.

With ``devices=DIR`` each LV also holds data: a file ``DIR/<lv>`` of its size stands for its
device node, and ``/dev/rl_build/`` in any other command (and in a stream's process) names that
folder instead; a snapshot is a copy of its origin's data, a merge copies it back. LV tags are
kept (``lvcreate --addtag``, ``lvchange --addtag/--deltag``) and reported in ``lv_tags``.
``moved={PATH: OTHER}`` gives a second host on this machine folders of its own (its locks).

Modelled on the guests engineer's ``tests/unit/test_guest_simlvm.py``; this one also
snapshots, resizes and merges, and fails like LVM does, so a re-run that repeats a done step
fails as it would on a host.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from kvmops.cmd import Cmd, Result
from kvmops.runners import LocalRunner
from kvmops.runners.base import CommandRecord, LineSink, Runner
from kvmops.units import parse_size

VG = "rl_build"
GiB = 1 << 30
EXTENT = 4 << 20


@dataclass(frozen=True)
class SimLv:
    name: str
    size: int
    origin: str = ""
    percent: float | None = None
    tags: tuple[str, ...] = ()

    def attr(self, lvs: dict[str, SimLv]) -> str:
        if self.origin:
            return "swi-a-s---"
        return "owi-a-s---" if any(x.origin == self.name for x in lvs.values()) else "-wi-a-----"


class SimLvm(Runner):
    """``SimLvm({"vmtest1": 10 * GiB})``: VG rl_build (100 GiB) with these LVs."""

    def __init__(self, lvs: dict[str, int] | None = None, vg_size: int = 100 * GiB,
                 devices: Path | None = None, host: str = "testhost", moved: dict[str, str] | None = None) -> None:
        super().__init__()
        self.devices = devices
        self.host = host
        self.moved = {**({f"/dev/{VG}/": f"{devices}/"} if devices is not None else {}), **(moved or {})}
        self.vg_size = vg_size
        self.lvs: dict[str, SimLv] = {n: SimLv(n, s) for n, s in (lvs or {}).items()}
        self.local = LocalRunner(host)
        self.on_change: Callable[[CommandRecord], None] | None = None
        for lv in self.lvs.values():
            self._data(lv.name, lv.size)

    def record(self, started: str, display: str, mutates: bool, returncode: int | None,
               seconds: float) -> CommandRecord:
        """Every effect is recorded here (commands, and the executor's libvirt calls);
        :attr:`on_change` sees each change that ran, right after it ran."""
        rec = super().record(started, display, mutates, returncode, seconds)
        if self.on_change is not None and rec.mutates and rec.executed:
            self.on_change(rec)
        return rec

    def snapshot(self, name: str, origin: str, size: int = GiB, percent: float = 10.0,
                 tags: tuple[str, ...] = ()) -> None:
        self.lvs[name] = SimLv(name, size, origin, percent, tags)
        if self.devices is not None:
            shutil.copyfile(self.devices / origin, self.devices / name)  # a snapshot reads as its origin

    def device(self, lv: str) -> Path:
        """The file standing for ``/dev/rl_build/<lv>`` (with ``devices``)."""
        assert self.devices is not None
        return self.devices / lv

    def _data(self, name: str, size: int | None) -> None:
        """Give LV ``name`` its data file of ``size`` bytes (sparse; kept where it was), or
        remove it (``None``)."""
        if self.devices is None:
            return
        path = self.devices / name
        if size is None:
            path.unlink(missing_ok=True)
            return
        self.devices.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as f:
            f.truncate(size)

    @property
    def free(self) -> int:
        return self.vg_size - sum(lv.size for lv in self.lvs.values())

    def state(self) -> tuple[tuple[str, int, str], ...]:
        """The LVs as the test compares them: name, size, origin."""
        return tuple(sorted((lv.name, lv.size, lv.origin) for lv in self.lvs.values()))

    def tags(self) -> dict[str, tuple[str, ...]]:
        return {lv.name: tuple(sorted(lv.tags)) for lv in self.lvs.values() if lv.tags}

    def _host_argv(self, argv: tuple[str, ...]) -> tuple[str, ...]:
        """``/dev/rl_build/X`` -> the data file of X (with ``devices``); the ``moved`` paths."""
        for old, new in self.moved.items():
            argv = tuple(a.replace(old, new) for a in argv)
        return argv

    def stream_argv(self, cmd: Cmd) -> list[str]:
        return list(self._host_argv(cmd.argv))

    # -- the runner ------------------------------------------------------------------------

    def _execute(self, cmd: Cmd, on_line: LineSink | None) -> Result:
        a = cmd.argv
        if a[0] == "vgs":
            return self._ok(cmd, self._vgs())
        if a[0] == "lvs":
            return self._ok(cmd, self._lvs())
        if a[0] in ("lvcreate", "lvrename", "lvresize", "lvremove", "lvconvert", "lvchange"):
            error = getattr(self, "_" + a[0])(a)
            return self._ok(cmd, "") if error is None else Result(cmd, self.host, 5, "", error + "\n", 0.0)
        if a[:2] in (("qemu-img", "convert"), ("qemu-img", "compare")) and any(x.startswith(f"/dev/{VG}/")
                                                                             or f"/dev/{VG}/" in x for x in a):
            return self._ok(cmd, "Images are identical.\n" if a[1] == "compare" else "")
        if not self.moved:
            return self.local._execute(cmd, on_line)
        res = self.local._execute(replace(cmd, argv=self._host_argv(a)), on_line)
        return replace(res, cmd=cmd)

    def _ok(self, cmd: Cmd, out: str) -> Result:
        return Result(cmd, self.host, 0, out, "", 0.0)

    def _vgs(self) -> str:
        row = {"vg_name": VG, "vg_size": str(self.vg_size), "vg_free": str(self.free),
               "vg_extent_size": str(EXTENT), "lv_count": str(len(self.lvs))}
        return json.dumps({"report": [{"vg": [row]}]})

    def _lvs(self) -> str:
        rows = [{"lv_name": lv.name, "vg_name": VG, "lv_attr": lv.attr(self.lvs), "lv_size": str(lv.size),
                 "origin": lv.origin, "data_percent": "" if lv.percent is None else f"{lv.percent:.2f}",
                 "lv_time": "2026-11-30 08:00:00 +0000", "lv_tags": ",".join(lv.tags)} for lv in self.lvs.values()]
        return json.dumps({"report": [{"lv": rows}]})

    # -- LVM's changes, and its refusals ---------------------------------------------------

    def _lvcreate(self, a: tuple[str, ...]) -> str | None:
        name, size = a[a.index("--name") + 1], parse_size(a[a.index("--size") + 1])
        if name in self.lvs:
            return f'  Logical Volume "{name}" already exists in volume group "{VG}"'
        if size > self.free:
            return f'  Volume group "{VG}" has insufficient free space'
        tags = _tags(a, "--addtag")
        if "--snapshot" in a:
            origin = a[-1].split("/", 1)[1]
            if origin not in self.lvs:
                return f'  Failed to find LV "{origin}"'
            self.snapshot(name, origin, size, 0.0, tags)
        else:
            self.lvs[name] = SimLv(name, size, tags=tags)
            self._data(name, size)
        return None

    def _lvchange(self, a: tuple[str, ...]) -> str | None:
        name = a[-1].split("/", 1)[1]
        lv = self.lvs.get(name)
        if lv is None:
            return f'  Failed to find logical volume "{VG}/{name}"'
        gone = set(_tags(a, "--deltag"))
        self.lvs[name] = replace(lv, tags=tuple(dict.fromkeys(
            [t for t in lv.tags if t not in gone] + list(_tags(a, "--addtag")))))
        return None

    def _lvrename(self, a: tuple[str, ...]) -> str | None:
        old, new = a[2], a[3]
        if old not in self.lvs:
            return f'  Existing logical volume "{old}" not found in volume group "{VG}"'
        if new in self.lvs:
            return f'  Logical Volume "{new}" already exists in volume group "{VG}"'
        self.lvs = {(new if n == old else n): replace(lv, name=new if n == old else n,
                                                       origin=new if lv.origin == old else lv.origin)
                    for n, lv in self.lvs.items()}
        if self.devices is not None:
            (self.devices / old).rename(self.devices / new)
        return None

    def _lvresize(self, a: tuple[str, ...]) -> str | None:
        name, size = a[-1].split("/", 1)[1], parse_size(a[a.index("--size") + 1])
        lv = self.lvs.get(name)
        if lv is None:
            return f'  Failed to find logical volume "{VG}/{name}"'
        if size == lv.size:
            return f"  New size ({size // EXTENT} extents) matches existing size ({size // EXTENT} extents)."
        if size - lv.size > self.free:
            return f'  Insufficient free space in volume group "{VG}"'
        percent = lv.percent * lv.size / size if lv.origin and lv.percent is not None else lv.percent
        self.lvs[name] = replace(lv, size=size, percent=percent)  # a grown snapshot: the same changes, more room
        if not lv.origin:
            self._data(name, size)
        return None

    def _lvremove(self, a: tuple[str, ...]) -> str | None:
        name = a[-1].split("/", 1)[1]
        if name not in self.lvs:
            return f'  Failed to find logical volume "{VG}/{name}"'
        gone = {name} | {n for n, lv in self.lvs.items() if lv.origin == name}  # lvremove takes the snapshots too
        self.lvs = {n: lv for n, lv in self.lvs.items() if n not in gone}
        for n in gone:
            self._data(n, None)
        return None

    def _lvconvert(self, a: tuple[str, ...]) -> str | None:
        name = a[a.index("--mergesnapshot") + 1].split("/", 1)[1]
        snap = self.lvs.get(name)
        if snap is None or not snap.origin:
            return f'  Failed to find snapshot "{VG}/{name}"'
        del self.lvs[name]  # merged at once: the origin now holds the snapshot's state
        if self.devices is not None:
            (self.devices / name).replace(self.devices / snap.origin)
        return None


def _tags(a: tuple[str, ...], flag: str) -> tuple[str, ...]:
    return tuple(a[i + 1] for i, x in enumerate(a[:-1]) if x == flag)
