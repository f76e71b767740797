"""A fleet read for real over SSH: hosts from an Ansible inventory (YAML), each an sshd on
127.0.0.1 with strict host keys whose LVM commands see a scratch VG; one host that does not
answer is reported, never fatal; the fleet record lands in the journal; `fits` picks a host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need_tools
from tests.support.sshd import Sshd, free_port, private_sshd

pytestmark = pytest.mark.integration
# libvirt's test driver as each host's libvirt: 8 GiB, 4 CPUs, one running guest of 2 GiB
NODE = """<node>
  <cpu><mhz>2000</mhz><nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads></cpu>
  <memory>8388608</memory>
  <domain type='test'><name>db1</name><memory unit='KiB'>2097152</memory><vcpu>2</vcpu>
    <os><type>hvm</type></os><devices/></domain>
</node>
"""


@pytest.fixture
def sshd(tmp_path: Path, site_vg: str) -> Iterator[Sshd]:
    need_tools("sshd", "ssh", "lvm")
    folder = tmp_path / "sshd"
    folder.mkdir()
    with private_sshd(folder, extra=f"SetEnv LVM_SYSTEM_DIR={os.environ['LVM_SYSTEM_DIR']}\n") as s:
        yield s


def inventory(tmp_path: Path, sshd: Sshd) -> Path:
    """Two KVM hosts on the sshd, a third whose port nobody listens on; a web host not in kvm."""
    site = tmp_path / "base.toml"
    guide = (Path(__file__).parents[2] / "kvmops/sites/guide.toml").read_text()
    (tmp_path / "node.xml").write_text(NODE)
    site.write_text(guide.replace('uri = "qemu:///system"', f'uri = "test://{tmp_path / "node.xml"}"'))
    dead = free_port()
    inv = tmp_path / "hosts.yml"
    inv.write_text(f"""\
all:
  vars:
    ansible_user: root
    ansible_host: 127.0.0.1
    ansible_ssh_private_key_file: {sshd.identity}
    kvmops_known_hosts: {sshd.known_hosts}
  children:
    kvm:
      vars:
        kvmops_site: base.toml
      hosts:
        kvm1: {{ansible_port: {sshd.port}}}
        kvm2: {{ansible_port: {sshd.port}}}
        kvm3: {{ansible_port: {dead}}}
    web:
      hosts:
        www1: {{}}
""")
    return inv


def kvmops(*args: str, journal: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KVMOPS_JOURNAL": str(journal)}
    return subprocess.run([sys.executable, "-m", "kvmops.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_fleet_inventory_over_ssh_with_a_silent_host(tmp_path: Path, sshd: Sshd) -> None:
    inv = inventory(tmp_path, sshd)
    res = kvmops("fleet", "inventory", "--fleet", str(inv), "--timeout", "60", journal=tmp_path / "journal")
    assert res.returncode == 1, res.stderr  # one host not read: exit 1, the others reported
    lines = {ln.split()[0]: ln for ln in res.stdout.splitlines() if ln.split()}
    assert "60.00 MiB of 60.00 MiB" in lines["kvm1"] and "60.00 MiB of" in lines["kvm2"]  # the scratch VG, over SSH
    assert "2.00 GiB of 8.00 GiB" in lines["kvm1"] and "2 of 4" in lines["kvm1"]
    assert "NOT READ" in lines["kvm3"] and "www1" not in lines
    assert "1 host(s) not read" in lines["TOTAL"]
    (record,) = (tmp_path / "journal").glob("*-fleet-inventory/fleet.json")
    data = json.loads(record.read_text())
    assert [h["name"] for h in data["hosts"]] == ["kvm1", "kvm2", "kvm3"] and data["hosts"][2]["error"]


def test_which_host_fits_a_new_guest(tmp_path: Path, sshd: Sshd) -> None:
    inv = inventory(tmp_path, sshd)
    ok = kvmops("fleet", "fits", "--fleet", str(inv), "--memory", "1g", "--vcpus", "1", "--disk", "32m",
                "--timeout", "60", journal=tmp_path / "journal")
    assert ok.returncode == 0, ok.stderr
    assert "FITS     kvm1" in ok.stdout and "no       kvm3: not read" in ok.stdout and "best: kvm" in ok.stdout
    big = kvmops("fleet", "fits", "--fleet", str(inv), "--memory", "1g", "--vcpus", "1", "--disk", "10g",
                 "--timeout", "60", journal=tmp_path / "journal")
    assert big.returncode == 1 and "disk: VG rl_build has" in big.stdout and "no host has room" in big.stdout
