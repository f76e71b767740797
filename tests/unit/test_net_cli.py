"""``kvmops net`` against a test-driver site: bad input is a clear error (exit 2) before any
command; addresses planned from the host's facts, recorded and verified; bridges in use refused.

The bed (tests/unit/test_guest_testbed.py): libvirt's test driver with guests web1 (running)
and db1 (shut off) on virbr1.2368; LVM and network facts from captured outputs; files local.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kvmops import host as host_module
from kvmops.cli.main import main
from kvmops.cmd import Cmd, Result
from kvmops.errors import NotFound
from kvmops.facts import FactsSource
from kvmops.runners.base import LineSink
from kvmops.site import default_site_path
from tests.support.netns import FixtureRunner
from tests.unit.test_guest_testbed import Bed, ReplayRunner, bed

__all__ = ["bed"]


class BedRunner(ReplayRunner):
    """Captured LVM reports and network facts (the guide's host); anything else runs locally."""

    def __init__(self) -> None:
        super().__init__()
        self.net = FixtureRunner()

    def _execute(self, cmd: Cmd, on_line: LineSink | None) -> Result:
        if cmd.argv[0] in ("nmcli", "ip", "bridge") and not cmd.mutates:
            return self.net._execute(cmd, on_line)
        return super()._execute(cmd, on_line)


@pytest.fixture
def site(bed: Bed, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(host_module, "runner_for", lambda _site: BedRunner())
    return bed.site.path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("argv", "message"), [
    (["net", "bridge", "5000"], "VLAN id 5000 is outside 1-4094"),
    (["net", "bridge", "99"], "VLAN 99 is not a network of site"),
    (["net", "remove", "virbr1.123456789"], "bridge interface name 'virbr1.123456789' is 16 characters"),
    (["net", "address", "t1", "--vlan", "2368", "--ip", "10.5.67.3"], "not in VLAN 2368's network"),
    (["net", "address", "t1", "--vlan", "2368", "--ip", "10.5.68.3/255"], "not an address/prefix"),
    (["net", "address", "t1", "--vlan", "2368", "--ip", "10.5.68.3", "--dns", "dns.example"],
     "DNS server 'dns.example' is not an IPv4 address"),
    (["net", "release", "t1", "--vlan", "0"], "VLAN id 0 is outside 1-4094"),
])
def test_bad_input_exits_2_with_a_clear_message(argv: list[str], message: str, site: str, bed: Bed,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = run(capsys, *argv, "--site", site)
    assert code == 2 and err.startswith("kvmops: error: ") and message in err
    assert not bed.xml_dir.exists()  # nothing was written


def test_address_shows_settings_records_and_detects_conflicts(
        site: str, bed: Bed, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--site", site]
    code, out, _ = run(capsys, "net", "address", "test1", "--vlan", "2368", "--ip", "10.5.68.237", *base)
    assert code == 0
    assert "nmcli con modify eth0 connection.interface-name eth0 ipv4.method manual" in out
    assert "NOTE: VLAN 2368 may have a DHCP service" in out  # the site does not say: reminded
    assert "(not recorded" in out
    registry = bed.xml_dir / "addresses.toml"
    assert not registry.exists()

    args = ["net", "address", "test1", "--vlan", "2368", "--ip", "10.5.68.237", "--record", *base]
    code, out, _ = run(capsys, *args)  # plan only
    assert code == 0 and "install -D -m 0644 /dev/stdin" in out and not registry.exists()
    code, out, _ = run(capsys, *args, "--apply")
    assert code == 0 and 'guest = "test1"' in registry.read_text()
    assert f"ok: {registry} records 10.5.68.237 for guest test1 on VLAN 2368" in out

    code, _, err = run(capsys, "net", "address", "db1", "--vlan", "2368", "--ip", "10.5.68.237", *base)
    assert code == 2 and "10.5.68.237 is taken by guest 'test1'" in err

    assert " 2368  10.5.68.237      test1" in run(capsys, "net", "addresses", *base)[1]
    code, out, _ = run(capsys, "net", "release", "test1", "--apply", *base)
    assert code == 0 and "ok: " in out and "test1" not in registry.read_text()


def test_no_reminder_on_a_network_the_site_says_has_no_dhcp(
        site: str, bed: Bed, capsys: pytest.CaptureFixture[str]) -> None:
    text = Path(site).read_text().replace("id = 2368\n", 'id = 2368\ndhcp = "no"\n')
    text = text.replace("id = 223\n", 'id = 223\ndhcp = "yes"\n')
    Path(site).write_text(text)
    out = run(capsys, "net", "address", "web1", "--vlan", "2368", "--ip", "10.5.68.10", "--site", site)[1]
    assert "NOTE" not in out
    out = run(capsys, "net", "address", "new1", "--vlan", "223", "--ip", "132.230.223.10", "--site", site)[1]
    assert "NOTE: VLAN 223 has an active DHCP service: add a reservation for 132.230.223.10 (guest new1)" in out


def test_address_takes_one_per_vlan_like_guest_create(site: str, bed: Bed, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--site", site]
    code, out, _ = run(capsys, "net", "address", "new1", "--address", "2368=10.5.68.61,223=132.230.223.61",
                       "--gateway-vlan", "223", "--record", "--apply", *base)
    assert code == 0
    assert "guest new1 NIC 1 (eth0): 10.5.68.61/24 on VLAN 2368 (bridge virbr1.2368), no default route" in out
    assert "guest new1 NIC 2 (eth1): 132.230.223.61/24 on VLAN 223 (bridge virbr1.223), default route via " \
           "132.230.223.254, DNS 132.230.200.200" in out
    assert "routes: default route via 132.230.223.254 on NIC 2 (VLAN 223); DNS 132.230.200.200 on NIC 2" in out
    text = (bed.xml_dir / "addresses.toml").read_text()
    assert 'ip = "10.5.68.61"' in text and 'ip = "132.230.223.61"' in text
    # a defined guest: the profile is bound to its NIC's MAC
    code, out, _ = run(capsys, "net", "address", "web1", "--vlan", "2368", "--ip", "10.5.68.62", *base)
    assert code == 0 and "ethernet.mac-address 52:54:00:" in out and "with MAC 52:54:00:" in out
    code, _, err = run(capsys, "net", "address", "new2", "--vlan", "2368", *base)
    assert code == 2 and "give --vlan and --ip together" in err


def test_remove_of_a_bridge_defined_guests_use_is_refused(site: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "net", "remove", "virbr1.2368", "--confirm", "virbr1.2368", "--apply",
                       "--site", site)
    assert code == 2 and "guests are attached to virbr1.2368 (guest " in err and "nothing was changed" in err


def test_bridge_and_list_plan_from_the_facts(site: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "net", "bridge", "223", "--site", site)
    assert code == 0 and "nmcli connection add type bridge ifname virbr1.223" in out
    code, out, _ = run(capsys, "net", "list", "--site", site)
    assert code == 1 and "virbr1.223: bridge missing" in out  # drift: exit 1


class UnrecordedFiles:
    """The demo's facts source, where a file not recorded is missing (as in the recorded facts
    value that replaces the demo's recorded command outputs; with it, this wrapper is a no-op)."""

    def __init__(self, inner: FactsSource) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def file(self, path: str) -> str | None:
        try:
            return self.inner.file(path)
        except NotFound:  # "demo has no recorded output for `cat -- PATH`"
            return None


def test_demo_site_plans_addresses_and_vlans_never_recorded(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import kvmops.facts

    recorded = kvmops.facts.source_of
    monkeypatch.setattr(kvmops.facts, "source_of", lambda host: UnrecordedFiles(recorded(host)))
    demo = str(default_site_path().parent / "demo.toml")
    for vlan, ip in (("2368", "10.5.68.237"), ("2367", "10.5.67.42"), ("223", "132.230.223.200")):
        code, out, err = run(capsys, "net", "address", "--site", demo, "vmtest1", "--ip", ip, "--vlan", vlan,
                             "--record")
        assert code == 0, err
        assert "install -D -m 0644 /dev/stdin /root/kvm/addresses.toml.tmp" in out
        assert "(plan only: nothing was changed" in out and f"NOTE: VLAN {vlan} may have a DHCP service" in out
