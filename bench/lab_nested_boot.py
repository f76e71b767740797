"""The small guest inside the lab, booted again and again per setting, with host cores kept busy.

Issue 23: the busybox guest sometimes stalled in its early kernel under KVM nested in the
lab's TCG, and once the lab's own kernel panicked. This boots it N times per setting, side by
side under the same load (``--busy 1``: one host core kept busy by a spin loop, as CI's unit
tier does), and records per boot: seconds from ``virsh start`` returning to the login prompt on
its serial log (:mod:`kvmops.guests.boot`), or the stage it stalled at; and whether the lab
survived (its QEMU alive, no ``BUG:``/``Kernel panic``/``Oops`` on the lab's console). A lab
that died is booted again and the setting goes on.

A setting: the lab's ``-cpu`` (QEMU emulates AMD SVM under TCG) and extra kernel arguments,
``kvm_amd`` module options in the lab (``modprobe -r kvm_amd; modprobe kvm_amd npt=0``), the
guest's domain type (``kvm``: nested KVM; ``qemu``: TCG inside the lab's TCG) and extra kernel
arguments (its extlinux.conf edited on its LV), and how many guests start at once.

Usage (root; boots its own named lab ``nestbench``, destroyed at the end)::

    .venv/bin/python bench/lab_nested_boot.py --boots 10 --busy 1 --settings kvm,kvm-epyc,kvm-npt0,tcg

Each setting's results replace that setting's entry in ``bench/lab_nested_boot-results.json``
(the others are kept), so settings can be measured in separate runs.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kvmops_lab as lab
from kvmops.cmd import change, read
from kvmops.guests import boot
from kvmops.host import Host, connect
from kvmops.site import load_site
from kvmops_lab import procs, serial
from kvmops_lab.guest_image import ensure_guest_image
from kvmops_lab.nested import SmallDomain, cpu_percent, define_small_guest, remove_small_guest
from kvmops_lab.paths import LabPaths
from kvmops_lab.prepare import GUEST_IMAGE_FILE
from kvmops_lab.proofguest import mounted_root
from kvmops_lab.qemu import Tuning
from kvmops_lab.qmp import qmp
from kvmops_lab.state import LabState
from kvmops_lab.vm import ssh_ok

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import BENCH, machine

NAME = "nestbench"
RESULTS = BENCH / "lab_nested_boot-results.json"
LAB_TROUBLE = re.compile(r"BUG: .*|Kernel panic.*|Oops: .*|general protection fault.*|watchdog: BUG: .*")
TIMEOUT = {"kvm": 300.0, "qemu": 600.0}
MITOFF = ("mitigations=off",)  # no speculation under TCG: the mitigations only cost instructions


@dataclass(frozen=True)
class Setting:
    title: str
    cpu: str = "max"
    kvm_amd: dict[str, str] = field(default_factory=dict)
    domain_type: str = "kvm"
    together: int = 1
    lab_args: tuple[str, ...] = ()
    guest_args: tuple[str, ...] = ()
    lab_cpus: int = 2
    tcg_thread: str = ""

    @property
    def tuning(self) -> Tuning:
        return Tuning(self.cpu, self.lab_args, self.lab_cpus, self.tcg_thread)


SETTINGS = {
    "kvm": Setting("nested KVM, lab -cpu max (before issue 23)"),
    "kvm-epyc": Setting("nested KVM, lab -cpu EPYC (no la57, no vGIF)", cpu="EPYC"),
    "kvm-novgif": Setting("nested KVM, lab -cpu max,vgif=off", cpu="max,vgif=off"),
    "kvm-npt0": Setting("nested KVM, lab -cpu max, kvm_amd npt=0 (shadow paging)", kvm_amd={"npt": "0"}),
    "kvm-epyc-npt0": Setting("nested KVM, lab -cpu EPYC, kvm_amd npt=0", cpu="EPYC", kvm_amd={"npt": "0"}),
    "tcg": Setting("TCG inside the lab (domain type qemu), lab -cpu max", domain_type="qemu"),
    "kvm-x3": Setting("nested KVM, lab -cpu max, 3 guests started at once", together=3),
    "kvm-epyc-x3": Setting("nested KVM, lab -cpu EPYC, 3 guests started at once", cpu="EPYC", together=3),
    "kvm-npt0-x3": Setting("nested KVM, kvm_amd npt=0, 3 guests started at once", kvm_amd={"npt": "0"}, together=3),
    "kvm-single": Setting("nested KVM, lab -cpu max, -accel tcg,thread=single", tcg_thread="single"),
    "kvm-single-x3": Setting("nested KVM, lab -cpu max, -accel tcg,thread=single, 3 guests started at once",
                             tcg_thread="single", together=3),
    "kvm-smp1": Setting("nested KVM, lab -cpu max, -smp 1", lab_cpus=1),
    "kvm-smp1-x3": Setting("nested KVM, lab -cpu max, -smp 1, 3 guests started at once", lab_cpus=1, together=3),
    "kvm-quiet": Setting("nested KVM, lab -cpu max, guest kernel quiet (no kernel messages on its serial console)",
                         guest_args=("quiet",)),
    "tcg-quiet": Setting("TCG inside the lab (domain type qemu), guest kernel quiet", domain_type="qemu",
                         guest_args=("quiet",)),
    "kvm-quiet-x3": Setting("nested KVM, lab -cpu max, guest kernel quiet, 3 guests started at once",
                            guest_args=("quiet",), together=3),
    "tcg-quiet-x3": Setting("TCG inside the lab, guest kernel quiet, 3 guests started at once", domain_type="qemu",
                            guest_args=("quiet",), together=3),
    "kvm-quiet-mitoff": Setting("nested KVM, lab -cpu max, mitigations=off in the lab and the guest, guest quiet",
                                lab_args=MITOFF, guest_args=(*MITOFF, "quiet")),
    "kvm-nokvmclock": Setting("nested KVM, lab -cpu max, guest without kvm-clock (no-kvmclock)",
                              guest_args=("no-kvmclock",)),
    "kvm-mitoff": Setting("nested KVM, lab -cpu max, mitigations=off in the lab and the guest", lab_args=MITOFF,
                          guest_args=MITOFF),
    "kvm-epyc-mitoff": Setting("nested KVM, lab -cpu EPYC, mitigations=off in the lab and the guest", cpu="EPYC",
                               lab_args=MITOFF, guest_args=MITOFF),
    "kvm-mitoff-x3": Setting("nested KVM, lab -cpu max, mitigations=off, 3 guests started at once", lab_args=MITOFF,
                             guest_args=MITOFF, together=3),
    "kvm-epyc-mitoff-x3": Setting("nested KVM, lab -cpu EPYC, mitigations=off, 3 guests started at once", cpu="EPYC",
                                  lab_args=MITOFF, guest_args=MITOFF, together=3),
}


@contextmanager
def busy(cores: int) -> Iterator[None]:
    """``cores`` spin loops on this machine (CI's unit tier keeps about one core busy)."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        yield
    finally:
        for p in spinners:
            p.kill()
            p.wait()


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


class Lab:
    """The bench's named lab, booted with a given -cpu; booted again when it died."""

    def __init__(self) -> None:
        self.paths = LabPaths.named(NAME)
        self.tuning: Tuning | None = None
        self.state: LabState | None = None
        self.serial_seen = 0
        self.up_s: list[float] = []

    def ensure(self, tuning: Tuning) -> LabState:
        if self.state is not None and self.tuning == tuning and procs.alive(self.state.pid):
            return self.state
        lab.destroy(self.paths)
        t0 = time.monotonic()
        self.state = lab.up(self.paths, guest_image=ensure_guest_image(), tuning=tuning,
                            say=lambda line: print(f"[{NAME}] {line}", flush=True))
        self.up_s.append(round(time.monotonic() - t0, 1))
        print(f"lab up with {tuning}: {self.up_s[-1]:.0f} s", flush=True)
        self.tuning, self.serial_seen = tuning, 0
        return self.state

    def trouble(self) -> list[str]:
        """New BUG/panic/Oops lines on the lab's console since the last call."""
        assert self.state is not None
        text = Path(self.state.serial).read_bytes().decode(errors="replace")
        new, self.serial_seen = text[self.serial_seen:], len(text)
        return [m.group(0)[:160] for m in LAB_TROUBLE.finditer(new)]

    def alive(self) -> bool:
        return self.state is not None and procs.alive(self.state.pid) and ssh_ok(self.state)

    def post_mortem(self, label: str) -> dict[str, Any]:
        """What a dead or hung lab shows: QEMU alive, its CPU use, QMP's status and registers'
        first line, the console's last lines (the whole log kept in /tmp)."""
        assert self.state is not None
        pid, out = self.state.pid, Path(f"/tmp/{NAME}-{label}-serial.log")
        shutil.copyfile(self.state.serial, out)
        seen: dict[str, Any] = {"qemu_alive": procs.alive(pid), "serial_log_copy": str(out),
                                "console_tail": serial.tail(Path(self.state.serial), 40).splitlines()}
        if seen["qemu_alive"]:
            seen["qemu_cpu_pct"] = round(cpu_percent(pid, 5.0), 1)
            for cmd, args in (("query-status", None), ("human-monitor-command", {"command-line": "info registers"})):
                try:
                    got = qmp(Path(self.state.qmp), cmd, arguments=args).get("return")
                except OSError as exc:
                    got = f"QMP: {exc}"
                seen[cmd] = got if cmd == "query-status" else str(got).splitlines()[:3]
        return seen

    def destroy(self) -> None:
        lab.destroy(self.paths)
        self.state = None


def set_kvm_amd(host: Host, options: dict[str, str]) -> dict[str, str]:
    """kvm_amd reloaded with ``options`` (no guest runs now); its parameters as the module reports."""
    host.run(change("modprobe", "-r", "kvm_amd"))
    host.run(change("modprobe", "kvm_amd", *(f"{k}={v}" for k, v in options.items())))
    out = host.run(read("sh", "-c", "cd /sys/module/kvm_amd/parameters && grep -H . npt vgif nested nrips lbrv "
                                    "2>/dev/null", ok=(0, 2))).stdout
    return dict(ln.split(":", 1) for ln in out.split())


def cpu_flags(host: Host) -> list[str]:
    flags = host.run(read("grep", "-m1", "^flags", "/proc/cpuinfo")).stdout.split(":", 1)[1].split()
    return sorted(f for f in flags if f in ("svm", "npt", "vgif", "nrip_save", "la57", "x2apic", "lbrv", "avic"))


def set_guest_args(host: Host, dom: SmallDomain, args: tuple[str, ...]) -> None:
    """The guest's kernel command line (extlinux.conf's APPEND on its LV) with ``args`` added."""
    device = f"/dev/mapper/{host.site.vg.replace('-', '--')}-{dom.lv.replace('-', '--')}"
    with mounted_root(host, device, f"/mnt/{dom.name}", readonly=False) as mnt:
        host.run(change("sed", "-i", "-e", f"s|^  APPEND .*|& {' '.join(args)}|", f"{mnt}/boot/extlinux/extlinux.conf"))


def vcpu_state(host: Host, name: str) -> list[str]:
    """A stalled guest's vCPU, twice 5 s apart (QEMU's ``info registers`` in the lab): RIP,
    RFLAGS and whether it sits halted (``HLT=1``: waiting for an interrupt) or runs."""
    seen = []
    for _ in range(2):
        out = host.run(read("virsh", "qemu-monitor-command", name, "--hmp", "info registers", ok=(0, 1),
                            timeout=60)).stdout
        seen += [ln.strip() for ln in out.splitlines() if ln.startswith(("RIP=", "ES =", "CR0="))][:2]
        time.sleep(5)
    return seen


def round_of_boots(host: Host, doms: list[SmallDomain], timeout: float) -> list[dict[str, Any]]:
    """Start every domain (back to back), then read their serial logs until each shows its login
    prompt or a fatal stage, or ``timeout`` seconds; each one's verdict, timed from its own start."""
    started: dict[str, float] = {}
    for dom in doms:
        host.run(change("virsh", "start", dom.name, timeout=180))
        started[dom.name] = time.monotonic()
    texts = {d.name: "" for d in doms}
    done: dict[str, boot.BootVerdict] = {}
    while len(done) < len(doms):
        time.sleep(3.0)
        for dom in doms:
            if dom.name in done:
                continue
            texts[dom.name] = host.run(read("cat", dom.log, ok=(0, 1), timeout=120)).stdout
            waited = time.monotonic() - started[dom.name]
            state = boot.classify(texts[dom.name])
            if state.booted or state.fatal or waited >= timeout:
                done[dom.name] = boot.verdict(texts[dom.name], waited)
    stuck = {d.name: vcpu_state(host, d.name) for d in doms if not done[d.name].booted}
    for dom in doms:
        host.run(change("virsh", "destroy", dom.name, timeout=120), check=False)
    return [{"guest": d.name, "booted": done[d.name].booted, "seconds": round(done[d.name].seconds, 1),
             "stage": done[d.name].stage, "last_line": (done[d.name].last or ("",))[-1],
             **({} if done[d.name].booted else {"last_lines": list(done[d.name].last), "vcpu": stuck[d.name]})}
            for d in doms]


def measure(key: str, s: Setting, boots: int, bench_lab: Lab, entry: dict[str, Any]) -> None:
    """Boot the setting's guests ``boots`` times into ``entry`` (filled as it goes: an interrupted
    series keeps the boots it made)."""
    rounds = max(1, boots // s.together)
    timeout = TIMEOUT[s.domain_type]
    entry |= {"title": s.title, "lab_cpu": s.cpu, "lab_args": list(s.lab_args),
                             "lab_cpus": s.lab_cpus, "tcg_thread": s.tcg_thread or "default",
                             "guest_args": list(s.guest_args), "kvm_amd_options": s.kvm_amd,
                             "domain_type": s.domain_type, "together": s.together, "boots": [],
                             "lab_deaths": [], "timeout_s": timeout}
    host: Host | None = None
    doms: list[SmallDomain] = []
    ups = len(bench_lab.up_s)

    def prepare() -> Host:
        state = bench_lab.ensure(s.tuning)
        h = connect(load_site(state.site), apply=True)
        entry["kvm_amd_parameters"] = set_kvm_amd(h, s.kvm_amd)
        entry["lab_cpu_flags"] = cpu_flags(h)
        t0 = time.monotonic()
        h.run(read("sha256sum", GUEST_IMAGE_FILE, timeout=900))
        t1 = time.monotonic()
        doms[:] = [define_small_guest(h, f"nb{i}", domain_type=s.domain_type, memory_mib=256)
                   for i in range(s.together)]
        entry.setdefault("lab_work_s", []).append(
            {"sha256sum of the guest image": round(t1 - t0, 1),
             f"{s.together} guest(s) defined (LV, image copied)": round(time.monotonic() - t1, 1)})
        for dom in doms:
            if s.guest_args:
                set_guest_args(h, dom, s.guest_args)
        bench_lab.trouble()
        return h

    try:
        for r in range(rounds):
            if host is None:
                host = prepare()
            load = loadavg()
            t0 = time.monotonic()
            try:
                results = round_of_boots(host, doms, timeout)
            except Exception as exc:  # the lab died under the round (SSH gone)
                results = [{"guest": d.name, "booted": False, "seconds": round(time.monotonic() - t0, 1),
                            "stage": "lab gone", "last_line": str(exc)[:160]} for d in doms]
            trouble = bench_lab.trouble()
            alive = bench_lab.alive()
            forensics = {} if alive and not trouble else bench_lab.post_mortem(f"{key}-round{r}")
            for res in results:
                entry["boots"].append({**res, "round": r, "loadavg_1m": load, "lab_ok": alive and not trouble})
                print(f"{key} round {r}: {res['guest']} {'booted' if res['booted'] else 'NOT booted'} "
                      f"{res['seconds']} s ({res['stage']}: {res['last_line'][:80]!r}); load {load}", flush=True)
            if trouble or not alive:
                entry["lab_deaths"].append({"round": r, "alive": alive, "console": trouble, **forensics})
                print(f"{key} round {r}: the lab {'died' if not alive else 'logged trouble'}: {trouble} {forensics}",
                      flush=True)
                host.close()
                host = None
                bench_lab.destroy()
    finally:
        if host is not None:
            for dom in doms:
                remove_small_guest(host, dom)
            host.close()
        entry["lab_up_s"] = bench_lab.up_s[ups:]  # lab up (boot + prepare) during this setting, if booted
        entry["summary"] = summary(entry)
        print(f"{key}: {entry['summary']}", flush=True)


def summary(entry: dict[str, Any]) -> dict[str, Any]:
    secs = [b["seconds"] for b in entry["boots"] if b["booted"]]
    return {"boots": len(entry["boots"]), "booted": len(secs),
            "stalled": sum(1 for b in entry["boots"] if not b["booted"] and b["stage"] != "lab gone"),
            "lab_deaths": len(entry["lab_deaths"]),
            "min_s": min(secs) if secs else None, "median_s": statistics.median(secs) if secs else None,
            "max_s": max(secs) if secs else None}


def save(doc: dict[str, Any], key: str, entry: dict[str, Any], busy_cores: int, seconds: float) -> None:
    """The setting's entry (complete or as far as it got) into the results file."""
    if not entry.get("boots"):
        return
    entry.update(busy_cores=busy_cores, measured_s=round(seconds),
                 measured=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    doc["settings"][key] = entry
    doc.update(bench="lab_nested_boot", measured=entry["measured"], machine=machine(),
               qemu=subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True,
                                   text=True, check=False).stdout.splitlines()[0])
    RESULTS.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results: {RESULTS}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--boots", type=int, default=10, help="boots per setting (default 10)")
    ap.add_argument("--busy", type=int, default=1, help="host cores kept busy meanwhile (default 1)")
    ap.add_argument("--settings", default="kvm,kvm-epyc,kvm-npt0,tcg", help=f"of {', '.join(SETTINGS)}")
    args = ap.parse_args()
    keys = args.settings.split(",")
    unknown = [k for k in keys if k not in SETTINGS]
    if unknown:
        ap.error(f"unknown setting(s) {unknown}; known: {', '.join(SETTINGS)}")
    doc: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    doc.setdefault("settings", {})
    bench_lab = Lab()
    try:
        with busy(args.busy):
            for key in keys:
                t0 = time.monotonic()
                entry: dict[str, Any] = {}
                try:
                    measure(key, SETTINGS[key], args.boots, bench_lab, entry)
                except KeyboardInterrupt:
                    entry["interrupted"] = True
                    raise
                finally:
                    save(doc, key, entry, args.busy, time.monotonic() - t0)
    finally:
        bench_lab.destroy()


if __name__ == "__main__":
    main()
