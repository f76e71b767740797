"""Fleet inventory time against the number of hosts, the read of now side by side with the
read before it, and where a host's time goes.

Each simulated host is a site reached over real SSH (a private sshd on 127.0.0.1, strict host
keys) whose LVM commands see a real scratch VG on a loop device, and whose libvirt is a
test-driver node file (8 guests). So every host costs what a real one costs kvmops: an SSH
connection, the LVM reports and the listing; only the network latency of a real fleet is
missing. Needs root (loop device, sshd). Run: ``.venv/bin/python bench/fleet_inventory.py
[--rounds 3]``.

- *before*: each host read as every single-host command reads it: ``vgs``, then ``lvs``, two
  commands over the shared connection;
- *now*: :func:`kvmops.facts.fleet.read_one`: one ``lvm fullreport`` over one connection;
- *now, curve25519 KEX* (information only): the same with ``KexAlgorithms=curve25519-sha256``,
  to show what OpenSSH's default post-quantum key exchange (sntrup761x25519) costs per host.
  kvmops does not choose the key exchange: that is the operator's ssh configuration.

Each with this machine's root shell as it is (its ~/.bashrc runs ``pyenv init`` for every
command over SSH: about 85 ms of CPU) and with a plain one (the bench's sshd sets SHLVL=1, so
bash skips ~/.bashrc), as a KVM host's root shell is. Before the fleet runs, one host is read
step by step (wall time of each step, medians of 5): where a host's time goes.

Each measurement starts its own sshd, so that the CPU time of the sshd side (its sessions
and the LVM commands are its children) is counted apart from the ssh clients' and kvmops'.
Rounds interleave the readers; medians are kept. Goal (issue 26): 50 hosts in at most 4 s.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import write_results  # noqa: E402

from kvmops.cmd import read  # noqa: E402
from kvmops.facts import read_facts  # noqa: E402
from kvmops.facts.fleet import OneRead, read_fleet, read_one  # noqa: E402
from kvmops.fleet.hosts import FleetHost  # noqa: E402
from kvmops.host import Host, connect  # noqa: E402
from kvmops.hostfacts import HostFacts, Wanted  # noqa: E402
from kvmops.lvm.facts import lvs_cmd, report_cmd, vgs_cmd  # noqa: E402
from kvmops.runners import SSHRunner  # noqa: E402
from kvmops.site import load_site  # noqa: E402
from kvmops.sshtarget import SSHTarget  # noqa: E402
from tests.support.loop import scratch_vg  # noqa: E402
from tests.support.sshd import Sshd, private_sshd  # noqa: E402

SIZES = (50,)
CONCURRENCY = 8
GOAL = {"hosts": 50, "seconds": 4.0}
NODE = "<node>\n" + "".join(
    f"<domain type='test'><name>g{i}</name><memory unit='KiB'>1048576</memory><vcpu>1</vcpu>"
    f"<os><type>hvm</type></os><devices><disk type='block' device='disk'><source dev='/dev/rl_build/vmg{i}'/>"
    f"<target dev='vda'/></disk></devices></domain>\n" for i in range(8)) + "</node>\n"
Reader = Callable[[FleetHost, Wanted], HostFacts]


def site_file(folder: Path, name: str, port: int, key: Path, known: Path) -> Path:
    guide = (TOP / "kvmops/sites/guide.toml").read_text()
    text = guide.replace('name = "build.galaxyproject.eu"', f'name = "{name}"')
    text = re.sub(r'(?m)^ssh = "".*$', f'ssh = "root@127.0.0.1"\nssh_port = {port}\nssh_identity = "{key}"\n'
                                         f'ssh_known_hosts = "{known}"', text)
    text = text.replace('uri = "qemu:///system"', f'uri = "test://{folder / "node.xml"}"')
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def read_before(host: FleetHost, wanted: Wanted) -> HostFacts:
    """The read before: the facts as a single-host command reads them (vgs, then lvs)."""
    conn = connect(host.site)
    try:
        return read_facts(conn, wanted)
    finally:
        conn.close()


def read_curve25519(host: FleetHost, wanted: Wanted) -> HostFacts:
    """The read of now over a connection with the classic curve25519 key exchange."""
    s = host.site
    target = SSHTarget(s.ssh, s.ssh_port, s.ssh_identity, s.ssh_known_hosts)
    conn = connect(s, runner=SSHRunner(target, ("KexAlgorithms=curve25519-sha256",)))
    try:
        return read_facts(conn, wanted, source=OneRead(conn))
    finally:
        conn.close()


# label -> (reader, the remote shell as this machine's root has it (True) or a plain one)
READERS: dict[str, tuple[Reader, bool]] = {
    "before (vgs, lvs), this machine's root shell": (read_before, True),
    "now (one lvm fullreport), this machine's root shell": (read_one, True),
    "before (vgs, lvs), plain root shell": (read_before, False),
    "now (one lvm fullreport), plain root shell": (read_one, False),
    "now, plain root shell, curve25519 KEX (information)": (read_curve25519, False),
}
PLAIN_SHELL = "SHLVL=1"  # bash reads ~/.bashrc for an sshd session only at level 1


def cpu() -> tuple[float, float]:
    a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime, b.ru_utime + b.ru_stime


def sshd_conf(folder: Path, machine_shell: bool = True) -> str:
    """The sshd's settings: LVM sees the scratch VG; with ``machine_shell`` False, root's shell
    does not read this machine's ~/.bashrc (it runs ``pyenv init``: about 85 ms of CPU for every
    command; a KVM host's root has no such thing)."""
    plain = "" if machine_shell else f" {PLAIN_SHELL}"  # one SetEnv line: sshd uses the first it finds
    return f"SetEnv LVM_SYSTEM_DIR={folder / 'lvm'}{plain}\nMaxStartups 100\nMaxSessions 100\n"


def measure(folder: Path, name: str, reader: Reader, machine_shell: bool, n: int) -> dict[str, Any]:
    """Read ``n`` hosts on a fresh sshd; wall time and CPU time by side, per host."""
    run = folder / f"sshd-{abs(hash((name, n, time.monotonic())))}"
    run.mkdir()
    with private_sshd(run, extra=sshd_conf(folder, machine_shell)) as sshd:
        hosts = hosts_of(folder, sshd, n)
        c1, t0 = cpu(), time.monotonic()
        got = read_fleet(hosts, concurrency=CONCURRENCY, timeout=120, reader=reader)
        took, c2 = time.monotonic() - t0, cpu()
    c3 = cpu()
    failed = [r.host.name for r in got if r.error]
    if failed:
        raise SystemExit(f"{name}: hosts not read: {failed}: {got[0].error}")
    return {"reader": name, "hosts": n, "seconds": round(took, 2), "per_host_s": round(took / n, 3),
            "cpu_ms_per_host": {"kvmops": round((c2[0] - c1[0]) / n * 1000),
                                "ssh_clients": round((c2[1] - c1[1]) / n * 1000),
                                "sshd_side": round((c3[1] - c2[1]) / n * 1000)}}


def hosts_of(folder: Path, sshd: Sshd, n: int) -> list[FleetHost]:
    return [FleetHost(f"kvm{i:02d}", load_site(site_file(folder, f"kvm{i:02d}", sshd.port, sshd.identity,
                                                          sshd.known_hosts)), "bench") for i in range(n)]


def steps(conn: Host) -> list[tuple[str, Callable[[], object]]]:
    """One host's read, step by step, on a fresh connection."""
    return [
        ("ssh connection (handshake, key exchange, auth) + `true`", lambda: conn.runner.run(read("true"))),
        ("one more command over it (`true`: a session, the remote shell)", lambda: conn.runner.run(read("true"))),
        ("`vgs`", lambda: conn.runner.run(vgs_cmd())),
        ("`lvs VG`", lambda: conn.runner.run(lvs_cmd(conn.site.vg))),
        ("`lvm fullreport` (both reports)", lambda: conn.runner.run(report_cmd())),
        ("libvirt: open, 8 domains, limits", lambda: (conn.virt.domains(), conn.virt.limits("kvm"))),
        ("close (`ssh -O exit`)", conn.close),
    ]


def phases(folder: Path, runs: int = 5) -> dict[str, float]:
    """One host read alone, step by step (wall ms, medians): where its time goes."""
    got: dict[str, list[float]] = {}
    with private_sshd(folder / "phases", extra=sshd_conf(folder)) as sshd:
        (host,) = hosts_of(folder, sshd, 1)
        for _ in range(runs):
            for label, fn in steps(connect(host.site)):
                t0 = time.monotonic()
                fn()
                got.setdefault(label, []).append((time.monotonic() - t0) * 1000)
    return {k: round(statistics.median(v), 1) for k, v in got.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (a loop device for the scratch VG, sshd)")
    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "lvm").mkdir()
        (folder / "phases").mkdir()
        (folder / "node.xml").write_text(NODE)
        with scratch_vg(folder / "lvm", "rl_build", "64M"):
            step = phases(folder)
            for label, ms in step.items():
                print(f"{label:70} {ms:7.1f} ms", flush=True)
            for _ in range(args.rounds):
                for n in SIZES:
                    for name, (reader, machine_shell) in READERS.items():
                        rows.append(measure(folder, name, reader, machine_shell, n))
                        print(rows[-1], flush=True)
    load_after = os.getloadavg()
    medians = [{"reader": name, "hosts": n,
                "seconds": round(statistics.median(r["seconds"] for r in rows
                                                   if r["reader"] == name and r["hosts"] == n), 2),
                "cpu_ms_per_host": {k: round(statistics.median(r["cpu_ms_per_host"][k] for r in rows
                                                               if r["reader"] == name and r["hosts"] == n))
                                    for k in ("kvmops", "ssh_clients", "sshd_side")}}
               for n in SIZES for name in READERS]
    for m in medians:
        print(f"{m['reader']:54} {m['hosts']:3d} hosts: {m['seconds']:6.2f} s  cpu per host {m['cpu_ms_per_host']}")
    write_results("fleet_inventory", {
        "concurrency": CONCURRENCY, "rounds": args.rounds, "goal": GOAL, "phases_ms": step, "medians": medians,
        "results": rows, "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
        "what": "each host: an SSH connection to 127.0.0.1 (strict host keys), the LVM reports of a real scratch VG, "
                "a libvirt listing of 8 test-driver guests; CPU per host by side (ssh clients, the sshd side: "
                "its sessions, the remote shell, LVM)",
    })


if __name__ == "__main__":
    main()
