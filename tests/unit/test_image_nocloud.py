"""NoCloud seed: documents, ISO written with pycdlib and read back, secrets masked."""

from __future__ import annotations

import json

import pytest
import yaml

from kvmops.cmd import MASK
from kvmops.errors import InvalidInput
from kvmops.images import nocloud as nc
from kvmops.images.passwords import Password, verify
from tests.support.secrets import PASSWORDS

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc+ZQ5bnkc8Y9Uvs6yDuB1z2oQ1pL0U8kM9gpqCYQ2n admin@example"


def _seed() -> nc.Seed:
    users = nc.users_for("centos", [KEY], Password.clear("centos", PASSWORDS["nocloud-login"]),
                         Password.clear("root", PASSWORDS["nocloud-root"]))
    net = nc.StaticNet("10.5.68.237/24", "10.5.68.254", ("132.230.200.200",))
    return nc.Seed("test1", users, net)


def test_documents_are_valid_yaml_with_what_cloud_init_reads() -> None:
    files = _seed().files()
    assert files["user-data"].startswith("#cloud-config\n")
    user_data = yaml.safe_load(files["user-data"])
    centos, root = user_data["users"]
    assert centos["name"] == "centos" and centos["ssh_authorized_keys"] == [KEY]
    assert centos["sudo"] == "ALL=(ALL) NOPASSWD:ALL" and centos["lock_passwd"] is False
    login, root_pw = PASSWORDS["nocloud-login"], PASSWORDS["nocloud-root"]
    assert verify(login, centos["hashed_passwd"]) and verify(root_pw, root["hashed_passwd"])
    assert login not in files["user-data"] and root_pw not in files["user-data"]
    assert yaml.safe_load(files["meta-data"]) == {"instance-id": "iid-test1", "local-hostname": "test1"}
    net = yaml.safe_load(files["network-config"])
    assert net == {"version": 2, "ethernets": {"eth0": {
        "addresses": ["10.5.68.237/24"], "routes": [{"to": "default", "via": "10.5.68.254"}],
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
    plan = nc.seed_plan(_seed(), "/root/kvm/test1-cidata.iso")
    text = plan.render()
    assert f"openssl base64 -d -A -out /root/kvm/test1-cidata.iso <<< {MASK}" in text
    write = plan.steps[0].cmd
    assert write is not None and write.stdin_secret and write.mutates
    assert "$6$" not in text


def test_mac_match_sets_name() -> None:
    doc = nc.StaticNet("10.0.0.5/24", "10.0.0.254", mac="52:54:00:AA:BB:CC").document()
    assert doc["ethernets"]["eth0"]["match"] == {"macaddress": "52:54:00:aa:bb:cc"}
    assert json.dumps(doc)


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
