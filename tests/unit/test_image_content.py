"""Pure content helpers: keys, passwd/shadow, sudoers, GRUB serial edit, SELinux mode."""

from __future__ import annotations

import base64
import shlex
import struct

import pytest

from kvmops.errors import InvalidInput
from kvmops.images import content as c

ED = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc+ZQ5bnkc8Y9Uvs6yDuB1z2oQ1pL0U8kM9gpqCYQ2n admin@example"


def _key(kind: str, payload: bytes = b"\x00" * 32) -> str:
    blob = struct.pack(">I", len(kind)) + kind.encode() + struct.pack(">I", len(payload)) + payload
    return f"{kind} {base64.b64encode(blob).decode()} test"


def test_valid_keys_pass() -> None:
    assert c.public_key(ED + "\n") == ED
    assert c.public_key(_key("ssh-rsa")).startswith("ssh-rsa ")


def test_one_parser_of_a_keys_parameter() -> None:
    rsa = _key("ssh-rsa")
    assert c.parse_keys("keys", f" {ED} ;\n{rsa};; ") == (ED, rsa)
    assert c.parse_keys("keys", " ; ") == ()
    with pytest.raises(InvalidInput, match="^root_keys: not an OpenSSH public key"):
        c.parse_keys("root_keys", f"{ED};ssh-ed25519")


@pytest.mark.parametrize("bad, why", [
    ("", "empty"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn...\n-----END OPENSSH PRIVATE KEY-----", "PRIVATE"),
    ("ssh-dss AAAAB3NzaC1kc3M= x", "not an OpenSSH public key"),
    ("ssh-ed25519 not*base64", "base64"),
    ("ssh-ed25519 " + _key("ssh-rsa").split()[1], "not a ssh-ed25519 key"),
    ("ssh-ed25519", "not an OpenSSH public key"),
])
def test_bad_keys_refused(bad: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why) as exc:
        c.public_key(bad)
    assert "b3Blbn" not in str(exc.value)


def test_merge_keys_adds_once_and_keeps_others() -> None:
    other = _key("ssh-rsa")
    first = c.merge_keys(other + "\n", [ED])
    assert first == f"{other}\n{ED}\n"
    assert c.merge_keys(first, [ED, ED.replace("admin@example", "renamed")]) == first


def test_passwd_and_shadow() -> None:
    passwd = "root:x:0:0:root:/root:/bin/bash\ncentos:x:1000:1000::/home/centos:/bin/bash\nbroken\n"
    acc = c.parse_passwd(passwd)
    assert acc["centos"] == c.Account("centos", 1000, 1000, "/home/centos", "/bin/bash")
    assert set(acc) == {"root", "centos"}
    with pytest.raises(InvalidInput, match="rocky.*centos, root"):
        c.need_account(acc, "rocky", "/mnt")
    assert c.shadow_hash("root:$6$x$y:1::::::\ncentos:!:1::::::\n", "centos") == "!"
    assert c.shadow_hash("root:*:1::::::\n", "centos") is None


@pytest.mark.parametrize("bad", ["", "Root", "a b", "x" * 40, "-x", "a;b"])
def test_bad_user_names(bad: str) -> None:
    with pytest.raises(InvalidInput):
        c.user_name(bad)


def test_sudoers_line_and_names() -> None:
    assert c.sudoers_line("centos") == "centos  ALL=(ALL)       NOPASSWD: ALL\n"
    assert c.sudoers_file_name("90-centos") == "90-centos"
    for bad in ("centos.conf", "x~", "", "a/b"):
        with pytest.raises(InvalidInput):
            c.sudoers_file_name(bad)


@pytest.mark.parametrize("text, mode", [
    (None, "disabled"), ("SELINUX=enforcing\nSELINUXTYPE=targeted\n", "enforcing"),
    ("# SELINUX=enforcing\nSELINUX=disabled\n", "disabled"), ('SELINUX="permissive"\n', "permissive"),
    ("SELINUXTYPE=targeted\n", "disabled"),
])
def test_selinux_mode(text: str | None, mode: str) -> None:
    assert c.selinux_mode(text) == mode


ROCKY = """GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR="$(sed 's, release .*$,,g' /etc/system-release)"
GRUB_DEFAULT=saved
GRUB_DISABLE_SUBMENU=true
GRUB_TERMINAL_OUTPUT="console"
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8 no_timer_check crashkernel=auto net.ifnames=0"
GRUB_DISABLE_RECOVERY="true"
GRUB_ENABLE_BLSCFG=true
"""


def _values(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition("=")
        if sep and not k.startswith("#"):
            out[k] = " ".join(shlex.split(v)) if "$(" not in v else v
    return out


def test_grub_serial_edit_is_complete_and_idempotent() -> None:
    once = c.grub_serial(ROCKY)
    v = _values(once)
    assert v["GRUB_TERMINAL"] == "serial console"
    assert v["GRUB_SERIAL_COMMAND"] == "serial --speed=115200 --unit=0 --word=8 --parity=no --stop=1"
    words = v["GRUB_CMDLINE_LINUX"].split()
    assert words[-2:] == ["console=tty0", "console=ttyS0,115200n8"]
    assert words.count("console=ttyS0,115200n8") == 1 and "net.ifnames=0" in words
    assert "GRUB_TERMINAL_OUTPUT" not in v
    assert v["GRUB_DISTRIBUTOR"] == """"$(sed 's, release .*$,,g' /etc/system-release)\""""
    assert c.grub_serial(once) == once


def test_grub_serial_on_empty_cmdline_and_bad_speed() -> None:
    out = _values(c.grub_serial('GRUB_CMDLINE_LINUX=""\n', speed=9600))
    assert out["GRUB_CMDLINE_LINUX"] == "console=tty0 console=ttyS0,9600n8"
    with pytest.raises(InvalidInput, match="speed"):
        c.grub_serial("", speed=1234)


# ----------------------------------------------------------------- cloud-init's default user, groups, shadow
def test_default_user_from_an_images_cloud_cfg() -> None:
    from pathlib import Path

    cfg = (Path(__file__).parent.parent / "fixtures" / "images" / "cloud" / "rocky9-cloud.cfg").read_text()
    d = c.default_user(cfg)
    assert (d.name, d.groups, d.shell, d.gecos) == ("rocky", ("adm", "systemd-journal"), "/bin/bash",
                                                    "Rocky Cloud User")


def test_default_user_groups_as_a_string_and_odd_files() -> None:
    d = c.default_user("system_info:\n  default_user:\n    name: cloud-user\n    groups: wheel, adm\n")
    assert d.groups == ("wheel", "adm") and d.shell is None
    for odd in (None, "", "just text", "system_info: [1, 2]", "system_info:\n  default_user: x\n", ": : :\n\t-"):
        assert c.default_user(odd) == c.DefaultUser(None, (), None, None)


def test_groups_and_password_states_never_the_hash() -> None:
    assert c.parse_group("root:x:0:\nwheel:x:10:centos,rocky\n#x\n") == {"root": (), "wheel": ("centos", "rocky")}
    shadow = ("root:$6$salt$abc:1::::::\ncentos:!:1::::::\nrocky:!!$6$s$h:1::::::\nnobody:*:1::::::\n"
              "open::1::::::\n")
    states = {u: c.password_state(shadow, u) for u in ("root", "centos", "rocky", "nobody", "open", "gone")}
    assert states == {"root": "set", "centos": "none (no password login)", "rocky": "locked",
                      "nobody": "none (no password login)", "open": "EMPTY (login without password)",
                      "gone": "no shadow entry"}
    assert not any("$6$" in v for v in states.values())
