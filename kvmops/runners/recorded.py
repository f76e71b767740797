"""The runner of a recorded site (the demo): the host as data, answering the readers' own
commands, plan-only.

A recorded-facts file (TOML, named by the site's ``[host] recorded`` key) holds what one read
of a host returned: the LVM reports, the network reports, the files that exist with their
text, other paths that exist, and the images with their ``qemu-img info``. The reports keep
the exact layout the tools print. :class:`RecordedRunner` answers the read commands of the
live readers (:mod:`kvmops.facts`: ``vgs``, ``lvs``, ``ip``, ``bridge``, ``nmcli``, ``cat``,
``test -e``, ``tail``, ``qemu-img info``, ``sfdisk -J``, and a backup place's ``ls``, ``find``
and ``head``) from those outputs, so every parser exists once and plans are made from facts
exactly as on a real host, for any valid parameters. Domains and limits come from the site's
libvirt (the demo's in-process test driver).

A file, path or image that is not recorded does not exist on that host. Any other command
(a mapping, a change) is refused with :class:`NotRecorded`, naming it: nothing ever runs on a
recorded host, and applying is refused (:class:`PlanOnly`).
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from kvmops.cmd import Cmd, Result
from kvmops.errors import ConfigError, KvmopsError, NotFound
from kvmops.runners.base import LineSink, Runner

MAX_RECORDED = 16 << 20  # bytes of a recorded-facts file read at most


class PlanOnly(KvmopsError):
    """Apply, or a command on the host, was asked of a recorded site (plan-only)."""


LVM_KEYS = ("vgs", "lvs")
NET_KEYS = ("links", "port_vlans", "connections", "devices", "profiles")
SECTIONS = {"lvm", "net", "files", "paths", "images"}


class NotRecorded(NotFound):
    """The recorded host lacks a whole kind of facts (e.g. no network reports)."""


@dataclass(frozen=True)
class Recorded:
    """The recorded host: raw reports by name, files by path, existing paths, images by path."""

    path: str
    lvm: Mapping[str, str]
    net: Mapping[str, str] | None = None
    files: Mapping[str, str] = field(default_factory=dict)
    paths: frozenset[str] = frozenset()
    images: Mapping[str, str] = field(default_factory=dict)


def load_recorded(path: str | Path) -> Recorded:
    """Read a recorded-facts file; every error names the file and the key."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_RECORDED:
            raise ConfigError(f"{p}: larger than {MAX_RECORDED} bytes: not a recorded host")
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"recorded facts file {p} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return _Reader(str(p)).recorded(data)


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, key: str, why: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {why}")

    def recorded(self, data: dict[str, Any]) -> Recorded:
        unknown = set(data) - SECTIONS
        if unknown:
            raise self.fail(", ".join(sorted(unknown)), f"unknown section(s) (allowed: {', '.join(sorted(SECTIONS))})")
        if "lvm" not in data:
            raise self.fail("lvm", "is missing: a recorded host needs its vgs and lvs reports")
        net = self.texts(data, "net", NET_KEYS) if "net" in data else None
        paths = self.table(data, "paths").get("exist", [])
        if not isinstance(paths, list) or not all(isinstance(x, str) and x.startswith("/") for x in paths):
            raise self.fail("paths.exist", "must be a list of absolute paths")
        return Recorded(
            path=self.path,
            lvm=self.texts(data, "lvm", LVM_KEYS),
            net=net,
            files=self.by_path(data, "files"),
            paths=frozenset(os.path.normpath(x) for x in paths),
            images=self.by_path(data, "images"),
        )

    def table(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        section = data.get(key, {})
        if not isinstance(section, dict):
            raise self.fail(key, "must be a table")
        return section

    def texts(self, data: dict[str, Any], key: str, names: tuple[str, ...]) -> Mapping[str, str]:
        section = self.table(data, key)
        if set(section) != set(names):
            raise self.fail(key, f"needs exactly the reports {', '.join(names)}")
        for name, text in section.items():
            if not isinstance(text, str):
                raise self.fail(f"{key}.{name}", "must be the command's output as text")
        return MappingProxyType(dict(section))

    def by_path(self, data: dict[str, Any], key: str) -> Mapping[str, str]:
        section = self.table(data, key)
        for name, text in section.items():
            if not name.startswith("/") or not isinstance(text, str):
                raise self.fail(f"{key}.{name!r}", "must be an absolute path with its text")
        return MappingProxyType({os.path.normpath(k): v for k, v in section.items()})


class RecordedRunner(Runner):
    """Answers the readers' commands from a recorded host; runs nothing."""

    keeps_reads = False

    def __init__(self, host: str, facts_file: str) -> None:
        super().__init__()
        self.host = host
        self.facts_file = facts_file
        self.recorded = load_recorded(facts_file)

    @property
    def executes_mutations(self) -> bool:
        return False

    def _execute(self, cmd: Cmd, on_line: LineSink | None) -> Result:
        if cmd.mutates:
            raise PlanOnly(f"`{cmd.display()}` would change {self.host}, a recorded site (plan-only): nothing runs "
                           "there; use the site file of a real host to apply")
        answer = _ANSWERS.get(cmd.argv[0])
        found = answer(self.recorded, cmd.argv) if answer else None
        if found is None:
            raise NotRecorded(f"{self.host} is a recorded site, plan-only ({self.facts_file}): it has no recorded "
                              f"answer for `{cmd.display()}` (only its recorded facts can be read there; a disk "
                              "cannot be mapped)")
        code, out, err = found
        return Result(cmd, self.host, code, out, err, 0.0, executed=False)  # answered from the recording


Answer = tuple[int, str, str]


def _missing(path: str) -> Answer:
    return 1, "", f"{path}: No such file or directory\n"


def _norm(path: str) -> str:
    return os.path.normpath(path) if path.startswith("/") else path


def _exists(rec: Recorded, path: str) -> bool:
    want = _norm(path)
    known = (*rec.files, *rec.paths, *rec.images)
    return any(k == want or k.startswith(want.rstrip("/") + "/") for k in known)


def _lvs(rec: Recorded, argv: tuple[str, ...]) -> Answer:
    vg = argv[-1] if not argv[-1].startswith("-") and argv[-2] != "-o" and argv[-2] != "--units" else None
    if vg is None:
        return 0, rec.lvm["lvs"], ""
    data = json.loads(rec.lvm["lvs"])
    for report in data.get("report", []):
        report["lv"] = [lv for lv in report.get("lv", []) if lv.get("vg_name") == vg]
    return 0, json.dumps(data), ""


def _net(key: str) -> Callable[[Recorded, tuple[str, ...]], Answer | None]:
    def answer(rec: Recorded, _argv: tuple[str, ...]) -> Answer | None:
        if rec.net is None:
            raise NotRecorded(f"{rec.path} records no network facts ([net]): this recorded host cannot plan "
                              "bridges")
        return 0, rec.net[key], ""

    return answer


def _ip(rec: Recorded, argv: tuple[str, ...]) -> Answer | None:
    if argv[1:] == ("-j", "-d", "address", "show"):
        return _net("links")(rec, argv)
    if argv[1:5] == ("-j", "link", "show", "dev"):
        return (0, "[]", "") if rec.net is not None and f'"ifname":"{argv[5]}"' in rec.net["links"] else \
            (1, "", f'Device "{argv[5]}" does not exist.\n')
    return None


def _nmcli(rec: Recorded, argv: tuple[str, ...]) -> Answer | None:
    if argv[-2:] == ("connection", "show"):
        return _net("connections")(rec, argv)
    if argv[-1] == "device":
        return _net("devices")(rec, argv)
    if "uuid" in argv:
        return _net("profiles")(rec, argv)
    return None


def _cat(rec: Recorded, argv: tuple[str, ...]) -> Answer | None:
    if len(argv) != 3 or argv[1] != "--":
        return None
    text = rec.files.get(_norm(argv[2]))
    return (0, text, "") if text is not None else _missing(argv[2])


def _test(rec: Recorded, argv: tuple[str, ...]) -> Answer | None:
    return ((0 if _exists(rec, argv[2]) else 1), "", "") if argv[1:2] == ("-e",) and len(argv) == 3 else None


def _tail(rec: Recorded, argv: tuple[str, ...]) -> Answer | None:
    if argv[1] != "-n" or argv[3] != "--":
        return None
    text = rec.files.get(_norm(argv[4]))
    if text is None:
        return _missing(argv[4])
    return 0, "".join(text.splitlines(keepends=True)[-int(argv[2]):]), ""


def _qemu_img(rec: Recorded, argv: tuple[str, ...]) -> Answer | None:
    if argv[1] != "info":
        return None
    text = rec.images.get(_norm(argv[-1]))
    if text is not None:
        return 0, text, ""
    have = ", ".join(sorted(rec.images)) or "none"
    return 1, "", f"qemu-img: Could not open '{argv[-1]}': No such file or directory (recorded images: {have})\n"


def _sfdisk(rec: Recorded, argv: tuple[str, ...]) -> Answer | None:
    if argv[1] != "-J":
        return None
    if _norm(argv[2]) in rec.images:
        return 0, '{"partitiontable": {"label": "dos", "partitions": []}}', ""
    return None if argv[2].startswith("/dev/") else (1, "", f"sfdisk: cannot open {argv[2]}: No such file\n")


def _ls(rec: Recorded, argv: tuple[str, ...]) -> Answer | None:
    if argv[1:3] != ("-1d", "--"):
        return None
    found = [p for p in argv[3:] if _exists(rec, p)]
    return (0 if len(found) == len(argv) - 3 else 2), "".join(p + "\n" for p in found), ""


def _find(rec: Recorded, argv: tuple[str, ...]) -> Answer | None:
    """``find DIR -mindepth 1 -maxdepth 3 -printf '%y\\t%s\\t%P\\0'`` over the recorded files."""
    top = _norm(argv[1]).rstrip("/") + "/"
    files = {p: len(t.encode()) for p, t in rec.files.items() if p.startswith(top)}
    files.update({p: 0 for p in rec.paths if p.startswith(top) and p not in files})
    if not files and _norm(argv[1]) not in rec.paths:
        return 1, "", f"find: '{argv[1]}': No such file or directory\n"
    rels = {p.removeprefix(top): n for p, n in files.items()}
    dirs = {"/".join(r.split("/")[:n]) for r in rels for n in (1, 2) if r.count("/") >= n}
    lines = [f"d\t0\t{d}\0" for d in sorted(dirs)] + [f"f\t{n}\t{r}\0" for r, n in sorted(rels.items())
                                                     if r.count("/") <= 2]
    return 0, "".join(lines), ""


def _head(rec: Recorded, argv: tuple[str, ...]) -> Answer | None:
    """``head -c BYTES -- FILE``: one file's first bytes."""
    if len(argv) != 5 or argv[1] != "-c" or argv[3] != "--" or not argv[2].isdigit():
        return None
    text = rec.files.get(_norm(argv[4]))
    if text is None:
        return _missing(argv[4])
    return 0, text.encode()[:int(argv[2])].decode(errors="replace"), ""


_ANSWERS: dict[str, Callable[[Recorded, tuple[str, ...]], Answer | None]] = {
    "vgs": lambda rec, _a: (0, rec.lvm["vgs"], ""), "lvs": _lvs, "ip": _ip,
    "bridge": lambda rec, a: _net("port_vlans")(rec, a) if a[1:] == ("-j", "vlan", "show") else None,
    "nmcli": _nmcli, "cat": _cat, "test": _test, "tail": _tail, "qemu-img": _qemu_img, "sfdisk": _sfdisk,
    "ls": _ls, "find": _find, "head": _head,
}
