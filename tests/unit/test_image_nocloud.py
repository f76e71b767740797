"""NoCloud seed: documents, ISO written with pycdlib and read back, secrets masked."""

from __future__ import annotations

import json
import stat
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from kvmops.cmd import MASK
from kvmops.errors import InvalidInput
from kvmops.host import Host
from kvmops.images import nocloud as nc
from kvmops.images.passwords import Password, verify
from kvmops.plan import Plan, Step
from kvmops.runners import LocalRunner
from kvmops.site import load_site
from tests.support.facts import empty_facts
from tests.support.run import run_plan
from tests.support.secrets import PASSWORDS

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc+ZQ5bnkc8Y9Uvs6yDuB1z2oQ1pL0U8kM9gpqCYQ2n admin@example"


def _seed() -> nc.Seed:
    users = nc.users_for("centos", [KEY], Password.clear("centos", PASSWORDS["nocloud-login"]),
                         Password.clear("root", PASSWORDS["nocloud-root"]))
    net = nc.StaticNet("10.5.68.237/24", "10.5.68.254", ("132.230.200.200",))
    return nc.Seed("test1", users, (net,))


def test_documents_are_valid_yaml_with_what_cloud_init_reads() -> None:
    files = _seed().files()
    assert files["user-data"].startswith("#cloud-config\n")
    user_data = yaml.safe_load(files["user-data"])
    default, centos, root = user_data["users"]
    assert default == "default"  # the image's default user kept: cloud-init merges centos into it (its groups)
    assert centos["name"] == "centos" and centos["ssh_authorized_keys"] == [KEY]
    assert centos["sudo"] == "ALL=(ALL) NOPASSWD:ALL" and centos["lock_passwd"] is False
    login, root_pw = PASSWORDS["nocloud-login"], PASSWORDS["nocloud-root"]
    assert verify(login, centos["hashed_passwd"]) and verify(root_pw, root["hashed_passwd"])
    assert login not in files["user-data"] and root_pw not in files["user-data"]
    assert yaml.safe_load(files["meta-data"]) == {"instance-id": "iid-test1", "local-hostname": "test1"}
    net = yaml.safe_load(files["network-config"])
    assert net == {"version": 2, "ethernets": {"eth0": {
        "addresses": ["10.5.68.237/24"], "routes": [{"to": "0.0.0.0/0", "via": "10.5.68.254"}],
        "nameservers": {"addresses": ["132.230.200.200"]}}}}


def test_iso_reads_back() -> None:
    files = _seed().files()
    vol, back = nc.read_iso(nc.seed_iso(files))
    assert vol == "cidata"
    assert back == files


def test_iso_without_network_config() -> None:
    seed = nc.Seed("test2", nc.users_for("centos", [KEY]))
    vol, back = nc.read_iso(nc.seed_iso(seed.files()))
    assert vol == "cidata" and set(back) == {"user-data", "meta-data"}


def test_plan_masks_the_iso_content() -> None:
    plan = nc.seed_plan(_seed(), "/root/kvm/test1-seed.iso")
    text = plan.render()
    assert f"openssl base64 -d -A -out /root/kvm/test1-seed.iso <<< {MASK}" in text
    write = plan.steps[1].cmd
    assert write is not None and write.stdin_secret and write.mutates
    assert "$6$" not in text


def test_the_seed_has_one_place(tmp_path: Path) -> None:
    site = load_site()
    # not under xml_dir (/root/kvm): QEMU, running as qemu/libvirt-qemu, cannot open a file under
    # /root (seen in the lab: "Could not open '/root/kvm/rbnocloud-seed.iso': Permission denied")
    assert nc.seed_path(site, "test1") == "/var/lib/libvirt/boot/test1-seed.iso"
    assert not nc.seed_path(site, "test1").startswith("/root/")
    with pytest.raises(InvalidInput):
        nc.seed_path(site, "../etc")


def test_the_seed_is_private_before_a_byte_is_written(tmp_path: Path) -> None:
    """Created empty with mode 600, then filled: never chmod-ed after the hashes are in it.
    A file left from before (world-readable, other content) is replaced by a new private one."""
    path = tmp_path / "kvm" / "test1-seed.iso"
    path.parent.mkdir()
    path.write_text("old secret")
    path.chmod(0o644)
    plan = nc.seed_plan(_seed(), str(path))
    assert [s.cmd.argv[0] for s in plan.steps if s.cmd] == ["install", "openssl", "blkid"]
    assert not any(s.cmd and s.cmd.argv[0] == "chmod" for s in plan.steps)
    site = replace(load_site(), seed_dir=str(path.parent))
    host, facts = Host(site, LocalRunner(), "test:///default"), empty_facts(site)
    create, write = plan.steps[0], plan.steps[1]
    run_plan(host, Plan("create", [create]), facts=facts)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.stat().st_size == 0  # private, still empty
    run_plan(host, Plan("write", [write]), facts=facts)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    vol, files = nc.read_iso(path.read_bytes())
    assert vol == "cidata" and set(files) == {"user-data", "meta-data", "network-config"}
    assert verify(PASSWORDS["nocloud-login"], yaml.safe_load(files["user-data"])["users"][1]["hashed_passwd"])
    run_plan(host, Plan("remove", [Step("remove", nc.remove_cmd(str(path)))]), facts=facts)
    assert not path.exists()


def test_root_gets_its_keys_and_cloud_init_leaves_them_alone() -> None:
    root_key = KEY.replace("admin@example", "root@example")
    users = nc.users_for("centos", [KEY], None, None, [root_key], sudo=False)
    doc = yaml.safe_load(nc.Seed("test1", users).user_data())
    _default, centos, root = doc["users"]
    assert centos["ssh_authorized_keys"] == [KEY] and "sudo" not in centos
    assert root == {"name": "root", "ssh_authorized_keys": [root_key]}
    assert doc["disable_root"] is False  # else cloud-init prefixes root's keys with a "log in as" stub
    plain = yaml.safe_load(nc.Seed("test1", nc.users_for("centos", [KEY])).user_data())
    assert [u["name"] for u in plain["users"][1:]] == ["centos"]
    assert "disable_root" not in plain


def test_each_nic_is_matched_by_its_mac_and_keeps_its_name() -> None:
    """Two NICs, each matched by MAC, no set-name (cloud-init looks the NIC up by MAC and
    configures it under the image's own name); the default route and DNS on one of them."""
    first = nc.StaticNet("10.5.68.237/24", "10.5.68.254", ("132.230.200.200",), "nic1", "52:54:00:AA:BB:CC")
    second = nc.StaticNet("132.230.223.200/24", None, (), "nic2", "52:54:00:aa:bb:cd")
    doc = yaml.safe_load(nc.Seed("test1", nc.users_for("centos", [KEY]), (first, second)).files()["network-config"])
    assert doc == {"version": 2, "ethernets": {
        "nic1": {"match": {"macaddress": "52:54:00:aa:bb:cc"}, "addresses": ["10.5.68.237/24"],
                 "routes": [{"to": "0.0.0.0/0", "via": "10.5.68.254"}],
                 "nameservers": {"addresses": ["132.230.200.200"]}},
        "nic2": {"match": {"macaddress": "52:54:00:aa:bb:cd"}, "addresses": ["132.230.223.200/24"]}}}
    assert "set-name" not in json.dumps(doc)


@pytest.mark.parametrize(("nets", "match"), [
    ((("10.0.0.5/24", "10.0.0.254", "a", None), ("10.0.1.5/24", "10.0.1.254", "b", None)), "one NIC only"),
    ((("10.0.0.5/24", None, "a", "52:54:00:00:00:01"), ("10.0.1.5/24", None, "b", "52:54:00:00:00:01")), "twice"),
    ((("10.0.0.5/24", None, "a", None), ("10.0.1.5/24", None, "a", None)), "twice"),
    ((("10.0.0.5/24", None, "a", "53:54:00:00:00:01"),), "multicast"),
])
def test_a_network_config_that_cannot_work_is_refused(nets: tuple[tuple[str, str | None, str, str | None], ...],
                                                      match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        nc.Seed("test1", nc.users_for("centos", [KEY]),
                tuple(nc.StaticNet(a, gw, (), name, mac) for a, gw, name, mac in nets))


@pytest.mark.parametrize("addr, gw", [("10.0.0.5/24", "10.0.1.254"), ("10.0.0.300/24", "10.0.0.254"),
                                      ("10.0.0.254/24", "10.0.0.254"), ("10.0.0.5/32", "10.0.0.5")])
def test_bad_network(addr: str, gw: str) -> None:
    with pytest.raises(InvalidInput):
        nc.StaticNet(addr, gw)


def test_bad_seed_input() -> None:
    with pytest.raises(InvalidInput):
        nc.Seed("test1", ())
    with pytest.raises(InvalidInput):
        nc.CloudUser("centos", ("ssh-ed25519 garbage",))
    with pytest.raises(InvalidInput, match="is for root"):
        nc.CloudUser("centos", (), Password.clear("root", "x"))
    with pytest.raises(InvalidInput, match=".iso"):
        nc.write_cmd("relative.iso", b"")
