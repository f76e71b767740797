"""A testbed for the guest tests: a site file, a libvirt test-driver node and hosts on them.

Each test gets its own ``test:///<tmp>/node.xml`` URI (the test driver starts fresh on every
open of a file), a site whose ``xml_dir`` is a temp folder, and a LocalRunner, so the XML
file goes through a real runner. The tests at the bottom check the testbed itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kvmops.cmd import Cmd, Result
from kvmops.facts import read_facts
from kvmops.host import Host
from kvmops.hostfacts import HostFacts, Wanted
from kvmops.lvm.facts import parse_lvs, parse_vgs
from kvmops.lvm.state import LvmState
from kvmops.runners import LocalRunner, PlanRunner
from kvmops.runners.base import LineSink, Runner
from kvmops.site import Site, load_site

LVM_FIX = Path(__file__).parent.parent / "fixtures" / "lvm"
LIBVIRT_FIX = Path(__file__).parent.parent / "fixtures" / "libvirt"

SITE_TOML = """\
[host]
name = "testhost"

[storage]
vg = "rl_build"
lv_prefix = "vm"

[libvirt]
uri = "{uri}"
domain_type = "kvm"
emulator = "/usr/libexec/qemu-kvm"
xml_dir = "{xml_dir}"
seed_dir = "{xml_dir}"

[network]
uplink = "ens802f1"
dns = ["132.230.200.200"]

[[network.vlan]]
id = 2368
cidr = "10.5.68.0/24"

[[network.vlan]]
id = 223
cidr = "132.230.223.0/24"
"""

# A shut-off guest on vmtest1 and a running one on vmtest2 (which has a snapshot in the
# LVM fixture), plus a shut-off guest whose disk LV does not exist and one on a file.
NODE_XML = """\
<node>
  <cpu><mhz>2000</mhz><nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads></cpu>
  <memory>8388608</memory>
{domains}
</node>
"""

DOMAIN = """\
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>{name}</name>
    <memory unit='KiB'>{kib}</memory>
    <vcpu>{vcpus}</vcpu>
    <os><type>hvm</type></os>
    <devices>
      <disk type='{dtype}' device='disk'><source {attr}='{source}'/><target dev='vda' bus='virtio'/></disk>
      <interface type='bridge'><source bridge='virbr1.2368'/></interface>
    </devices>
    <test:runstate>{runstate}</test:runstate>
  </domain>"""

RUNNING, SHUTOFF = 1, 5
DEFAULT_DOMAINS = (
    ("web1", 1048576, 2, "/dev/rl_build/vmtest2", RUNNING),
    ("db1", 2097152, 1, "/dev/rl_build/vmgone", SHUTOFF),
    ("ext1", 524288, 1, "/var/lib/libvirt/images/ext1.raw", SHUTOFF),
)


def domain_xml(name: str, kib: int, vcpus: int, source: str, runstate: int) -> str:
    block = source.startswith("/dev/")
    return DOMAIN.format(name=name, kib=kib, vcpus=vcpus, source=source, runstate=runstate,
                         dtype="block" if block else "file", attr="dev" if block else "file")


def write_node(path: Path, domains: tuple[tuple[str, int, int, str, int], ...] = DEFAULT_DOMAINS) -> str:
    """Write a test-driver node file; returns its ``test:///`` URI."""
    path.write_text(NODE_XML.format(domains="\n".join(domain_xml(*d) for d in domains)))
    return f"test://{path.resolve()}"


def write_site(tmp: Path, uri: str) -> Site:
    site_file = tmp / "site.toml"
    site_file.write_text(SITE_TOML.format(uri=uri, xml_dir=tmp / "kvm"))
    return load_site(site_file)


def lvm_state(lvs: str = "lab-snapshot", vgs: str = "guide-host") -> LvmState:
    """Real captured reports: vmtest1, vmtest2 and its 78.44 % full snapshot; VG rl_build."""
    (vg,) = parse_vgs((LVM_FIX / f"{vgs}.vgs.out").read_text())
    return LvmState(vg, parse_lvs((LVM_FIX / f"{lvs}.lvs.out").read_text()))


class ReplayRunner(Runner):
    """Answers ``vgs``/``lvs`` with captured reports; anything else runs locally."""

    def __init__(self, lvs: str = "lab-snapshot", vgs: str = "guide-host") -> None:
        super().__init__()
        self.host = "testhost"
        self.outputs = {"vgs": (LVM_FIX / f"{vgs}.vgs.out").read_text(),
                        "lvs": (LVM_FIX / f"{lvs}.lvs.out").read_text()}
        self.local = LocalRunner("testhost")

    def stream_argv(self, cmd: Cmd) -> list[str]:
        return self.local.stream_argv(cmd)  # a run's locks: held on this machine

    def _execute(self, cmd: Cmd, on_line: LineSink | None) -> Result:
        if cmd.argv[0] in self.outputs:
            return Result(cmd, self.host, 0, self.outputs[cmd.argv[0]], "", 0.0)
        return self.local._execute(cmd, on_line)


class Bed:
    """One test's world: its site, node URI, xml_dir and hosts (apply or plan-only)."""

    def __init__(self, tmp: Path, domains: tuple[tuple[str, int, int, str, int], ...] = DEFAULT_DOMAINS):
        self.tmp = tmp
        self.uri = write_node(tmp / "node.xml", domains)
        self.site = write_site(tmp, self.uri)
        self.xml_dir = tmp / "kvm"
        self.hosts: list[Host] = []

    def host(self, *, apply: bool = True, runner: Runner | None = None) -> Host:
        """A host on this bed: LVM reports replayed from captured output, other commands run
        locally. Each host has its own libvirt connection, hence its own fresh node: read a
        host's facts with :func:`facts` to see what was done through that host."""
        real = runner or ReplayRunner()
        h = Host(self.site, real if apply else PlanRunner(real), self.uri)
        self.hosts.append(h)
        return h

    def close(self) -> None:
        for h in self.hosts:
            h.close()


def facts(host: Host, wanted: Wanted | None = None) -> HostFacts:
    """The facts of ``host``: its libvirt connection and its runner's (replayed) LVM reports."""
    return read_facts(host, wanted)


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    b = Bed(tmp_path)
    yield b
    b.close()


# -- the testbed itself ----------------------------------------------------------------------


def test_each_bed_has_its_own_node_and_site(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one, two = Bed(tmp_path / "a"), Bed(tmp_path / "b", domains=())
    try:
        assert [d.name for d in one.host().virt.domains()] == ["db1", "ext1", "web1"]
        assert two.host().virt.domains() == ()
        assert one.site.xml_dir == str(tmp_path / "a" / "kvm")
        web1 = one.host().virt.info("web1")
        assert (web1.state, web1.active) == ("running", True)
        assert one.host().virt.info("db1").state == "shut off"
    finally:
        one.close()
        two.close()


def test_replay_runner_serves_captured_reports() -> None:
    r = ReplayRunner()
    assert '"vmtest2_snap"' in r.run(Cmd(("lvs", "x"))).stdout
    assert r.run(Cmd(("true",))).returncode == 0
