"""Fleet inventory time against the number of hosts: N hosts read in parallel over SSH.

Each simulated host is a site reached over real SSH (one private sshd on 127.0.0.1, strict
host keys) whose LVM commands see a real scratch VG on a loop device, and whose libvirt is a
test-driver node file (8 guests). So every host costs what a real one costs kvmops: an SSH
connection, the LVM report and the listing; only the network latency of a real fleet is
missing. Needs root (loop device, sshd). Run: .venv/bin/python bench/fleet_inventory.py
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TOP))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import write_results  # noqa: E402

from kvmops.facts.fleet import read_fleet  # noqa: E402
from kvmops.fleet.hosts import FleetHost  # noqa: E402
from kvmops.site import load_site  # noqa: E402
from tests.support.loop import scratch_vg  # noqa: E402
from tests.support.sshd import private_sshd  # noqa: E402

SIZES = (1, 5, 10, 25, 50)
CONCURRENCY = 8
NODE = "<node>\n" + "".join(
    f"<domain type='test'><name>g{i}</name><memory unit='KiB'>1048576</memory><vcpu>1</vcpu>"
    f"<os><type>hvm</type></os><devices><disk type='block' device='disk'><source dev='/dev/rl_build/vmg{i}'/>"
    f"<target dev='vda'/></disk></devices></domain>\n" for i in range(8)) + "</node>\n"


def site_file(folder: Path, name: str, port: int, key: Path, known: Path) -> Path:
    guide = (TOP / "kvmops/sites/guide.toml").read_text()
    text = guide.replace('name = "build.galaxyproject.eu"', f'name = "{name}"')
    text = re.sub(r'(?m)^ssh = "".*$', f'ssh = "root@127.0.0.1"\nssh_port = {port}\nssh_identity = "{key}"\n'
                                         f'ssh_known_hosts = "{known}"', text)
    text = text.replace('uri = "qemu:///system"', f'uri = "test://{folder / "node.xml"}"')
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("needs root (a loop device for the scratch VG, sshd)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "lvm").mkdir()
        (folder / "sshd").mkdir()
        (folder / "node.xml").write_text(NODE)
        with scratch_vg(folder / "lvm", "rl_build", "64M"), \
                private_sshd(folder / "sshd", extra=f"SetEnv LVM_SYSTEM_DIR={folder / 'lvm'}\nMaxStartups 100\n"
                                                    "MaxSessions 100\n") as sshd:
            for n in SIZES:
                hosts = [FleetHost(f"kvm{i:02d}", load_site(site_file(folder, f"kvm{i:02d}", sshd.port,
                                                                      sshd.identity, sshd.known_hosts)), "bench")
                         for i in range(n)]
                t0 = time.monotonic()
                got = read_fleet(hosts, concurrency=CONCURRENCY, timeout=120)
                took = time.monotonic() - t0
                failed = [r.host.name for r in got if r.error]
                rows.append({"hosts": n, "seconds": round(took, 2), "per_host_s": round(took / n, 3),
                             "failed": failed})
                print(f"{n:3d} hosts: {took:6.2f} s ({took / n:.3f} s a host), failed: {failed or 'none'}")
    write_results("fleet_inventory", {
        "concurrency": CONCURRENCY, "results": rows,
        "what": "each host: an SSH connection to 127.0.0.1 (strict host keys), vgs + lvs of a real scratch VG, "
                "a libvirt listing of 8 test-driver guests",
    })


if __name__ == "__main__":
    main()
