"""Fleets: hosts from site files or an Ansible inventory (YAML, INI read with ansible-core's
library: what `ansible-inventory` gives, precedence included; or its JSON), facts read in
parallel with a time limit per host, what each host has room for, and which host fits a new
guest. The hostile inventories are in test_hostile_inputs.py."""

from __future__ import annotations

import importlib.util
import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from kvmops.errors import ConfigError, KvmopsError
from kvmops.facts.fleet import load_fleet, read_fleet
from kvmops.facts.inventory import read_inventory
from kvmops.fleet.ansible import read_list_json
from kvmops.fleet.hosts import FleetHost, site_of_host
from kvmops.fleet.room import fit, ranked, render, room_of
from kvmops.hostfacts import HostFacts, Wanted
from kvmops.lvm.facts import LV, VG
from kvmops.lvm.state import LvmState
from kvmops.site import load_site
from tests.support.facts import domain, host_facts

FIX = Path(__file__).parent.parent / "fixtures" / "ansible"
GiB = 1 << 30


def _expected(name: str) -> dict[str, dict[str, object]]:
    """Ansible's own answer (captured with ansible-inventory 2.19): host -> its variables."""
    inv = read_list_json((FIX / name).read_text(), name)
    return {h: inv.vars_of(h) for h in inv.hosts_of("kvm")}


needs_ansible = pytest.mark.skipif(importlib.util.find_spec("ansible") is None,
                                   reason="ansible-core not installed (a test dependency)")


@needs_ansible
@pytest.mark.parametrize(("source", "oracle"), [("inv.yml", "inv.yml.list.json"), ("inv.ini", "inv.ini.list.json")])
def test_ansibles_library_reads_the_files_as_ansible_inventory_does(source: str, oracle: str) -> None:
    inv = read_inventory(FIX / source)
    assert {h: inv.vars_of(h) for h in inv.hosts_of("kvm")} == _expected(oracle)


def test_exported_json_keeps_group_vars_in_the_groups_and_they_still_apply() -> None:
    assert _expected("inv.ini.export.json") == _expected("inv.ini.list.json")


PRECEDENCE = """\
[kvm-b]
h1
[kvm-a]
h1
[kvm:children]
kvm-b
kvm-a
[kvm-b:vars]
kvmops={"storage": {"vg": "vgB"}}
[kvm-a:vars]
kvmops={"storage": {"vg": "vgA"}}
"""


@needs_ansible
def test_sibling_groups_apply_as_in_ansible_by_name_then_priority(tmp_path: Path) -> None:
    """Two groups of one depth set the same variable: Ansible applies them sorted by name (kvm-b
    last: vgB, as `ansible-inventory --host h1` says), or by ansible_group_priority; the INI
    value ``kvmops={...}`` is a mapping, as in Ansible."""
    (tmp_path / "inv.ini").write_text(PRECEDENCE)
    assert read_inventory(tmp_path / "inv.ini").vars_of("h1")["kvmops"] == {"storage": {"vg": "vgB"}}
    (tmp_path / "inv.ini").write_text(PRECEDENCE + "[kvm-a:vars]\nansible_group_priority=5\n")
    assert read_inventory(tmp_path / "inv.ini").vars_of("h1")["kvmops"] == {"storage": {"vg": "vgA"}}


def test_the_export_json_applies_group_vars_by_depth_priority_and_name() -> None:
    groups = {"all": {"children": ["kvm"]}, "kvm": {"children": ["kvm-b", "kvm-a"]},
              "kvm-b": {"hosts": ["h1"], "vars": {"vg": "vgB"}}, "kvm-a": {"hosts": ["h1"], "vars": {"vg": "vgA"}}}
    inv = read_list_json(json.dumps({"_meta": {"hostvars": {}}, **groups}), "x.json")
    assert inv.vars_of("h1")["vg"] == "vgB"
    groups["kvm-a"]["vars"] = {"vg": "vgA", "ansible_group_priority": 5}
    assert read_list_json(json.dumps({"_meta": {"hostvars": {}}, **groups}), "x.json").vars_of("h1")["vg"] == "vgA"


@needs_ansible
def test_host_ranges_are_ansibles_own(tmp_path: Path) -> None:
    (tmp_path / "inv.ini").write_text("[kvm]\nbuild[01:02] ansible_host=127.0.0.1\n")
    assert read_inventory(tmp_path / "inv.ini").hosts_of("kvm") == ("build01", "build02")


def test_a_missing_group_names_the_groups_there_are() -> None:
    with pytest.raises(ConfigError, match=r"no group 'kvms' \(groups: kvm, web\)"):
        read_list_json((FIX / "inv.yml.list.json").read_text(), "inv.yml").hosts_of("kvms")


@needs_ansible
def test_hosts_become_sites_from_their_variables() -> None:
    hosts = load_fleet([str(FIX / "inv.yml")])
    assert [h.name for h in hosts] == ["build1", "build2"]
    b1 = hosts[0].site
    assert (b1.name, b1.ssh, b1.ssh_port, b1.vg, b1.lv_prefix) == ("build1", "root@127.0.0.1", 2201, "rl_build", "vm")
    assert [n.vlan for n in b1.networks] == [223, 2367, 2368, 68]  # from kvmops_site (sites/galaxy.toml)


def test_a_bad_site_value_names_the_inventory_host_and_key(tmp_path: Path) -> None:
    shutil.copy(FIX / "sites" / "galaxy.toml", tmp_path / "s.toml")
    inv = read_list_json(json.dumps({"_meta": {"hostvars": {"h1": {"kvmops_site": "s.toml", "kvmops": {
        "storage": {"lv_prefix": ""}}}}}, "kvm": {"hosts": ["h1"]}}), "inv.yml")
    with pytest.raises(ConfigError, match="inv.yml: host h1: storage.lv_prefix: must not be empty"):
        site_of_host(inv, "h1", tmp_path)


def test_a_host_named_twice_is_an_error(tmp_path: Path) -> None:
    guide = str(Path(load_site().path))
    with pytest.raises(ConfigError, match="named twice"):
        load_fleet([guide, guide])


def _host(name: str) -> FleetHost:
    return FleetHost(name, load_site(), "test")


def _facts(free: int, *running: tuple[str, int]) -> HostFacts:
    vma = LV("vma", "rl_build", "-wi-ao----", GiB, "", None, None)
    lvm = LvmState(VG("rl_build", 100 * GiB, free, 4 << 20, 1), (vma,))
    doms = []
    for name, kib in running:
        d = domain(name, "/dev/rl_build/vma", active=True)
        doms.append(d.__class__(d.name, d.state, d.active, d.autostart, d.persistent,
                                d.xml.replace("<memory>1048576</memory>", f"<memory>{kib}</memory>"), d.xml))
    return host_facts(lvm, domains=doms)


def test_fleet_reading_is_parallel_bounded_and_a_silent_host_is_reported_not_fatal() -> None:
    live = {"n": 0, "most": 0}
    lock = threading.Lock()

    def reader(host: FleetHost, _w: Wanted) -> HostFacts:
        with lock:
            live["n"] += 1
            live["most"] = max(live["most"], live["n"])
        try:
            if host.name == "hang":
                time.sleep(30)
            if host.name == "broken":
                raise KvmopsError("ssh: connection refused")
            time.sleep(0.3)
            return _facts(50 * GiB)
        finally:
            with lock:
                live["n"] -= 1

    hosts = [_host(n) for n in ("a", "b", "hang", "c", "broken", "d")]
    t0 = time.monotonic()
    got = read_fleet(hosts, concurrency=3, timeout=2.0, reader=reader)
    took = time.monotonic() - t0
    assert [r.host.name for r in got] == ["a", "b", "hang", "c", "broken", "d"]
    assert {r.host.name: r.error for r in got if r.error} == {
        "hang": "did not answer within 2 s", "broken": "ssh: connection refused"}
    assert live["most"] <= 3 and took < 10


def test_room_and_which_host_fits() -> None:
    from kvmops.fleet.reading import HostReading

    roomy = room_of(HostReading(_host("roomy"), _facts(80 * GiB), "", 0.1))
    full = room_of(HostReading(_host("full"), _facts(5 * GiB, ("big", 60 * 1024 * 1024)), "", 0.1))
    down = room_of(HostReading(_host("down"), None, "did not answer within 60 s", 60.0))
    text = render([roomy, full, down])
    assert "roomy" in text and "NOT READ: did not answer" in text and "1 host(s) not read" in text
    fits = ranked([fit(r, 4 * GiB, 2, 20 * GiB, [2368]) for r in (full, down, roomy)])
    assert [(f.name, f.fits) for f in fits] == [("roomy", True), ("down", False), ("full", False)]
    full_fit = next(f for f in fits if f.name == "full")
    assert {r.split(":")[0] for r in full_fit.reasons} == {"memory", "disk"}
    assert fit(roomy, GiB, 1, GiB, [9]).reasons == ("VLAN 9 is not a network of its site",)


def test_the_fleet_record_is_json_in_the_journal(tmp_path: Path) -> None:
    from kvmops.cli.fleet import record
    from kvmops.fleet.reading import HostReading

    path = record([room_of(HostReading(_host("h"), _facts(GiB), "", 0.1))], tmp_path)
    data = json.loads(path.read_text())
    assert data["kind"] == "fleet-inventory" and data["hosts"][0]["name"] == "h"


def test_the_manuals_fleet_page_shows_the_newest_record(tmp_path: Path) -> None:
    from kvmops.cli.fleet import record
    from kvmops.fleet.reading import HostReading
    from kvmops_manual.fleet import page

    assert "No fleet inventory in the journal yet" in page(tmp_path)
    rooms = [room_of(HostReading(_host("kvm1"), _facts(50 * GiB), "", 0.1)),
             room_of(HostReading(_host("kvm2"), None, "did not answer within 60 s", 60.0))]
    record(rooms, tmp_path)
    text = page(tmp_path)
    assert "**Not read:** kvm2" in text and "kvm1" in text and "NOT READ: did not answer within 60 s" in text
