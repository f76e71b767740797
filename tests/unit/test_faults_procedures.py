"""Faults in every mutating runbook, through the one executor, libvirt calls included.

Each runbook runs in this process (tests/support/inproc.py: its own cells, one host that
outlives the run) on libvirt's test driver with LVM simulated (tests/support/simlvm.py: this
machine has no device-mapper; creating, renaming, resizing and removing on real LVM metadata
are tests/integration/test_faults_executor.py's). A clean run records every change it makes
(commands and libvirt calls alike, in the runner's record), the step it belongs to and the
host's state after it. Then, for each change in turn, a run where it fails **before** it runs
(``$KVMOPS_FAULT_WHEN=before``) and one where it fails **after** it ran:

- the run fails naming that change's step, with the injected fault as the cause;
- no lock is left;
- the host is exactly as the clean run left it after the changes before it (before), or
  including it (after);
- a re-run without the fault reaches the clean run's end state, repeating no change that was
  done: the changes it makes are exactly the clean run's remaining ones (a change that ran and
  then reported failure counts as done).

lv-backup and lv-backup-restore run with LVs that hold data (``SimLvm(devices=...)``: a file
stands for each LV's device node) and a backup place that is a folder of the test (its host's
commands go through the same runner, so they are counted, recorded and faulted alike): their
state includes the LVs' data, tags and the place's files.

Where the test driver cannot do what a host does, a stand-in says so: it has no serial console
(:class:`ConsoleVirt` shows a login prompt for a running guest) and cannot eject a CD-ROM from
a running guest (guest-create with setup=nocloud ends at retiring the seed, its last phase: that
is asserted; a re-run that finds the guest running retires nothing and ends ok).
"""

from __future__ import annotations

import hashlib
import random
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kvmops.errors import LibvirtError
from kvmops.facts import place as place_mod
from kvmops.host import Host
from kvmops.runners.base import CommandRecord
from kvmops.runners.faults import FAULT_EXIT
from kvmops.site import load_site
from kvmops.transfer.manifest import MANIFEST, DiskBackup, Manifest
from kvmops.virt import LineSink, Virt
from tests.support.inproc import CellRun, KeptHost, current_step, run_runbook
from tests.support.simlvm import EXTENT, GiB, SimLvm
from tests.unit.test_guest_testbed import RUNNING, SHUTOFF, SITE_TOML, write_node, write_site

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc+ZQ5bnkc8Y9Uvs6yDuB1z2oQ1pL0U8kM9gpqCYQ2n admin@example"
SNAP = "vmt1-20261130T0800Z"
OLD = "20261129T081530Z"  # a backup of the day before
FROZEN = datetime(2026, 11, 30, 8, 15, 30, tzinfo=UTC)


class ConsoleVirt(Virt):
    """The test driver has no console streams: a running guest shows a login prompt."""

    def read_console(self, name: str, seconds: float, on_line: LineSink | None = None,
                     until: Callable[[str], bool] | None = None) -> str:
        if not self.info(name).active:
            raise LibvirtError(f"guest {name} is not running")
        return f"\n{name} login: "


# -- one test's host ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A runbook, its parameters, and the host it starts from."""

    runbook: str
    params: dict[str, Any]
    confirm: str = ""
    lvs: dict[str, int] = field(default_factory=dict)
    snapshots: tuple[tuple[str, str, float], ...] = ()  # (name, origin, percent)
    domains: tuple[tuple[str, str, int], ...] = ()  # (name, disk, runstate)
    autostart: tuple[str, ...] = ()
    kept_xml: tuple[str, ...] = ()  # guests whose XML is kept in xml_dir
    end: tuple[str, str] | None = None  # a run ends failing at (step, because): the test driver's limit
    rerun_confirm: Callable[[World], str] | None = None  # what a re-run must confirm on the host it finds
    repeats: tuple[str, ...] = ()  # changes whose completion no fact shows: a re-run before define does them again
    again: tuple[str, ...] = ()  # changes a re-run always runs again (done or not), e.g. a transfer checked again
    done_end: tuple[str, str, str] | None = None  # (change, step, because): once it ran, a re-run refuses there
    ok_after: str | None = None  # once this change ran, a re-run ends ok before ``end`` (guest-create: the guest
    # runs already, so the re-run does not start it, verifies no boot and keeps the seed, as its plan says)
    refused: tuple[str, str, str, str] | None = None  # (change, until, step, because): once the change ran and
    # while the later one has not, a re-run refuses at step, changing nothing: a person must look first
    data: bool = False  # the LVs hold data (random, of their size); lv-backup*: the place is a folder of the world
    peer: bool = False  # the runbook's target="peer" is a second host (no guests; LVs with data; no NIC bridges)
    place: Callable[[Path, Path], None] | None = None  # fills the place (its folder, a scratch folder) first
    undone: Callable[[dict[str, Any], dict[str, Any], str, str], dict[str, Any]] | None = None  # (state after
    # the done changes, state before the run, the failing change, when) -> the state its way out leaves
    rerun: Callable[[list[str], int, str], list[str]] | None = None  # (the clean run's changes, the failing
    # one's number, when) -> a re-run's changes, for a run whose way out undoes done changes


@dataclass
class World:
    tmp: Path
    sim: SimLvm
    host: KeptHost
    peer: World | None = None  # the target host of a runbook that works on two
    log: list[CommandRecord] = field(default_factory=list)  # the changes that ran (on both hosts), in order
    watch: Callable[[CommandRecord], None] | None = None

    def __post_init__(self) -> None:
        for sim in (self.sim, *((self.peer.sim,) if self.peer else ())):
            sim.on_change = self._seen

    def _seen(self, rec: CommandRecord) -> None:
        self.log.append(rec)
        if self.watch is not None:
            self.watch(rec)

    @property
    def place(self) -> Path:
        return self.tmp / "place"

    def state(self) -> dict[str, Any]:
        """What the changes change: LVs, guests (state, autostart, definition), kept files; with
        data, also the LVs' data and tags and the place's files."""
        doms = {d.name: (d.state, d.autostart, self.same(_xml(d.inactive_xml))) for d in self.host.virt.domains()}
        kvm = self.tmp / "kvm"
        files = {p.name: self.same(_xml(p.read_text())) if ".xml" in p.name else p.stat().st_size
                 for p in sorted(kvm.iterdir())} if kvm.is_dir() else {}
        state: dict[str, Any] = {"lvs": self.sim.state(), "domains": doms, "files": files}
        if self.sim.devices is not None:
            state["data"] = {lv: _sha256(self.sim.device(lv)) for lv in sorted(self.sim.lvs)}
            state["tags"] = self.sim.tags()
            state["place"] = {str(p.relative_to(self.place)): _placed(p) for p in sorted(self.place.rglob("*"))}
        if self.peer is not None:
            state["peer"] = self.peer.state()
        return state

    def same(self, text: str) -> str:
        """Paths in this world's folder, and UUIDs libvirt made up, as in any other world."""
        return re.sub(r"<uuid>[0-9a-f-]*", "<uuid>", text.replace(str(self.tmp), "WORLD"))

    def changes(self) -> list[str]:
        """The changes that ran and succeeded (one the test driver cannot make is no change)."""
        return [self.same(r.command) for r in self.log if r.returncode == 0]

    def broken(self) -> list[str]:
        """The changes the fault made fail."""
        return [self.same(r.command) for r in self.log if r.returncode == FAULT_EXIT]

    def locks(self) -> list[str]:
        """The locks still held: an owner file says one is (the ``*.lock`` files are flock's
        and stay, as /run/lock/*.lock do; a lock ends with its run, kvmops.lock)."""
        locks = self.tmp / "locks"
        mine = sorted(p.name for p in locks.iterdir() if p.suffix != ".lock") if locks.is_dir() else []
        return mine + (self.peer.locks() if self.peer else [])

    def shut(self) -> None:
        self.host.shut()
        if self.peer is not None:
            self.peer.host.shut()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _placed(path: Path) -> str | int:
    """A file at the place as compared: a manifest and its signature by their size (it says when
    it was finished), any other file by its data; a folder by its mode."""
    if path.is_dir():
        return oct(path.stat().st_mode & 0o777)
    return path.stat().st_size if path.name in ("manifest.json", "manifest.json.sig") else _sha256(path)


def _xml(text: str) -> str:
    """A definition without what libvirt makes up anew on each node: UUIDs, MACs."""
    return re.sub(r"<uuid>[^<]*</uuid>|<mac address=['\"][^'\"]*['\"]\s*/>", "", text)


def make_peer(tmp: Path, locks: Path) -> World:
    """The second host: site ``peerhost``, a node without guests, LVM with data, its own locks."""
    tmp.mkdir(parents=True)
    uri = write_node(tmp / "node.xml", ())
    (tmp / "site.toml").write_text(SITE_TOML.format(uri=uri, xml_dir=tmp / "kvm").replace(
        'name = "testhost"', 'name = "peerhost"'))
    sim = SimLvm({}, devices=tmp / "dev", host="peerhost", moved={str(locks): str(tmp / "locks")})
    host = KeptHost(load_site(tmp / "site.toml"), sim, uri)
    host._virt = ConsoleVirt(uri)
    return World(tmp, sim, host)


def make_world(tmp: Path, case: Case, image: Path) -> World:
    tmp.mkdir(parents=True)
    nodes = tuple((name, 1048576, 1, disk, state) for name, disk, state in case.domains)
    uri = write_node(tmp / "node.xml", nodes)
    if case.peer:  # the target's bridges would be this machine's: the guest has no NIC
        node = tmp / "node.xml"
        node.write_text(re.sub(r"<interface .*?</interface>", "", node.read_text(), flags=re.S))
    site = write_site(tmp, uri)
    sim = SimLvm(case.lvs, devices=tmp / "dev" if case.data else None)
    for name, size in case.lvs.items() if case.data else ():
        sim.device(name).write_bytes(random.Random(name).randbytes(EXTENT) * (size // EXTENT))
    for name, origin, percent in case.snapshots:
        sim.snapshot(name, origin, GiB, percent)
    if case.place is not None:
        case.place(tmp / "place", tmp / "scratch")
    host = KeptHost(site, sim, uri)
    host._virt = ConsoleVirt(uri)
    for name in case.autostart:
        host.virt.set_autostart(name, True)
    for name in case.kept_xml:
        (tmp / "kvm").mkdir(exist_ok=True)
        (tmp / "kvm" / f"{name}.xml").write_text(host.virt.inactive_xml(name))
    return World(tmp, sim, host, make_peer(tmp / "peer", tmp / "locks") if case.peer else None)


# -- the cases ---------------------------------------------------------------------------------

def backup_undone(done: dict[str, Any], start: dict[str, Any], failing: str, when: str) -> dict[str, Any]:
    """lv-backup's way out: its snapshots are removed (unless removing one is what failed), a
    guest that ran is started again; what it wrote at the place stays (without a manifest it is
    never used)."""
    snaps = {name for name, _, origin in done["lvs"] if origin} if not left_snapshot(failing, when) else set()
    return {**done, "lvs": tuple(lv for lv in done["lvs"] if lv[0] not in snaps),
            "data": {k: v for k, v in done["data"].items() if k not in snaps},
            "tags": {k: v for k, v in done["tags"].items() if k not in snaps},
            "domains": {k: (start["domains"][k][0], *v[1:]) for k, v in done["domains"].items()}}


def left_snapshot(failing: str, when: str) -> bool:
    return failing.startswith("lvremove rl_build/vmt1-") and when == "before"  # a snapshot's removal


def backup_rerun(clean: list[str], n: int, when: str) -> list[str]:
    """A failed backup was undone: a re-run makes it again, all of it, but for an old backup
    retention removed already, and with the snapshot first that the failure left."""
    done = n if when == "after" else n - 1
    again = [c for i, c in enumerate(clean) if i >= done or not c.startswith("rm ")]
    return [again[0], clean[n - 1], *again[1:]] if left_snapshot(clean[n - 1], when) else again


def restore_rerun(clean: list[str], n: int, when: str) -> list[str]:
    """A re-run does what is left; it streams again into an LV the failed run left unfinished
    (not yet tagged restored), never into one tagged restored."""
    done = n if when == "after" else n - 1
    restored = next(i for i, c in enumerate(clean) if c.startswith("lvchange --deltag kvmops-restore-incomplete"))
    return [c for i, c in enumerate(clean) if i >= done or (done <= restored and c.startswith(STREAM))]


def t1_backup(place: Path, scratch: Path) -> None:
    """A complete backup of guest t1 (one disk of two extents, compressed with zstd) from another host."""
    scratch.mkdir()
    raw = scratch / "vmt1"
    raw.write_bytes(random.Random("t1").randbytes(EXTENT) * 2)
    folder = place / "t1" / OLD
    folder.mkdir(parents=True, mode=0o700)
    packed = folder / "vmt1.raw.zst"
    subprocess.run(["zstd", "--quiet", "-o", str(packed), str(raw)], check=True)
    disk = DiskBackup("vda", "vmt1", 2 * EXTENT, packed.name, _sha256(raw), _sha256(packed), packed.stat().st_size)
    xml = T1_XML.format(disk=T1)
    m = Manifest("t1", OLD, "otherhost", "rl_build", "vm", xml, {}, "zstd", (disk,), "", "")
    (folder / MANIFEST).write_text(m.to_json())


MOVE_STARTED = "--addtag kvmops-move-started "  # the copy is the newer guest from here on: the source stays off


def move_undone(done: dict[str, Any], start: dict[str, Any], failing: str, when: str) -> dict[str, Any]:
    """guest-move's way out: the source's snapshots are removed (unless removing one is what
    failed); the source guest is started again if it ran, unless its copy has started."""
    snaps = {name for name, _, origin in done["lvs"] if origin} if not left_snapshot(failing, when) else set()
    started = any(MOVE_STARTED.strip().split()[1] in t or "kvmops-move-booted" in t
                  for t in done["peer"]["tags"].get("vmt1", ()))
    doms = {k: ((start["domains"][k][0] if not started else v[0]), *v[1:]) for k, v in done["domains"].items()}
    return {**done, "lvs": tuple(lv for lv in done["lvs"] if lv[0] not in snaps),
            "data": {k: v for k, v in done["data"].items() if k not in snaps},
            "tags": {k: v for k, v in done["tags"].items() if k not in snaps}, "domains": doms}


def move_rerun(clean: list[str], n: int, when: str) -> list[str]:
    """After a failure undone, a re-run shuts the source down and snapshots it again and checks
    the copy again (the done copy is not streamed again: its sha256 is the snapshot's); once the
    copy started, only what is left."""
    done = n if when == "after" else n - 1
    restarted = done <= next(i for i, c in enumerate(clean) if MOVE_STARTED in c)
    again = ("virsh shutdown ", "lvcreate --snapshot ", "lvremove rl_build/vmt1-", "testhost$ dd ")
    out = [c for i, c in enumerate(clean) if i >= done or (restarted and c.startswith(again))]
    return [out[0], clean[n - 1], *out[1:]] if left_snapshot(clean[n - 1], when) else out


def old_backup(place: Path, scratch: Path) -> None:
    """A complete backup of t1 taken a day before, for retention to remove."""
    folder = place / "t1" / OLD
    folder.mkdir(parents=True, mode=0o700)
    (folder / "vmt1.raw.zst").write_bytes(b"old")
    disk = DiskBackup("vda", "vmt1", 2 * EXTENT, "vmt1.raw.zst", "0" * 64, "1" * 64, 3)
    m = Manifest("t1", OLD, "testhost", "rl_build", "vm", "<domain/>", {}, "zstd", (disk,), "", "")
    (folder / MANIFEST).write_text(m.to_json())


T1 = "/dev/rl_build/vmt1"
T1_XML = """<domain type='kvm'>
  <name>t1</name>
  <memory unit='KiB'>1048576</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw'/>
      <source dev='{disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
"""
COPY = ("qemu-img convert ",)  # the image copied onto the LV: nothing on the host says it was complete
STREAM = ("local$ zstd --decompress ",)  # a re-run streams again into an LV not tagged restored (never into one
# that is: a guest may run from it)
SEED = ("install -D -m 0600 /dev/null ", "openssl base64 ")  # the seed ISO is written anew each run
CASES = {
    "lv-create": Case("lv-create", {"guest": "t1", "size": "1g"}),
    "lv-resize-grow": Case("lv-resize", {"guest": "t1", "size": "2g"}, lvs={"vmt1": GiB}),
    "lv-resize-shrink": Case("lv-resize", {"guest": "t1", "size": "1g"}, "rl_build/vmt1", lvs={"vmt1": 2 * GiB}),
    "lv-remove": Case("lv-remove", {"lv": "vmt1"}, "rl_build/vmt1", lvs={"vmt1": GiB}),
    "lv-snapshot": Case("lv-snapshot", {"guest": "t1", "size": "1g"}, lvs={"vmt1": 10 * GiB}),
    "lv-restore": Case("lv-restore", {"guest": "t1", "interval": 1}, f"rl_build/{SNAP}", lvs={"vmt1": 10 * GiB},
                       snapshots=((SNAP, "vmt1", 20.0),),
                       done_end=("lvconvert --mergesnapshot", "Check preconditions", "rollback is done")),
    "lv-rename": Case("lv-rename", {"lv": "vmt1", "new_name": "vmt1b"}, "t1", lvs={"vmt1": 10 * GiB},
                      domains=(("t1", T1, SHUTOFF),)),
    "snapshot-filling-up": Case("snapshot-filling-up", {"threshold": 80.0, "by": "1g"},
                                lvs={"vmt1": 10 * GiB, "vmt2": 10 * GiB},
                                snapshots=((SNAP, "vmt1", 90.0), ("vmt2-20261130T0800Z", "vmt2", 95.0))),
    "guest-lifecycle-start": Case("guest-lifecycle", {"guest": "t1", "action": "start", "seconds": 0.0},
                                  lvs={"vmt1": GiB}, domains=(("t1", T1, SHUTOFF),)),
    "guest-lifecycle-shutdown": Case("guest-lifecycle", {"guest": "t1", "action": "shutdown", "timeout": 5.0},
                                     lvs={"vmt1": GiB}, domains=(("t1", T1, RUNNING),)),
    "guest-lifecycle-destroy": Case("guest-lifecycle", {"guest": "t1", "action": "destroy"}, "t1",
                                    lvs={"vmt1": GiB}, domains=(("t1", T1, RUNNING),)),
    "guest-lifecycle-autostart": Case("guest-lifecycle", {"guest": "t1", "action": "autostart"},
                                      lvs={"vmt1": GiB}, domains=(("t1", T1, SHUTOFF),)),
    "guest-remove": Case("guest-remove", {"guest": "t1", "remove_disks": True,
                                          "confirm_disks": f"rl_build/{SNAP},rl_build/vmt1"}, "t1",
                         lvs={"vmt1": 10 * GiB}, snapshots=((SNAP, "vmt1", 5.0),),
                         domains=(("t1", T1, SHUTOFF),), kept_xml=("t1",)),
    "guest-create-none": Case("guest-create", {"guest": "web2", "vlans": "2368", "memory": "1g", "vcpus": 1,
                                               "size": "1g", "setup": "none", "console_seconds": 1.0},
                              rerun_confirm=lambda w: "rl_build/vmweb2" if "vmweb2" in w.sim.lvs else "",
                              repeats=COPY),
    "guest-create-nocloud": Case("guest-create", {"guest": "web2", "vlans": "2368", "memory": "1g", "vcpus": 1,
                                                  "size": "1g", "setup": "nocloud", "keys": KEY,
                                                  "console_seconds": 1.0},
                                 end=("Create the guest", "not supported by the connection driver"),
                                 ok_after="virsh start ",
                                 rerun_confirm=lambda w: "rl_build/vmweb2" if "vmweb2" in w.sim.lvs else "",
                              repeats=COPY + SEED),
    "guest-resize-in-guest": Case("guest-resize", {"guest": "t1", "size": "2g", "offline": False},
                                  lvs={"vmt1": GiB}, domains=(("t1", T1, SHUTOFF),)),
    "lv-backup": Case("lv-backup", {"guest": "t1", "keep": 1, "restart": True, "shutdown_timeout": 5.0}, "t1",
                      lvs={"vmt1": 2 * EXTENT},
                      domains=(("t1", T1, RUNNING),), data=True, place=old_backup, undone=backup_undone,
                      rerun=backup_rerun),
    "lv-backup-restore": Case("lv-backup-restore", {"guest": "t1", "new_name": "t1copy", "define": True,
                                                    "start": True, "boot_seconds": 5.0,
                                                    "allow_unsigned": True},  # t1_backup writes no signature
                              data=True, place=t1_backup, rerun=restore_rerun),
    "guest-move": Case("guest-move", {"guest": "t1", "target": "peer", "boot_seconds": 5.0, "shutdown_timeout": 5.0,
                                      "remove_source_disks": True, "confirm_disks": "rl_build/vmt1"}, "t1",
                       lvs={"vmt1": 2 * EXTENT}, domains=(("t1", T1, RUNNING),), kept_xml=("t1",), data=True,
                       peer=True, undone=move_undone, rerun=move_rerun,
                       refused=("virsh start t1", "lvchange --deltag kvmops-move-started", "Check both hosts",
                                "its boot was never verified")),
    "host-recovery": Case("host-recovery", {"order": "t2", "boot_seconds": 5.0}, lvs={"vmt1": GiB, "vmt2": GiB},
                          domains=(("t1", T1, SHUTOFF), ("t2", "/dev/rl_build/vmt2", SHUTOFF)),
                          autostart=("t1", "t2")),
}


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """A real raw image with a partition table: qemu-img reads it (the copy itself is simulated)."""
    path = tmp_path / "cloud.raw"
    with path.open("wb") as f:
        f.truncate(64 << 20)
    subprocess.run(["sfdisk", "-q", str(path)], input="label: dos\ntype=83\n", text=True, check=True,
                   capture_output=True)
    return path


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """lv-snapshot names its snapshot after the minute it runs (``datetime.now`` in its cell):
    one minute for the clean run, the failed one and the re-run, as for a re-run right away."""
    import datetime as dt

    class Frozen(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> Frozen:
            return cls.fromtimestamp(FROZEN.timestamp(), tz)

    monkeypatch.setattr(dt, "datetime", Frozen)


# -- the harness -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    display: str
    step: str
    after: dict[str, Any]  # the host's state right after it


def run(w: World, case: Case, monkeypatch: pytest.MonkeyPatch, image: Path, *, confirm: str | None = None,
        fault: int | None = None, when: str = "before") -> CellRun:
    w.sim.records.clear()
    w.log.clear()
    params = {**case.params, **({"image": str(image)} if case.runbook == "guest-create" else {})}
    if case.runbook.startswith("lv-backup"):  # the place: a folder of this world, reached through its runner
        params["place"] = str(w.place)
        monkeypatch.setattr(place_mod, "place_host", lambda where, base, apply: Host(
            replace(base, name=where.label, ssh="", recorded=""), w.sim, ""))
    return run_runbook(case.runbook, params, w.host, monkeypatch, confirm=case.confirm if confirm is None else confirm,
                       fault=fault, when=when, peers={"peer": w.peer.host} if w.peer else None)


def assert_reached_end(case: Case, res: CellRun, where: str = "clean run") -> None:
    if case.end is None:
        assert res.ok, f"{where}: a re-run failed at {res.step}: {res.error}\n{res.output[-3000:]}"
    else:
        assert not res.ok and res.step == case.end[0] and case.end[1] in str(res.error), (res.step, res.error)


@pytest.fixture
def worlds(tmp_path: Path, image: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Case], World]]:
    made: list[World] = []

    def make(case: Case) -> World:
        w = make_world(tmp_path / f"w{len(made)}", case, image)
        monkeypatch.setenv("KVMOPS_LOCK_DIR", str(w.tmp / "locks"))
        made.append(w)
        return w

    yield make
    for w in made:
        w.shut()


def _index(trail: list[Change], start: str) -> int:
    """The number (from 1) of the first change that starts with ``start``."""
    return next(i for i, c in enumerate(trail, 1) if c.display.startswith(start))


@pytest.mark.usefixtures("frozen_clock")
@pytest.mark.parametrize("name", sorted(CASES))
def test_each_change_fails_before_and_after_it_ran_and_a_rerun_converges(
        name: str, worlds: Callable[[Case], World], monkeypatch: pytest.MonkeyPatch, image: Path) -> None:
    case = CASES[name]
    clean = worlds(case)
    trail: list[Change] = []

    def seen(rec: CommandRecord) -> None:
        if rec.returncode == 0:
                trail.append(Change(clean.same(rec.command), current_step(), clean.state()))

    start = clean.state()
    clean.watch = seen
    res = run(clean, case, monkeypatch, image)
    clean.watch = None
    assert_reached_end(case, res)
    goal = clean.state()
    assert trail and clean.locks() == []
    states = [start] + [c.after for c in trail]
    for n, change in enumerate(trail, 1):
        for when in ("before", "after"):
            w = worlds(case)
            failed = run(w, case, monkeypatch, image, fault=n, when=when)
            where = f"{name}: change {n} ({change.display}) failing {when} it ran"
            assert not failed.ok and failed.step == change.step, (where, failed.step, failed.error)
            assert "injected fault" in str(failed.error), (where, failed.error)
            (broken,) = w.broken()
            assert broken == change.display, where
            assert w.locks() == [], where
            done = n if when == "after" else n - 1
            defined = any(c.display.startswith("virsh define ") for c in trail[:done])
            again_too = [] if defined else [i for i, c in enumerate(trail[:done])
                                            if c.display.startswith(case.repeats or ("\0",))]
            again_too += [i for i, c in enumerate(trail[:done]) if c.display.startswith(case.again or ("\0",))]
            left = case.undone(states[done], start, change.display, when) if case.undone else states[done]
            assert w.state() == left, where
            confirm = case.confirm + ("," + case.rerun_confirm(w) if case.rerun_confirm else "")
            again = run(w, case, monkeypatch, image, confirm=confirm)
            if case.refused and _index(trail, case.refused[0]) <= done < _index(trail, case.refused[1]):
                assert not again.ok and again.step == case.refused[2] and case.refused[3] in str(again.error), where
                assert w.state() == left and w.changes() == [] and w.locks() == [], where
                continue
            if case.done_end and done >= next(i for i, c in enumerate(trail, 1)
                                              if c.display.startswith(case.done_end[0])):
                # the rollback (the merge) happened: nothing says it was this run's, so it is refused
                assert not again.ok and again.step == case.done_end[1] and case.done_end[2] in str(again.error)
                assert w.state() == goal and w.changes() == [], where
                continue
            if case.ok_after and done >= _index(trail, case.ok_after):
                assert again.ok, (where, again.step, again.error)
            else:
                assert_reached_end(case, again, where)
            assert w.state() == goal and w.locks() == [], where
            expected = [c.display for i, c in enumerate(trail) if i >= done or i in again_too]
            if case.rerun:
                expected = case.rerun([c.display for c in trail], n, when)
            assert w.changes() == expected, (where, w.changes(), expected)
