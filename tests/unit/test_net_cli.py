"""``kvmops net``: bad input is a clear error (exit 2) before any command; addresses recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvmops.cli.main import main
from kvmops.site import default_site_path


@pytest.fixture
def site_file(tmp_path: Path) -> Path:
    text = default_site_path().read_text().replace('xml_dir = "/root/kvm"', f'xml_dir = "{tmp_path}/kvm"')
    text = text.replace('id = 223\n', 'id = 223\ndhcp = true\n')
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


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
def test_bad_input_exits_2_with_a_clear_message(argv: list[str], message: str, site_file: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--site", str(site_file)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kvmops: error: ") and message in err
    assert not (site_file.parent / "kvm").exists()  # nothing was written


def test_address_shows_settings_records_and_detects_conflicts(
        site_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--site", str(site_file)]
    assert main(["net", "address", "test1", "--vlan", "2368", "--ip", "10.5.68.237", *base]) == 0
    out = capsys.readouterr().out
    assert "nmcli con modify eth0 connection.interface-name eth0 ipv4.method manual" in out
    assert "(not recorded" in out
    registry = site_file.parent / "kvm" / "addresses.toml"
    assert not registry.exists()

    args = ["net", "address", "test1", "--vlan", "2368", "--ip", "10.5.68.237", "--record", *base]
    assert main(args) == 0  # plan only
    assert not registry.exists()
    assert main([*args, "--apply"]) == 0
    assert 'guest = "test1"' in registry.read_text()

    assert main(["net", "address", "db1", "--vlan", "2368", "--ip", "10.5.68.237", *base]) == 2
    assert "10.5.68.237 is taken by guest 'test1'" in capsys.readouterr().err

    assert main(["net", "addresses", *base]) == 0
    assert " 2368  10.5.68.237      test1" in capsys.readouterr().out
    assert main(["net", "release", "test1", "--apply", *base]) == 0
    assert "test1" not in registry.read_text()


def test_dhcp_network_prints_the_reminder(site_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["net", "address", "web1", "--vlan", "223", "--ip", "132.230.223.10",
                 "--site", str(site_file)]) == 0
    assert "NOTE: VLAN 223 has an active DHCP service" in capsys.readouterr().out
