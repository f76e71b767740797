"""Tweak plans from an image's content read once (a fake image answering the chroot reads):
each tweak wants what it plans from, plans purely, and converges."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvmops.cmd import MASK
from kvmops.errors import InvalidInput
from kvmops.facts.imagefs import gather
from kvmops.images import tweaks as t
from kvmops.images.imagefs import PLACEHOLDER, ImageFacts
from kvmops.images.passwords import Password, sha512_crypt
from kvmops.net.address import static_address
from kvmops.plan import Plan
from kvmops.site import load_site
from tests.support.fakeimage import ROOT, FakeImage

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc+ZQ5bnkc8Y9Uvs6yDuB1z2oQ1pL0U8kM9gpqCYQ2n admin@example"
FIX = Path(__file__).parent.parent / "fixtures" / "images"
NM = "/etc/NetworkManager/system-connections"
PASSWD = "root:x:0:0:root:/root:/bin/bash\ncentos:x:1000:1000::/home/centos:/bin/bash\n"
GROUP = "root:x:0:\nadm:x:4:\nwheel:x:10:\ncentos:x:1000:\n"
BASE = {"/etc/passwd": PASSWD, "/etc/group": GROUP, "/etc/shadow": "root:*:1::::::\ncentos:!:1::::::\n",
        "/usr/sbin/chpasswd": "", "/usr/sbin/visudo": "", "/usr/sbin/useradd": "", "/bin/bash": ""}
ADDRESS = static_address(load_site(None), "test1", 2368, "10.5.68.237")


def image(files: dict[str, str] | None = None, dirs: tuple[str, ...] = (), links: dict[str, str] | None = None,
          stats: dict[str, str] | None = None) -> FakeImage:
    return FakeImage({**BASE, **(files or {})}, ("/home/centos", *dirs), links, stats)


def plans(fake: FakeImage, *tweaks: t.Tweak) -> list[Plan]:
    """Read what the tweaks want (as a run does), then plan each from that alone."""
    img = gather(fake, ROOT, tweaks)
    assert not any(r.mutates for r in fake.records)
    return t.plan_all(img, tweaks)


def argvs(plan: Plan) -> list[tuple[str, ...]]:
    return [s.cmd.argv[2:] for s in plan.steps if s.cmd is not None]


def test_plans_are_pure_and_name_the_mount_point_to_come() -> None:
    fake = image()
    (plan,) = plans(fake, t.SerialGetty())
    assert all(s.cmd is not None and s.cmd.argv[:2] == ("chroot", PLACEHOLDER) for s in plan.steps)
    with pytest.raises(Exception, match="was not read"):
        t.SerialGetty().plan(ImageFacts(ROOT))  # a plan never reads: what was not read is a bug


def test_password_step_masks_the_hash_and_converges() -> None:
    pw = Password.clear("centos", "hunter2-long")
    (plan,) = plans(image(), t.SetPassword(pw))
    (step,) = plan.steps
    assert step.cmd is not None and step.cmd.argv[-2:] == ("chpasswd", "-e") and step.cmd.stdin_secret
    assert step.cmd.stdin is not None and step.cmd.stdin.startswith("centos:$6$")
    text = plan.render()
    assert "hunter2" not in text and "$6$" not in text and MASK in text
    (done,) = plans(image({"/etc/shadow": f"centos:{sha512_crypt('hunter2-long')}:1::::::\n"}), t.SetPassword(pw))
    assert done.empty and "already so" in done.steps[0].reason


def test_authorized_keys_steps_use_image_ids_and_modes() -> None:
    (plan,) = plans(image(), t.AuthorizedKeys("centos", (KEY,)))
    got = argvs(plan)
    assert got[:3] == [("mkdir", "-p", "/home/centos/.ssh"), ("chown", "1000:1000", "/home/centos/.ssh"),
                       ("chmod", "700", "/home/centos/.ssh")]  # busybox images have no `install`
    assert ("chown", "1000:1000", "/home/centos/.ssh/authorized_keys.kvmops-new") in got
    assert ("chmod", "600", "/home/centos/.ssh/authorized_keys.kvmops-new") in got
    assert got[-1] == ("mv", "-f", "/home/centos/.ssh/authorized_keys.kvmops-new", "/home/centos/.ssh/authorized_keys")


def test_authorized_keys_already_so() -> None:
    fake = image({"/home/centos/.ssh/authorized_keys": KEY + "\n"},
                 stats={"/home/centos/.ssh": "directory|700|1000|1000",
                        "/home/centos/.ssh/authorized_keys": "regular file|600|1000|1000"})
    assert plans(fake, t.AuthorizedKeys("centos", (KEY,)))[0].empty


def test_sudoers_checked_before_moved_in() -> None:
    (plan,) = plans(image({"/etc/sudoers": "@includedir /etc/sudoers.d\n"}, dirs=("/etc/sudoers.d",)),
                    t.Sudoers("centos"))
    got = argvs(plan)
    check = got.index(("/usr/sbin/visudo", "-c", "-q", "-f", "/etc/sudoers.d/centos.kvmops-new"))
    assert check == len(got) - 2 and got[-1][0] == "mv"
    assert not plan.notes


def test_getty_and_selinux() -> None:
    assert plans(image(links={t.GETTY_LINK: t.GETTY_TARGET}), t.SerialGetty())[0].empty
    (plan,) = plans(image({t.GETTY_TARGET: ""}), t.SerialGetty())
    assert argvs(plan)[-1] == ("ln", "-sfn", t.GETTY_TARGET, t.GETTY_LINK)
    (sel,) = plans(image({"/etc/selinux/config": "SELINUX=enforcing\n"}), t.SelinuxRelabel())
    assert argvs(sel) == [("touch", "/.autorelabel")]
    assert plans(image(), t.SelinuxRelabel())[0].empty


def test_grub_without_tools_says_so() -> None:
    (plan,) = plans(image({"/etc/default/grub": 'GRUB_CMDLINE_LINUX=""\n'}), t.GrubSerial())
    assert any("NOT regenerated" in n for n in plan.notes)
    assert argvs(plan)[0][0] == "dd"


# ----------------------------------------------------------------- the login user (issue 12 item 4)
def test_a_missing_login_user_is_created_like_cloud_init_from_the_images_cloud_cfg() -> None:
    cfg = (FIX / "cloud" / "rocky9-cloud.cfg").read_text()
    fake = image({"/etc/cloud/cloud.cfg": cfg})
    user, pw, keys, sudo = plans(fake, t.LoginUser("rocky"), t.SetPassword(Password.clear("rocky", "pw-123456")),
                                 t.AuthorizedKeys("rocky", (KEY,)), t.Sudoers("rocky"))
    assert argvs(user) == [("useradd", "--create-home", "--shell", "/bin/bash", "--groups", "adm",
                            "--comment", "Rocky Cloud User", "rocky")]
    assert user.steps[0].reason.startswith("the image has no user rocky: it is created like cloud-init would: "
                                           "groups adm, shell /bin/bash, home /home/rocky")
    assert "systemd-journal" in user.notes[0]  # not in the image's /etc/group: left out, and said so
    assert argvs(pw)[0][:2] == ("chpasswd", "-e")  # planned for the user created first
    got = argvs(keys)
    assert ("chown", "rocky:", "/home/rocky/.ssh") in got  # ids known only after useradd: by name
    assert ("chown", "rocky:", "/home/rocky/.ssh/authorized_keys.kvmops-new") in got
    assert not sudo.empty


def test_without_cloud_cfg_bash_and_wheel_and_an_existing_user_is_left_alone() -> None:
    (made,) = plans(image(), t.LoginUser("rocky"))
    assert argvs(made) == [("useradd", "--create-home", "--shell", "/bin/bash", "--groups", "wheel", "rocky")]
    (there,) = plans(image(), t.LoginUser("centos"))
    assert there.empty and "already so: the image has user centos" in there.steps[0].reason


def test_the_default_user_of_a_cloud_cfg_d_drop_in_wins_as_cloud_init_merges_it() -> None:
    """The lab's cloud image (Debian's cloud.cfg, RHEL's default user in a drop-in): the user
    gets the drop-in's groups and gecos, the base file's shell where the drop-in names none."""
    base = "system_info:\n  default_user:\n    name: debian\n    groups: [adm, sudo]\n    shell: /bin/bash\n"
    dropin = ('{"system_info": {"default_user": {"name": "centos", "gecos": "Cloud User", '
              '"groups": ["wheel", "adm", "systemd-journal"]}}}\n')
    fake = image({"/etc/cloud/cloud.cfg": base, "/etc/cloud/cloud.cfg.d/90_kvmops_image.cfg": dropin,
                  "/etc/cloud/cloud.cfg.d/05_logging.cfg": "_log: []\n", "/etc/cloud/cloud.cfg.d/README": "x"})
    (user,) = plans(fake, t.LoginUser("rocky"))
    assert argvs(user) == [("useradd", "--create-home", "--shell", "/bin/bash", "--groups", "wheel,adm",
                            "--comment", "Cloud User", "rocky")]
    assert "from the image's cloud-init configuration" in user.steps[0].reason


def test_no_useradd_is_a_clear_refusal() -> None:
    fake = image()
    del fake.files["/usr/sbin/useradd"]
    with pytest.raises(InvalidInput, match="no user rocky and no useradd"):
        plans(fake, t.LoginUser("rocky"))


# ----------------------------------------------------------------- static address (issue 14 item 8)
def _nm(name: str) -> str:
    return (FIX / "nm" / name).read_text()


def _written(plan: Plan, path: str) -> str:
    """The content the plan writes to ``path`` (the dd step's stdin)."""
    dd = ("dd", f"of={path}.kvmops-new")
    (text,) = [s.cmd.stdin for s in plan.steps if s.cmd is not None and s.cmd.argv[2:4] == dd]
    assert text is not None
    return text


@pytest.mark.parametrize("name", ["cloud-init-eth0.nmconnection", "Wired connection 1.nmconnection"])
def test_the_existing_keyfile_is_changed_not_doubled(name: str) -> None:
    before = _nm(name)
    path = f"{NM}/{name}"
    (plan,) = plans(image({path: before}, stats={path: "regular file|600|0|0"}), t.StaticIp.from_address(ADDRESS))
    after = _written(plan, path)
    assert not any(f"of={NM}/eth0.nmconnection" in " ".join(a) for a in argvs(plan))  # no second profile
    kept = [ln for ln in before.splitlines() if ln.startswith(("id=", "uuid=", "mac-address=", "#", "autoconnect"))]
    assert all(ln in after.splitlines() for ln in kept)  # everything else as it was
    ipv4 = after.split("[ipv4]", 1)[1].split("\n[", 1)[0]
    assert "method=manual" in ipv4 and "address1=10.5.68.237/24,10.5.68.254" in ipv4
    assert "dns=132.230.200.200;" in ipv4 and "may-fail=false" in ipv4 and "method=auto" not in ipv4
    bound = after.split("[connection]", 1)[1].split("\n[", 1)[0]
    # bound by name stays bound by name; bound by MAC never gets a name (it would bind no NIC named otherwise)
    assert ("interface-name=eth0" in bound) is (name == "Wired connection 1.nmconnection")
    assert "change the image's profile" in plan.steps[0].reason
    (again,) = plans(image({path: after}, stats={path: "regular file|600|0|0"}), t.StaticIp.from_address(ADDRESS))
    assert again.empty, again.render()  # changed once, then "already so"


def test_an_ifcfg_profile_is_changed_in_place() -> None:
    path = "/etc/sysconfig/network-scripts/ifcfg-eth0"
    (plan,) = plans(image({path: _nm("ifcfg-eth0")}), t.StaticIp.from_address(ADDRESS))
    after = _written(plan, path)
    lines = after.splitlines()
    for want in ("BOOTPROTO=none", "IPADDR=10.5.68.237", "PREFIX=24", "GATEWAY=10.5.68.254",
                 "DNS1=132.230.200.200", "DEVICE=eth0", "HWADDR=52:54:00:4f:1a:07", "USERCTL=no"):
        assert want in lines, want
    assert "BOOTPROTO=dhcp" not in lines and lines[0].startswith("# Created by cloud-init")
    assert not any("eth0.nmconnection" in " ".join(a) for a in argvs(plan))
    (again,) = plans(image({path: after}), t.StaticIp.from_address(ADDRESS))
    assert again.empty, again.render()


def test_a_new_keyfile_only_when_no_profile_is_for_the_interface() -> None:
    other = f"{NM}/eth1.nmconnection"
    (plan,) = plans(image({other: _nm("eth1.nmconnection")}), t.StaticIp.from_address(ADDRESS))
    assert not any(f"of={other}" in " ".join(a) for a in argvs(plan))  # another interface's: left alone
    new = _written(plan, f"{NM}/eth0.nmconnection")
    assert "address1=10.5.68.237/24,10.5.68.254" in new and "the image has no profile for NIC 1 (eth0)" in plan.render()
    path = f"{NM}/eth0.nmconnection"
    (again,) = plans(image({other: _nm("eth1.nmconnection"), path: new}, stats={path: "regular file|600|0|0"}),
                     t.StaticIp.from_address(ADDRESS))
    assert again.empty, again.render()


def test_cloud_init_network_is_switched_off_when_it_is_there() -> None:
    (plan,) = plans(image({"/etc/cloud/cloud.cfg.d/05_logging.cfg": ""}), t.StaticIp.from_address(ADDRESS))
    assert _written(plan, "/etc/cloud/cloud.cfg.d/99-kvmops-network.cfg") == "network: {config: disabled}\n"
