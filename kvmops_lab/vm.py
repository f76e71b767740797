"""``kvmops lab up | status | down | destroy``: one lab VM per run folder (the default one, and
named ones: ``LabPaths.named("kvm2")``, ``kvmops lab up --name kvm2``; they share the image).

``up`` boots a fresh qcow2 overlay over the cached base image (every ``up`` starts clean),
waits for ``ssh true`` and writes the lab site file. ``up(keep_disks=True)`` (``kvmops lab up
--keep-disks``) instead boots the run folder's disks as an earlier lab left them: after
:func:`power_cut` (its QEMU killed, as a host that lost its power), the same host comes back.
``destroy`` always returns the machine to clean: QEMU killed, run folder removed
(``cache=True`` also drops the built images).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kvmops.cmd import change
from kvmops.errors import CommandFailed
from kvmops.runners import LocalRunner
from kvmops_lab import procs, serial
from kvmops_lab.accel import decide_accel
from kvmops_lab.build import ensure_image, file_lock, safe_rmtree
from kvmops_lab.errors import LabError
from kvmops_lab.labsite import allowed_signers_path, allowed_signers_text, known_hosts_text, render_site
from kvmops_lab.paths import ImagePaths, LabPaths
from kvmops_lab.ports import check_port, free_port, port_free, port_taken_message
from kvmops_lab.progress import Phases, Say
from kvmops_lab.qemu import LAB_TUNING, BootSpec, Tuning, qemu_argv
from kvmops_lab.qmp import qmp
from kvmops_lab.recipe import Recipe
from kvmops_lab.ssh import ssh_argv
from kvmops_lab.state import RUNNING, STALE, STOPPED, LabState, classify, read_state

PV_SIZE = "20G"
BOOT_TIMEOUT = {"kvm": 180.0, "tcg": 480.0}


@dataclass(frozen=True)
class Status:
    """``running`` / ``stopped`` / ``stale``, the state (if any) and a sentence for people."""

    kind: str
    state: LabState | None
    message: str
    orphans: tuple[int, ...] = ()


def _paths(paths: LabPaths | None) -> LabPaths:
    return paths or LabPaths.default()


def site_path(paths: LabPaths | None = None) -> Path:
    """The lab site file ``kvmops lab up`` writes (it exists only while a lab runs)."""
    return _paths(paths).site


def status(paths: LabPaths | None = None, *, check_ssh: bool = True) -> Status:
    """Is a lab running (and answering SSH), stopped, or stale (its QEMU died)?"""
    p = _paths(paths)
    state = read_state(p.state)
    ours = state is not None and procs.is_lab_qemu(procs.cmdline(state.pid), p.run)
    kind = classify(state, ours)
    orphans = tuple(pid for pid in procs.lab_qemus(p.run) if state is None or pid != state.pid)
    if kind == STOPPED:
        msg = f"stopped: no lab is running (start one with `{p.cli('up')}`)"
        if orphans:
            msg = (f"stopped, but QEMU pid(s) {', '.join(map(str, orphans))} of an earlier lab run "
                   f"still run without a state file: `{p.cli('destroy')}` ends them")
        return Status(kind, None, msg, orphans)
    assert state is not None
    if kind == STALE:
        return Status(kind, state, f"stale: the state file names QEMU pid {state.pid}, which is gone "
                      f"(`{p.cli('up')}` starts a new lab, `{p.cli('destroy')}` cleans up)", orphans)
    answer = ""
    if check_ssh:
        answer = ", ssh answers" if ssh_ok(state) else ", ssh does NOT answer"
    return Status(kind, state, f"running: pid {state.pid}, {state.accel}, ssh port {state.port}{answer}; "
                  f"site file {state.site}", orphans)


def ssh_ok(state: LabState, timeout: int = 10) -> bool:
    """True when ``ssh ... true`` succeeds."""
    try:
        done = subprocess.run(ssh_argv(state, "true", connect_timeout=timeout), capture_output=True,
                              timeout=timeout + 20, check=False)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def up(paths: LabPaths | None = None, *, port: int | None = None, accel: str | None = None,
       timeout: float | None = None, recipe: Recipe | None = None, say: Say | None = None,
       guest_image: Path | None = None, cloud_image: Path | None = None, keep_disks: bool = False,
       tuning: Tuning | None = None) -> LabState:
    """Build (or reuse) the image, boot it, wait for SSH, prepare VG rl_build; the state.

    ``guest_image`` (the small busybox guest) and ``cloud_image`` (the realistic one) are
    attached read-only and copied to ``/var/lib/kvmops/images/`` inside. A healthy lab that is
    already running is reused as it is. ``keep_disks``: boot the disks an earlier lab of this
    run folder left (its QEMU gone: powered off or killed) instead of fresh ones. ``tuning``: the
    lab's ``-cpu`` and extra kernel arguments (default :class:`~kvmops_lab.qemu.Tuning`).
    """
    p = _paths(paths)
    phases = Phases(say)
    with file_lock(p.up_lock, lambda: phases(f"another `{p.cli('up')}` runs: waiting for it")):
        return _up(p, phases, port, accel, timeout, recipe, (guest_image, cloud_image), keep_disks,
                   tuning or LAB_TUNING)


def _up(p: LabPaths, phases: Phases, port: int | None, accel: str | None, timeout: float | None,
        recipe: Recipe | None, images: tuple[Path | None, Path | None], keep_disks: bool = False,
        tuning: Tuning = LAB_TUNING) -> LabState:
    current = _reuse_or_clean(p, phases)
    if current is not None:
        return current
    _need_tools()
    img = ensure_image(p, recipe, phases)
    chosen = accel or os.environ.get("KVMOPS_LAB_ACCEL") or decide_accel(p, img, phases)
    state = _start(p, img, chosen, port, phases, images, keep_disks=keep_disks, tuning=tuning)
    try:
        wait_for_ssh(p, state, phases, timeout or _boot_timeout(chosen))
        domain_type = prepare(p, state, phases)
        p.site.write_text(render_site(state, domain_type, _host_name(p)))
    except BaseException:
        _kill(p, state)
        p.state.unlink(missing_ok=True)
        raise
    phases(f"lab ready: `{p.cli('ssh')}`; site file {state.site}")
    return state


def _host_name(p: LabPaths) -> str:
    """The host's name in the site file: the lab's name, ``kvmlab`` for the default lab."""
    return p.name or "kvmlab"


def _boot_timeout(accel: str) -> float:
    env = os.environ.get("KVMOPS_LAB_BOOT_TIMEOUT")
    return float(env) if env else BOOT_TIMEOUT[accel]


def _need_tools() -> None:
    missing = [t for t in ("qemu-system-x86_64", "qemu-img", "ssh") if shutil.which(t) is None]
    if missing:
        raise LabError(f"the lab needs {', '.join(missing)}: apt-get install qemu-system-x86 "
                       "qemu-utils openssh-client")


def _reuse_or_clean(p: LabPaths, phases: Phases) -> LabState | None:
    """A running lab that answers SSH is reused; a stale state is cleaned; others refuse."""
    st = status(p, check_ssh=False)
    if st.orphans:
        raise LabError(
            f"a lab VM of an earlier run still runs without its state file (QEMU pid(s) "
            f"{', '.join(map(str, st.orphans))}): run `{p.cli('destroy')}`, then `{p.cli('up')}`"
        )
    if st.kind == RUNNING:
        assert st.state is not None
        if ssh_ok(st.state):
            phases(f"a lab VM from an earlier run is running (pid {st.state.pid}, port "
                   f"{st.state.port}) and answers SSH: reusing it")
            return st.state
        raise LabError(
            f"a lab VM from an earlier run is running (QEMU pid {st.state.pid}, port {st.state.port}) "
            f"but does not answer SSH. Serial log {st.state.serial}:\n{serial.tail(Path(st.state.serial))}\n"
            f"Run `{p.cli('destroy')}`, then `{p.cli('up')}`."
        )
    if st.kind == STALE:
        phases(f"cleaning up the {st.message}")
        p.state.unlink(missing_ok=True)
    return None


def _start(p: LabPaths, img: ImagePaths, accel: str, port: int | None, phases: Phases,
           images: tuple[Path | None, Path | None], keep_disks: bool = False,
           tuning: Tuning = LAB_TUNING) -> LabState:
    """Fresh overlay and PV disk (or the kept ones), QEMU started daemonized; the state file written."""
    runner = LocalRunner()
    if keep_disks:
        phases(f"boot: the disks of the earlier lab kept ({reuse_run_dir(p)})")
    else:
        _fresh_run_dir(p, img, runner)
    for attempt in range(3):
        chosen = check_port(port) if port else free_port()
        spec = BootSpec(kernel=str(img.kernel), initrd=str(img.initrd), root_disk=str(p.overlay),
                        pv_disk=str(p.pv_disk), serial_log=str(p.serial), pidfile=str(p.pidfile),
                        qmp=str(p.qmp), port=chosen, accel=accel,
                        guest_image=str(images[0]) if images[0] else None,
                        cloud_image=str(images[1]) if images[1] else None, cpu=tuning.cpu,
                        extra_args=tuning.kernel_args, cpus=tuning.cpus, tcg_thread=tuning.tcg_thread)
        model = f", -cpu {tuning.cpu}" if tuning.cpu else ""
        phases(f"boot: starting QEMU ({accel.upper()}{model}, 1536 MB, {tuning.cpus} CPUs, "
               f"ssh on 127.0.0.1:{chosen})")
        try:
            runner.run(change(*qemu_argv(spec), timeout=60))
            break
        except CommandFailed as exc:
            if not port_taken_message(exc.stderr):
                raise LabError(f"QEMU did not start: {exc.stderr.strip() or exc}") from None
            if port or attempt == 2:
                raise LabError(f"SSH port {chosen} on 127.0.0.1 is already taken (QEMU: "
                               f"{exc.stderr.strip()}): pick another with --port or leave it out") from None
            phases(f"boot: port {chosen} was taken meanwhile, trying another")
    pid = int(p.pidfile.read_text().strip())
    state = LabState(pid=pid, port=chosen, accel=accel, image_dir=str(img.dir), run_dir=str(p.run),
                     key=str(img.key), known_hosts=str(p.known_hosts), site=str(p.site),
                     serial=str(p.serial), qmp=str(p.qmp),
                     started=datetime.now(UTC).isoformat(timespec="seconds"))
    p.known_hosts.write_text(known_hosts_text(chosen, img.host_keys.read_text()))
    Path(allowed_signers_path(state)).write_text(allowed_signers_text(img.host_keys.read_text()))
    p.state.write_text(state.to_json())
    p.site.write_text(render_site(state, host_name=_host_name(p)))
    return state


def _fresh_run_dir(p: LabPaths, img: ImagePaths, runner: LocalRunner) -> None:
    """``qemu-img create -f qcow2 -F raw -b root.img overlay``; an empty PV disk; new log."""
    shutil.rmtree(p.run, ignore_errors=True)
    p.run.mkdir(parents=True)
    os.chmod(img.key, 0o600)
    runner.run(change("qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(img.root),
                      str(p.overlay)))
    runner.run(change("qemu-img", "create", "-q", "-f", "qcow2", str(p.pv_disk), PV_SIZE))


def reuse_run_dir(p: LabPaths) -> str:
    """The run folder's root overlay and PV disk as the earlier lab left them (a new serial
    log); refused while a QEMU of that folder still runs or when a disk is missing."""
    running = procs.lab_qemus(p.run)
    if running:
        raise LabError(f"a lab QEMU still runs on these disks (pid(s) {', '.join(map(str, running))}): "
                       "`kvmops lab down` (or a power cut) first")
    missing = [str(d) for d in (p.overlay, p.pv_disk) if not d.is_file()]
    if missing:
        raise LabError(f"no disks of an earlier lab to keep ({', '.join(missing)} missing): "
                       "`kvmops lab up` without --keep-disks makes fresh ones")
    p.serial.unlink(missing_ok=True)
    return f"{p.overlay.name}, {p.pv_disk.name}"


def power_cut(paths: LabPaths | None = None, say: Say | None = None) -> int:
    """The lab host loses its power: its QEMU is killed (SIGKILL: no shutdown of any kind), the
    disks stay as they were at that instant. Returns the pid killed. ``up(keep_disks=True)``
    boots them again."""
    p = _paths(paths)
    st = status(p, check_ssh=False)
    if st.kind != RUNNING or st.state is None:
        raise LabError(f"no running lab to cut the power of: {st.message}")
    pid = st.state.pid
    os.kill(pid, signal.SIGKILL)
    if not procs.wait_gone(pid, 10):
        raise LabError(f"the lab's QEMU (pid {pid}) survived SIGKILL")
    _wait_port_released(st.state.port, 10)  # the kernel closes a killed process's sockets a moment later
    p.state.unlink(missing_ok=True)
    p.site.unlink(missing_ok=True)
    Phases(say)(f"power cut: lab QEMU pid {pid} killed; disks kept in {p.run}")
    return pid


def _wait_port_released(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not port_free(port):
        if time.monotonic() > deadline:
            raise LabError(f"the lab's SSH port {port} is still bound {timeout:.0f} s after its QEMU died")
        time.sleep(0.2)


def wait_for_ssh(p: LabPaths, state: LabState, phases: Phases, timeout: float) -> float:
    """Poll ``ssh true`` while showing boot phases from the serial log; seconds it took."""
    t0 = time.monotonic()
    seen: set[str] = set()
    beat = t0
    while True:
        log = Path(state.serial).read_text(errors="replace") if Path(state.serial).exists() else ""
        for phase in serial.new_phases(log, seen):
            phases(f"boot: {phase}")
        bad = serial.fatal(log)
        if bad or not procs.alive(state.pid):
            why = f"the serial log shows {bad!r}" if bad else "QEMU exited"
            raise LabError(f"the lab VM failed to boot: {why}. Serial log {state.serial}:\n"
                           f"{serial.tail(Path(state.serial))}")
        if ssh_ok(state, timeout=5):
            took = time.monotonic() - t0
            phases(f"boot: ssh answers after {took:.0f}s")
            return took
        now = time.monotonic()
        if now - t0 > timeout:
            raise LabError(f"the lab VM did not answer SSH within {timeout:.0f}s (set "
                           f"KVMOPS_LAB_BOOT_TIMEOUT to wait longer). Serial log {state.serial}:\n"
                           f"{serial.tail(Path(state.serial))}")
        if now - beat > 20:
            beat = now
            phases("boot: still waiting for ssh")
        time.sleep(2)


def prepare(p: LabPaths, state: LabState, phases: Phases) -> str:
    """VG rl_build on the PV disk, the images, the guests' domain type (idempotent), through
    kvmops' own SSH runner; returns the domain type for the site file."""
    from kvmops_lab.prepare import prepare_lab

    return prepare_lab(state, phases, p)


def down(paths: LabPaths | None = None, *, timeout: float = 30.0, say: Say | None = None) -> str:
    """Power the lab off (its guests destroyed first, then poweroff over SSH, else ACPI), kill
    QEMU if it hangs; the outcome.

    The guests go first: the lab's poweroff otherwise waits in libvirt-guests' shutdown of each
    guest, and the small busybox guest never answers ACPI (it took 90 s and a kill). The lab's
    guests are throwaway; ``virsh destroy`` is their power cut.
    """
    p = _paths(paths)
    phases = Phases(say)
    st = status(p, check_ssh=False)
    if st.kind != RUNNING or st.state is None:
        p.state.unlink(missing_ok=True)
        return f"nothing to power off: {st.message}"
    state = st.state
    deadline = time.monotonic() + timeout
    guests = _destroy_guests(state)
    if guests:
        phases(f"down: destroyed the lab's running guest(s) {', '.join(guests)}")
    phases(f"down: powering off the lab VM (pid {state.pid})")
    with contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run(ssh_argv(state, "systemctl", "poweroff", connect_timeout=5), capture_output=True,
                       timeout=max(deadline - time.monotonic(), 5), check=False)
    if not procs.wait_gone(state.pid, 5):
        with contextlib.suppress(OSError):
            qmp(Path(state.qmp), "system_powerdown")
    how = "powered off"
    if not procs.wait_gone(state.pid, max(deadline - time.monotonic(), 1)):
        phases(f"down: no poweroff within {timeout:.0f}s: killing QEMU")
        procs.terminate(state.pid)
        how = "killed (it did not power off in time)"
    p.state.unlink(missing_ok=True)
    p.site.unlink(missing_ok=True)
    phases(f"down: lab VM {how}")
    return f"lab VM {how}"


def _destroy_guests(state: LabState) -> list[str]:
    """``virsh destroy`` of every running guest in the lab; their names (none when SSH fails)."""
    def ssh(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(ssh_argv(state, *map(shlex.quote, argv), connect_timeout=5), capture_output=True,
                              text=True, timeout=30, check=False)

    try:
        listed = ssh("virsh", "list", "--name")
        names = listed.stdout.split() if listed.returncode == 0 else []
        for name in names:
            ssh("virsh", "destroy", name)
    except subprocess.TimeoutExpired:
        return []
    return names


def _kill(p: LabPaths, state: LabState | None) -> list[int]:
    pids = set(procs.lab_qemus(p.run))
    if state and procs.is_lab_qemu(procs.cmdline(state.pid), p.run):
        pids.add(state.pid)
    for pid in sorted(pids):
        procs.terminate(pid, grace=3)
    return sorted(pids)


def destroy(paths: LabPaths | None = None, *, cache: bool = False, say: Say | None = None) -> list[str]:
    """Kill the lab's QEMU(s), remove the run folder (and with ``cache`` every built image)."""
    p = _paths(paths)
    phases = Phases(say)
    if cache:
        _refuse_shared_cache(p)
    done = []
    try:
        state = read_state(p.state)
    except LabError:
        state = None
    killed = _kill(p, state)
    if killed:
        done.append(f"killed QEMU pid(s) {', '.join(map(str, killed))}")
    if p.run.exists():
        shutil.rmtree(p.run, ignore_errors=True)
        if p.run.exists():
            raise LabError(f"could not remove {p.run}: remove it by hand (rm -r {p.run})")
        done.append(f"removed {p.run}")
    if cache and p.root.exists():
        safe_rmtree(p.root)
        done.append(f"removed the image cache {p.root}")
    for line in done or ["nothing to clean: no lab VM, no run folder"]:
        phases(f"destroy: {line}")
    return done


def _refuse_shared_cache(p: LabPaths) -> None:
    """The image cache is shared by every lab: dropped only by the default lab's destroy, and
    only while no other lab runs on it."""
    if p.name:
        raise LabError(f"the image cache is shared by every lab: `{p.cli('destroy')}` does not remove it "
                       "(nothing was changed); `kvmops lab destroy --cache` does, once no other lab runs")
    others = {run.name: pids for run in p.all_runs() if run != p.run and (pids := procs.lab_qemus(run))}
    if others:
        names = ", ".join(f"{n.removeprefix('run-')} (QEMU pid {', '.join(map(str, pids))})"
                          for n, pids in others.items())
        raise LabError(f"other labs run on the shared image cache: {names}; destroy them first "
                       "(`kvmops lab destroy --name N`); nothing was changed")
