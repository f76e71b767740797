"""A real libvirtd (no systemd) and a TCG guest defined, started and stopped through kvmops.

The guest boots a Debian kernel with a tiny busybox initramfs built here (direct kernel boot,
no network: ``allow_no_network``; a raw file as its disk) and prints a marker on ttyS0, then
a tick a second. Its serial output is read from the ``<log file=...>`` of the serial device
(virtlogd) and through libvirt's console stream. busybox as PID 1 ignores ACPI, so the
shutdown runs into its clear timeout message; destroy then stops it.

Downloads (only when nothing is cached): the kernel ``.deb`` with ``apt-get download``.
Everything started here (daemons, guest, files) is stopped and removed afterwards.
"""

from __future__ import annotations

import io
import os
import re
import select
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kvmops import guestlive
from kvmops.errors import ConfirmationRequired, NotFound
from kvmops.executor import Executor, StepFailed, confirmed
from kvmops.facts import read_facts
from kvmops.guests import boot, lifecycle
from kvmops.guests.spec import GuestSpec
from kvmops.guests.xml import read_domain
from kvmops.host import Host
from kvmops.images import nocloud
from kvmops.lvm import ops
from kvmops.plan import Booted
from kvmops.procedures import guest_seed, lv_rename
from kvmops.runners import LocalRunner
from kvmops.site import load_site
from kvmops.virt import Virt
from kvmops.waits import BootNotVerified, wait
from tests.conftest import need_tools
from tests.support.run import run_plan

pytestmark = pytest.mark.integration

CACHE = Path(os.environ.get("KVMOPS_TEST_CACHE", "/var/cache/kvmops-tests"))
MARKER = "KVMOPS-MARKER guest is up"
GUEST = "kvmopstcg1"
RUN = Path("/run")
SOCKETS = ("libvirt/libvirt-sock", "libvirt/libvirt-sock-ro", "libvirt/libvirt-admin-sock",
           "libvirt/virtlogd-sock", "libvirt/virtlogd-admin-sock")
PIDFILES = ("libvirtd.pid", "virtlogd.pid")
TIMINGS: dict[str, float] = {}
FIXTURES = Path(__file__).parent.parent / "fixtures" / "libvirt"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc+ZQ5bnkc8Y9Uvs6yDuB1z2oQ1pL0U8kM9gpqCYQ2n admin@example"


def sh(*argv: str, cwd: Path | None = None) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, cwd=cwd).stdout


# -- the kernel and the initramfs ------------------------------------------------------------


def _kernel_deb() -> Path:
    """A linux-image .deb from apt's cache, or ``apt-get download`` of the cloud kernel."""
    debs = sorted(p for p in Path("/var/cache/apt/archives").glob("linux-image-[0-9]*-amd64_*.deb")
                  if "-dbg" not in p.name and "unsigned" not in p.name)
    debs += sorted(CACHE.glob("linux-image-[0-9]*-amd64_*.deb"))
    if debs:
        return debs[-1]
    depends = sh("apt-cache", "depends", "linux-image-cloud-amd64")
    pkg = next(ln.split(":", 1)[1].strip() for ln in depends.splitlines() if "Depends:" in ln)
    sh("apt-get", "download", pkg, cwd=CACHE)
    return sorted(CACHE.glob(f"{pkg}_*.deb"))[-1]


def _extract(deb: Path, member_prefix: str, dest: Path) -> None:
    """``dpkg-deb --fsys-tarfile DEB`` streamed through tarfile: only the member we need."""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)  # it complains when we stop reading early
    assert proc.stdout is not None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for m in tar:
                if m.isfile() and m.name.lstrip("./").startswith(member_prefix):
                    f = tar.extractfile(m)
                    assert f is not None
                    dest.write_bytes(f.read())
                    return
    finally:
        proc.stdout.close()
        proc.wait()
    raise FileNotFoundError(f"{member_prefix}* not in {deb}")


def kernel() -> Path:
    """A Debian vmlinuz, cached in CACHE (or KVMOPS_TEST_KERNEL)."""
    if os.environ.get("KVMOPS_TEST_KERNEL"):
        return Path(os.environ["KVMOPS_TEST_KERNEL"])
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / "vmlinuz"
    if not out.exists():
        _extract(_kernel_deb(), "boot/vmlinuz-", out)
    return out


def busybox() -> Path:
    """The static busybox of Debian's busybox-static (installed, or downloaded to CACHE)."""
    if subprocess.run(["dpkg-query", "-W", "busybox-static"], capture_output=True).returncode == 0:
        return Path("/bin/busybox")
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / "busybox"
    if not out.exists():
        sh("apt-get", "download", "busybox-static", cwd=CACHE)
        _extract(sorted(CACHE.glob("busybox-static_*.deb"))[-1], "bin/busybox", out)
    return out


# kvmops_mode (from the kernel's command line) picks what the console shows: "login" (the
# default) prints the marker, a tick a second, a getty-like login prompt, and echoes every line
# typed into the console; "loader" shows only boot-loader lines and then nothing.
INIT = f"""#!/bin/sh
if [ "$kvmops_mode" = loader ]; then
  echo "SYSLINUX 6.04 EDD 20191223 Copyright (C) 1994-2015 H. Peter Anvin et al"
  echo "Loading /boot/vmlinuz... ok"
  echo "Loading /boot/initrd.img...ok"
  while true; do sleep 1; done
fi
echo "{MARKER}"
i=0
while true; do
  i=$((i+1))
  echo
  echo "kvmops tick $i"
  printf "{GUEST} login: "
  if read -t 1 line; then echo "kvmops got: $line"; fi
done
"""


def _cpio_entry(name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> bytes:
    """One ``newc`` cpio header + name + data, 4-byte aligned (what the kernel unpacks)."""
    fields = [0, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
    head = b"070701" + b"".join(f"{v:08x}".encode() for v in fields)
    body = head + name.encode() + b"\0"
    body += b"\0" * (-len(body) % 4)
    return body + data + b"\0" * (-len(data) % 4)


def initramfs(dest: Path) -> None:
    """busybox as /bin/sh, an /init that prints MARKER, and /dev/console."""
    out = io.BytesIO()
    for d in ("bin", "dev", "proc"):
        out.write(_cpio_entry(d, 0o040755))
    out.write(_cpio_entry("bin/busybox", 0o100755, busybox().read_bytes()))
    for applet in ("sh", "sleep", "echo", "printf"):
        out.write(_cpio_entry(f"bin/{applet}", 0o120777, b"busybox"))
    out.write(_cpio_entry("dev/console", 0o020600, rdev=(5, 1)))
    out.write(_cpio_entry("init", 0o100755, INIT.encode()))
    out.write(_cpio_entry("TRAILER!!!", 0))
    dest.write_bytes(out.getvalue())


# -- the daemons -----------------------------------------------------------------------------


@dataclass
class Daemons:
    started: list[str]
    seconds_to_first_connect: float


def _alive(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid


def _stop(pidfile: Path) -> None:
    pid = _alive(pidfile)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if _alive(pidfile) is None:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def daemons() -> Iterator[Daemons]:
    """virtlogd and libvirtd started with ``-d`` (no systemd); stopped afterwards."""
    need_tools("libvirtd", "virtlogd", "qemu-system-x86_64", "dpkg-deb")
    if _alive(RUN / "libvirtd.pid") or _alive(RUN / "virtlogd.pid"):
        pytest.skip("a libvirtd/virtlogd runs already on this machine: not ours to stop")
    started: list[str] = []
    fresh_run_dir = not (RUN / "libvirt").exists()
    try:
        t0 = time.monotonic()
        for daemon in ("virtlogd", "libvirtd"):
            subprocess.run([daemon, "-d"], check=True, capture_output=True, timeout=60)
            started.append(daemon)
        virt = Virt("qemu:///system")
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    virt.conn.getVersion()
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        finally:
            virt.close()
        TIMINGS["libvirtd start to first qemu:///system answer (s)"] = time.monotonic() - t0
        yield Daemons(started, TIMINGS["libvirtd start to first qemu:///system answer (s)"])
    finally:
        for daemon in reversed(started):
            _stop(RUN / f"{daemon}.pid")
        if started:
            for sock in SOCKETS:
                (RUN / sock).unlink(missing_ok=True)
        if fresh_run_dir:  # libvirtd's state folders under /run/libvirt were made by this test
            shutil.rmtree(RUN / "libvirt", ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def _timings() -> Iterator[None]:
    """What was measured in this module, printed once at its end (never asserted)."""
    yield
    print("\nmeasured (libvirtd, TCG):", {k: round(v, 2) for k, v in TIMINGS.items()})


@pytest.fixture
def workdir() -> Iterator[Path]:
    """Readable by libvirt-qemu (pytest's tmp folders are 0700 for root)."""
    d = Path(tempfile.mkdtemp(prefix="kvmops-tcg-", dir="/var/tmp"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


SITE = """\
[host]
name = "localhost"

[storage]
vg = "rl_build"  # the scratch VG of the site_vg fixture
lv_prefix = "vm"

[libvirt]
uri = "qemu:///system"
domain_type = "qemu"
emulator = "/usr/bin/qemu-system-x86_64"
xml_dir = "{xml_dir}"
seed_dir = "{xml_dir}"
boot_dir = "{work}"  # the test's kernel, initramfs and serial logs
file_disk_dir = "{work}"  # and its file disk

[network]
uplink = "ens802f1"

[[network.vlan]]
id = 2368
cidr = "10.5.68.0/24"
"""


def _host(workdir: Path) -> Host:
    (workdir / "site.toml").write_text(SITE.format(xml_dir=workdir / "kvm", work=workdir))
    site = load_site(workdir / "site.toml")
    return Host(site, LocalRunner("localhost"), "qemu:///system")


def _wait_for(path: Path, text: str, timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if path.exists() and text in path.read_text(errors="replace"):
            return time.monotonic() - t0
        time.sleep(0.1)
    tail = path.read_text(errors="replace")[-2000:] if path.exists() else "(no log file)"
    raise AssertionError(f"{text!r} not seen within {timeout} s; serial log:\n{tail}")


def _cleanup_guest(host: Host) -> None:
    virt = host.virt
    if virt.exists(GUEST):
        if virt.info(GUEST).active:
            virt.destroy(GUEST)
        virt.undefine(GUEST)


def test_tcg_guest_lifecycle_through_kvmops(daemons: Daemons, workdir: Path, site_vg: str) -> None:
    kern, initrd, disk, log = workdir / "vmlinuz", workdir / "initrd", workdir / "disk.raw", workdir / "serial.log"
    shutil.copyfile(kernel(), kern)
    initramfs(initrd)
    with disk.open("wb") as f:
        f.truncate(1024 * 1024)
    host = _host(workdir)
    spec = GuestSpec(GUEST, 256 * 1024, 1, (), allow_no_network=True, disk_path=str(disk),
                     kernel=str(kern), initrd=str(initrd), cmdline="console=ttyS0 quiet panic=-1",
                     serial_log=str(log))
    quiet = lambda _line: None  # noqa: E731
    try:
        facts = read_facts(host, lifecycle.define_wanted(host.site, spec))
        run_plan(host, lifecycle.define(facts, spec), progress=quiet)
        assert read_domain((workdir / "kvm" / f"{GUEST}.xml").read_text()).kernel == str(kern)
        assert host.virt.info(GUEST).state == "shut off"

        run_plan(host, lifecycle.autostart(read_facts(host), GUEST, True), progress=quiet)
        assert host.virt.info(GUEST).autostart

        t0 = time.monotonic()
        run_plan(host, lifecycle.start(read_facts(host), GUEST), progress=quiet)
        TIMINGS["virDomainCreate returned after (s)"] = time.monotonic() - t0
        assert host.virt.info(GUEST).state == "running"
        TIMINGS["start to marker on serial log (s)"] = _wait_for(log, MARKER, 120) + \
            TIMINGS["virDomainCreate returned after (s)"]

        live = host.virt.info(GUEST).xml
        facts = read_domain(live)
        assert facts.machine is not None and facts.machine.startswith("pc-q35")
        assert (facts.domain_type, facts.memory_kib, facts.disk_sources) == ("qemu", 262144, (str(disk),))
        if os.environ.get("KVMOPS_CAPTURE_FIXTURES"):
            (FIXTURES / "qemu-running.xml").write_text(live)

        seen: list[str] = []
        text = guestlive.read_console(host, GUEST, 3.0, seen.append)
        assert "kvmops tick" in text and any(line.startswith("kvmops tick") for line in seen)

        with pytest.raises(StepFailed, match=r"still running 3 s after the ACPI power-off request.*"
                                             rf"kvmops guest destroy {GUEST} --apply --confirm {GUEST}"):
            run_plan(host, lifecycle.shutdown(read_facts(host), GUEST, timeout=3), progress=quiet)
        assert host.virt.info(GUEST).state == "running"  # busybox ignored ACPI

        run_plan(host, lifecycle.destroy(read_facts(host), GUEST), GUEST, progress=quiet)
        assert host.virt.info(GUEST).state == "shut off"
        assert host.virt.info(GUEST).autostart  # destroy keeps the definition and its flags

        run_plan(host, lifecycle.autostart(read_facts(host), GUEST, False), progress=quiet)
        assert not host.virt.info(GUEST).autostart
        run_plan(host, lifecycle.undefine(read_facts(host, lifecycle.undefine_wanted(host.site, GUEST)), GUEST),
                 GUEST, progress=quiet)
        with pytest.raises(NotFound):
            host.virt.domain(GUEST)
        assert (workdir / "kvm" / f"{GUEST}.xml.undefined").exists()
        assert disk.exists() and disk.stat().st_size == 1024 * 1024  # disks are never touched
    finally:
        _cleanup_guest(host)
        host.close()


# -- guest-create's verification, the seed, the console, lv-rename (issue 14) ----------------


def _boot_files(workdir: Path) -> tuple[Path, Path, Path]:
    kern, initrd, disk = workdir / "vmlinuz", workdir / "initrd", workdir / "disk.raw"
    if not kern.exists():
        shutil.copyfile(kernel(), kern)
        initramfs(initrd)
        with disk.open("wb") as f:
            f.truncate(1024 * 1024)
    return kern, initrd, disk


def _spec(workdir: Path, name: str = GUEST, mode: str = "login", cdrom: str | None = None) -> GuestSpec:
    kern, initrd, disk = _boot_files(workdir)
    return GuestSpec(name, 256 * 1024, 1, (), allow_no_network=True, disk_path=str(disk), kernel=str(kern),
                     initrd=str(initrd), cmdline=f"console=ttyS0 quiet loglevel=0 panic=-1 kvmops_mode={mode}",
                     serial_log=str(workdir / f"{name}.log"), cdrom=cdrom)


def _define_and_start(host: Host, spec: GuestSpec) -> None:
    quiet = lambda _line: None  # noqa: E731
    run_plan(host, lifecycle.define(read_facts(host, lifecycle.define_wanted(host.site, spec)), spec), progress=quiet)
    run_plan(host, lifecycle.start(read_facts(host), spec.name), progress=quiet)


def test_the_boot_counts_only_on_a_login_prompt(daemons: Daemons, workdir: Path, site_vg: str) -> None:
    host = _host(workdir)
    try:
        _define_and_start(host, _spec(workdir, mode="loader"))
        t0 = time.monotonic()
        with pytest.raises(BootNotVerified) as err:  # the one boot check: the start's wait
            wait(host, Booted(GUEST, 25), lambda _line: None)
        text = str(err.value)
        assert re.match(rf"guest {GUEST}: boot NOT verified in 2[5-9] s: NOT verified: no login prompt within "
                        r"2[5-9] s; the console got as far as boot loader;", text), text
        assert "Loading /boot/initrd.img...ok" in text and "only the boot loader ran" in text
        TIMINGS["boot-loader lines only: not verified after (s)"] = time.monotonic() - t0
        _cleanup_guest(host)
        (workdir / "kvm" / f"{GUEST}.xml").unlink()  # the next guest of that name is another one

        _define_and_start(host, _spec(workdir))
        t0 = time.monotonic()
        verdict = guestlive.wait_booted(host, GUEST, 60)
        assert verdict.booted and verdict.stage == boot.LOGIN, verdict.message
        TIMINGS["start to a verified boot (login prompt) (s)"] = time.monotonic() - t0
    finally:
        _cleanup_guest(host)
        host.close()


def test_the_seed_is_retired_from_the_running_guest(daemons: Daemons, workdir: Path, site_vg: str) -> None:
    host = _host(workdir)
    seed = nocloud.seed_path(host.site, GUEST)
    quiet = lambda _line: None  # noqa: E731
    try:
        users = nocloud.users_for("centos", (KEY,), None, None, (KEY,))
        run_plan(host, nocloud.seed_plan(nocloud.Seed(GUEST, users), seed), progress=quiet)
        assert stat.S_IMODE(Path(seed).stat().st_mode) == 0o600
        _define_and_start(host, _spec(workdir, cdrom=seed))
        assert read_domain(host.virt.info(GUEST).xml).cdrom == seed
        assert guestlive.wait_booted(host, GUEST, 60).booted

        wanted = guest_seed.wanted(host.site, GUEST)
        retire = guest_seed.procedure(read_facts(host, wanted), GUEST)
        assert retire.preview[0].steps[0].text() == f"virsh change-media {GUEST} sda --eject --live"
        t0 = time.monotonic()
        Executor(host, quiet).run_procedure(retire)
        TIMINGS["seed retired from the running guest (s)"] = time.monotonic() - t0
        verdict = guest_seed.verify(read_facts(host, wanted), GUEST)
        assert verdict.ok, verdict.render()
        now = host.virt.info(GUEST)
        assert now.active and read_domain(now.xml).cdrom is None and read_domain(now.inactive_xml).cdrom is None
        assert not Path(seed).exists() and seed not in (workdir / "kvm" / f"{GUEST}.xml").read_text()
        assert guest_seed.plan(read_facts(host, wanted), GUEST).empty
    finally:
        _cleanup_guest(host)
        host.close()


def _read_until(fd: int, wanted: bytes, timeout: float, seen: bytearray) -> None:
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{wanted!r} not seen within {timeout} s; got: {bytes(seen[-1500:])!r}")
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:  # the other side closed
                break
    assert wanted in seen, bytes(seen[-1500:])


def test_kvmops_guest_console_attaches_like_virsh_console(daemons: Daemons, workdir: Path, site_vg: str) -> None:
    host = _host(workdir)
    cli = [str(Path(sys.executable).parent / "kvmops"), "guest", "console", GUEST, "--site", str(workdir / "site.toml")]
    try:
        _define_and_start(host, _spec(workdir))
        assert guestlive.wait_booted(host, GUEST, 60).booted

        plain = subprocess.run(cli, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert plain.returncode == 0 and "stdin is not a terminal" in plain.stdout
        assert f"virsh console {GUEST}    # CTRL-] detaches" in plain.stdout

        master, slave = os.openpty()
        before = termios.tcgetattr(slave)
        t0 = time.monotonic()
        proc = subprocess.Popen(cli, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
        seen = bytearray()
        try:
            _read_until(master, f"Connected to guest {GUEST}".encode(), 60, seen)
            _read_until(master, b"kvmops tick", 30, seen)
            TIMINGS["kvmops guest console: attached and reading after (s)"] = time.monotonic() - t0
            t1 = time.monotonic()
            os.write(master, b"hello kvmops\r")
            _read_until(master, b"kvmops got: hello kvmops", 30, seen)
            TIMINGS["a line typed into the console echoed by the guest after (s)"] = time.monotonic() - t1
            os.write(master, b"\x1d")  # CTRL-]
            assert proc.wait(timeout=30) == 0
            _read_until(master, b"detached (CTRL-])", 5, seen)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            after = termios.tcgetattr(slave)
            os.close(master)
            os.close(slave)
        assert after == before, "the terminal was not restored"
        assert host.virt.info(GUEST).active  # detaching leaves the guest alone
    finally:
        _cleanup_guest(host)
        host.close()


def test_lv_rename_updates_the_definition_keeping_its_uuid(daemons: Daemons, workdir: Path, site_vg: str) -> None:
    """Real LVM metadata and a real libvirtd. Starting the guest needs the LV's device node,
    which needs device-mapper: that part is the lab's (this kernel has none)."""
    host = _host(workdir)
    name = "kvmopsrn1"
    quiet = lambda _line: None  # noqa: E731
    try:
        run_plan(host, ops.create(read_facts(host), "vmkvmopsrn1", 8 * 1024 * 1024), progress=quiet)
        spec = GuestSpec(name, 256 * 1024, 1, (), allow_no_network=True, disk_lv="vmkvmopsrn1")
        run_plan(host, lifecycle.define(read_facts(host, lifecycle.define_wanted(host.site, spec)), spec),
                 progress=quiet)
        facts = read_facts(host)
        facts = read_facts(host, lv_rename.wanted(facts, "vmkvmopsrn1", "vmkvmopsrn1-db"))
        assert "definitions to update: kvmopsrn1" in lv_rename.check(facts, "vmkvmopsrn1", "vmkvmopsrn1-db")
        before = lv_rename.uuids(facts, (name,))
        rename = lv_rename.procedure(facts, "vmkvmopsrn1", "vmkvmopsrn1-db")
        with pytest.raises(ConfirmationRequired):
            Executor(host, quiet).run_procedure(rename)
        assert read_facts(host).lvm.get("vmkvmopsrn1") is not None  # nothing changed
        Executor(host, quiet).run_procedure(rename, confirmed(name))
        now = read_facts(host, lv_rename.verify_wanted(host.site, (name,)))
        verdict = lv_rename.verify(now, "vmkvmopsrn1", "vmkvmopsrn1-db", before)
        assert verdict.ok, verdict.render()
        lvs = sh("lvs", "--noheadings", "-o", "lv_name", site_vg).split()
        assert "vmkvmopsrn1-db" in lvs and "vmkvmopsrn1" not in lvs
        assert read_domain(host.virt.inactive_xml(name)).disk_sources == (f"/dev/{site_vg}/vmkvmopsrn1-db",)
    finally:
        if host.virt.exists(name):
            host.virt.undefine(name)
        host.close()
