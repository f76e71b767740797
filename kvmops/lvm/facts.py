"""Facts from LVM's JSON reports, in bytes, as frozen dataclasses (pure parsers).

The commands that produce them are :func:`lvs_cmd` and :func:`vgs_cmd`, or both reports in
one command, :func:`report_cmd`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from kvmops.cmd import Cmd, read
from kvmops.errors import KvmopsError
from kvmops.units import parse_size

LV_FIELDS = "lv_name,vg_name,lv_attr,lv_size,origin,data_percent,lv_time,lv_tags"
VG_FIELDS = "vg_name,vg_size,vg_free,vg_extent_size,lv_count"


class ReportError(KvmopsError):
    """LVM printed something that is not the report kvmops asked for."""


@dataclass(frozen=True)
class LV:
    """One logical volume. ``attr`` is LVM's 10-character attribute string, decoded below."""

    name: str
    vg: str
    attr: str
    size: int
    origin: str
    data_percent: float | None
    created: datetime | None
    hidden: bool = False
    tags: tuple[str, ...] = ()  # LVM's tags (``lvcreate --addtag``); a report without lv_tags has none

    @property
    def path(self) -> str:
        """``VG/LV``, the one form kvmops passes to LVM commands."""
        return f"{self.vg}/{self.name}"

    @property
    def is_snapshot(self) -> bool:
        return self.attr[:1] in ("s", "S")

    @property
    def is_origin(self) -> bool:
        return self.attr[:1] in ("o", "O")

    @property
    def merging(self) -> bool:
        """An origin being merged into (O) or a snapshot being merged (S)."""
        return self.attr[:1] in ("O", "S")

    @property
    def active(self) -> bool | None:
        """True/False, or None when LVM cannot tell (activation disabled: 'X')."""
        return _flag(self.attr, 4, "a")

    @property
    def open(self) -> bool | None:
        """True when mounted or in use (a running guest holds its disk open)."""
        return _flag(self.attr, 5, "o")

    @property
    def invalid(self) -> bool:
        """A snapshot that overflowed (state I or S): its data is lost."""
        return self.is_snapshot and self.attr[4:5] in ("I", "S")


def _flag(attr: str, pos: int, char: str) -> bool | None:
    value = attr[pos : pos + 1]
    if value in ("X", ""):
        return None
    return value == char


@dataclass(frozen=True)
class VG:
    """One volume group: size and free space in bytes."""

    name: str
    size: int
    free: int
    extent_size: int
    lv_count: int


def lvs_cmd(vg: str | None = None) -> Cmd:
    """``lvs --reportformat json -a -o lv_name,... --units b --nosuffix [VG]``."""
    argv = ["lvs", "--reportformat", "json", "-a", "-o", LV_FIELDS, "--units", "b", "--nosuffix"]
    if vg:
        argv.append(vg)
    return read(*argv)


def vgs_cmd(vg: str | None = None) -> Cmd:
    """``vgs --reportformat json -o vg_name,... --units b --nosuffix [VG]``."""
    argv = ["vgs", "--reportformat", "json", "-o", VG_FIELDS, "--units", "b", "--nosuffix"]
    if vg:
        argv.append(vg)
    return read(*argv)


def report_cmd() -> Cmd:
    """``lvm fullreport --reportformat json -a --units b --nosuffix --configreport vg -o ...``:
    every VG and all its LVs (hidden ones too, as ``lvs -a``) in one LVM command, with the
    fields of :func:`vgs_cmd` and :func:`lvs_cmd`; :func:`parse_vgs` and :func:`parse_lvs` read
    it as they read those two (its PV and segment reports carry one small field each)."""
    return read("lvm", "fullreport", "--reportformat", "json", "-a", "--units", "b", "--nosuffix",
                "--configreport", "vg", "-o", VG_FIELDS, "--configreport", "lv", "-o", LV_FIELDS,
                "--configreport", "pv", "-o", "pv_name", "--configreport", "pvseg", "-o", "pvseg_start",
                "--configreport", "seg", "-o", "seg_start")


def _rows(text: str, kind: str) -> list[dict[str, str]]:
    try:
        data = json.loads(text)
        rows: list[dict[str, str]] = []
        for report in data["report"]:
            rows.extend(report.get(kind, []))
        return rows
    except (ValueError, KeyError, TypeError) as exc:
        raise ReportError(f"not an LVM JSON report of {kind}: {exc}: {text[:200]!r}") from None


def _int(value: str) -> int:
    """Bytes from a report value: ``"536870912"``, or a unit form such as ``"<100.00g"``."""
    if not value:
        return 0
    if value.isdigit():
        return int(value)
    return parse_size(value, default_unit="b")


def _time(value: str) -> datetime | None:
    """``2026-11-25 21:31:19 +0000`` (fromisoformat: strptime is 10x slower on big reports)."""
    if not value:
        return None
    date, _, zone = value.rpartition(" ")
    return datetime.fromisoformat(f"{date}{zone}")


def _tags(value: str) -> tuple[str, ...]:
    """``"a,b"`` (LVM lists an LV's tags comma-separated, sorted) -> ("a", "b")."""
    return tuple(t for t in value.split(",") if t)


def parse_lvs(text: str) -> tuple[LV, ...]:
    """LVs from ``lvs --reportformat json --units b --nosuffix`` (hidden ones unbracketed)."""
    out = []
    for row in _rows(text, "lv"):
        name = row["lv_name"]
        hidden = name.startswith("[") and name.endswith("]")
        percent = row.get("data_percent", "")
        out.append(
            LV(
                name=name.strip("[]"),
                vg=row["vg_name"],
                attr=row["lv_attr"],
                size=_int(row["lv_size"]),
                origin=row.get("origin", "").strip("[]"),
                data_percent=float(percent) if percent else None,
                created=_time(row.get("lv_time", "")),
                hidden=hidden,
                tags=_tags(row.get("lv_tags", "")),
            )
        )
    return tuple(out)


def parse_vgs(text: str) -> tuple[VG, ...]:
    """VGs from ``vgs --reportformat json --units b --nosuffix``."""
    return tuple(
        VG(
            name=row["vg_name"],
            size=_int(row["vg_size"]),
            free=_int(row["vg_free"]),
            extent_size=_int(row.get("vg_extent_size", "")),
            lv_count=_int(row.get("lv_count", "")),
        )
        for row in _rows(text, "vg")
    )
