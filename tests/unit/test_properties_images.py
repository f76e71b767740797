"""Properties of the image builders: for random LVs, running guests, images, devices and paths,
no copy, mapping or mount ever touches a running guest's disk or a host LV, a read-only
request never becomes a writable mapping or mount, and bad input is refused before any
command exists (the runner saw none).

Each property returns whether it reached the accepted path; :func:`holds` runs it over the
examples and asserts, in the same test, that the accepted path was reached a minimum number
of times. So every test passes alone and in any order."""

from __future__ import annotations

import re
from argparse import Namespace
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvmops.cli.image import _lv
from kvmops.errors import InvalidInput, KvmopsError, NotFound, SafetyError
from kvmops.facts.disk import open_disk
from kvmops.host import Host
from kvmops.hostfacts import HostFacts
from kvmops.images import partitions as pt
from kvmops.images import tweaks as tw
from kvmops.images.copy import copy_plan
from kvmops.images.imagefs import ImageFacts
from kvmops.images.mount import mount_cmd
from kvmops.images.probe import ImageInfo
from kvmops.lvm.facts import LV, VG
from kvmops.lvm.state import LvmState
from kvmops.procedures import disks
from kvmops.runners import PlanRunner
from kvmops.site import load_site
from tests.support.facts import domain, host_facts

SITE = load_site()
GiB = 1 << 30
HOST_LVS = ("root", "home", "opt")
GUEST_LVS = ("vmtest1", "vmweb-1", "vmsmall")
STATE = LvmState(
    VG("rl_build", 100 * GiB, 50 * GiB, 4 << 20, 6),
    (*(LV(n, "rl_build", "-wi-ao----", 50 * GiB, "", None, None) for n in HOST_LVS),
     LV("vmtest1", "rl_build", "-wi-a-----", 10 * GiB, "", None, None),
     LV("vmweb-1", "rl_build", "-wi-a-----", 20 * GiB, "", None, None),
     LV("vmsmall", "rl_build", "-wi-a-----", 1 * GiB, "", None, None),
     LV("vmtest1-20241006T1518Z", "rl_build", "swi-a-s---", 5 * GiB, "vmtest1", 1.0, None)),
)
lv_names = st.one_of(st.sampled_from([*HOST_LVS, *GUEST_LVS, "vmtest1-20241006T1518Z", "vmnone", "vm", "-y"]),
                     st.text(max_size=20))
busy_sets = st.sets(st.sampled_from([f"rl_build/{n}" for n in GUEST_LVS]))
images = st.builds(ImageInfo, path=st.sampled_from(["/var/lib/images/r.qcow2", "/x/a,b.raw", "/x/y.raw"]),
                   format=st.sampled_from(["raw", "qcow2"]),
                   virtual_size=st.one_of(st.integers(1, GiB), st.integers(1, 30 * GiB)))
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc+ZQ5bnkc8Y9Uvs6yDuB1z2oQ1pL0U8kM9gpqCYQ2n admin@example"


def holds(prop: Callable[..., bool], examples: int, minimum: int, **strategies: st.SearchStrategy[Any]) -> None:
    """Run ``prop`` over ``examples`` generated cases; it asserts its property and returns
    True on the accepted path, which must be reached at least ``minimum`` times."""
    accepted = [0]

    @settings(max_examples=examples, deadline=None)
    @given(**strategies)
    def run(**kw: Any) -> None:
        if prop(**kw):
            accepted[0] += 1

    run()
    assert accepted[0] >= minimum, f"{prop.__name__} reached its accepted path {accepted[0]} times (< {minimum})"


def facts(busy: set[str]) -> HostFacts:
    """The facts with a running guest on each LV of ``busy``."""
    return host_facts(STATE, domains=[domain(f"g{i}", f"/dev/{p}", active=True) for i, p in enumerate(sorted(busy))])


# ----------------------------------------------------------------- copy
def copy_is_safe(lv: str, image: ImageInfo, busy: set[str], method: str) -> bool:
    try:
        plan = copy_plan(facts(busy), lv, image, method=method)
    except KvmopsError:
        return False
    path = f"rl_build/{lv}"
    have = STATE.need(lv)
    assert lv in GUEST_LVS and path not in busy and not have.is_snapshot
    assert image.virtual_size <= have.size
    writes = [s.cmd for s in plan.steps if s.cmd is not None and s.cmd.mutates]
    assert len(writes) == 1 and writes[0].argv[-1 if method != "dd" else 2] in (f"/dev/{path}", f"of=/dev/{path}")
    assert plan.targets == [path]  # destructive: needs confirm equal to the LV
    assert writes[0].argv[0] == ("dd" if method == "dd" else "qemu-img")
    assert method != "dd" or image.format == "raw"
    return True


def test_a_copy_never_overwrites_a_running_guests_disk_or_a_host_lv() -> None:
    holds(copy_is_safe, 200, 10, lv=st.one_of(st.sampled_from(GUEST_LVS), lv_names), image=images, busy=busy_sets,
          method=st.sampled_from(["qemu-img", "qemu-img", "dd", "dd", "cp", ""]))


# ----------------------------------------------------------------- mapping
def attach_is_safe(lv: str, busy: set[str], write: bool) -> bool:
    runner = PlanRunner()  # answers every read with nothing: the table read fails after the guard
    path = f"rl_build/{lv}"
    try:
        with open_disk(runner, facts(busy), lv=path, write=write):
            raise AssertionError("an empty disk has no partitions: never reached")
    except SafetyError:
        assert path in busy or lv in HOST_LVS or not lv.startswith("vm") or lv == "vm"
        assert runner.records == []  # refused before the first command
        return False
    except NotFound:
        assert STATE.get(lv) is None and runner.records == []
        return False
    except InvalidInput:
        if not runner.records:  # a bad name: refused before the first command
            with pytest.raises(InvalidInput):
                pt.mapper_name("rl_build", lv)
            return False
    assert path not in busy
    assert [r.command.split()[0] for r in runner.records] == ["sfdisk"]  # no table: nothing mapped
    add = pt.kpartx_add(pt.lv_mapper_path("rl_build", lv), write=write)
    assert ("-r" in add.argv) is (not write) and add.mutates is write
    return True


def test_no_mapping_of_a_running_guests_disk_and_read_only_stays_read_only() -> None:
    holds(attach_is_safe, 150, 10, lv=st.one_of(st.sampled_from(GUEST_LVS), lv_names), busy=busy_sets,
          write=st.booleans())


def loop_builders_hold(device: str, write: bool, fstype: str) -> bool:
    builders = (pt.partx_add, pt.partx_delete, pt.losetup_detach, pt.losetup_refresh, pt.partx_update)
    built = 0
    for build in builders:
        try:
            cmd = build(device)
        except InvalidInput:
            assert not _is_loop(device)
            continue
        assert _is_loop(device) and cmd.argv[-1] == device
        built += 1
    attach = pt.losetup_attach("/x/disk.raw", write=write)
    assert ("--read-only" in attach.argv) is (not write) and attach.mutates is write
    mount = mount_cmd("/dev/loop0p1", "/run/kvmops/mnt-a", fstype, write=write)
    opts = mount.argv[mount.argv.index("-o") + 1].split(",")
    assert ("ro" in opts, "rw" in opts) == (not write, write) and mount.mutates is write
    return built > 0


def test_loop_builders_take_only_loop_devices_and_mounts_are_read_only_unless_asked() -> None:
    holds(loop_builders_hold, 150, 10,
          device=st.one_of(st.sampled_from(["/dev/loop0", "/dev/loop12", "/dev/sda", "/dev/loop", "/dev/loop1p1",
                                            "/dev/loop0 ", "loop0"]), st.text(max_size=14)),
          write=st.booleans(), fstype=st.sampled_from(["xfs", "ext4", "vfat", "btrfs"]))


def _is_loop(device: str) -> bool:
    return device.startswith("/dev/loop") and device[9:].isdigit()


def mapper_name_holds(vg: str, lv: str) -> bool:
    try:
        name = pt.mapper_name(vg, lv)
    except InvalidInput:
        return False
    # device-mapper doubles the dashes inside names: the single dash splits VG from LV again
    parts = name.replace("--", "\0").split("-")
    assert len(parts) == 2 and (parts[0].replace("\0", "-"), parts[1].replace("\0", "-")) == (vg, lv)
    return True


def test_mapper_names_are_unambiguous_or_refused() -> None:
    holds(mapper_name_holds, 150, 10,
          vg=st.one_of(st.sampled_from(["rl_build", "vg-a", "a--b"]), st.text(max_size=10)),
          lv=st.one_of(st.sampled_from(["vmtest1", "vmvgcn-test2", "vm-a-", "-x"]), st.text(max_size=10)))


# ----------------------------------------------------------------- tweaks
def writes_stay_inside(path: str) -> bool:
    img = ImageFacts("/run/kvmops/mnt-x")
    try:
        steps = img.write_steps(path, "content\n", 0o600)
    except InvalidInput:
        assert not path.startswith("/") or ".." in path.split("/") or "\0" in path or "\n" in path
        return False
    for _reason, cmd in steps:
        assert cmd.argv[:2] == ("chroot", "/run/kvmops/mnt-x") and cmd.mutates  # never a host path
    return True


def test_tweaks_write_only_inside_the_image() -> None:
    holds(writes_stay_inside, 150, 10,
          path=st.one_of(st.sampled_from(["/etc/x", "etc/x", "/", "/etc/../x", "/home/centos/.ssh/authorized_keys"]),
                         st.from_regex(r"/[a-z0-9./-]{0,24}", fullmatch=True), st.text(max_size=12)))


def keys_are_checked(user: str, key: str) -> bool:
    try:
        tw.AuthorizedKeys(user, (key,))
    except InvalidInput as exc:
        assert "PRIVATE" not in str(exc) or "not shown" in str(exc)
        assert "BEGIN OPENSSH" not in str(exc)  # a private key is never echoed
        return False
    assert key.strip() == KEY and re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", user)
    return True


def test_tweaks_refuse_bad_users_and_keys_and_never_echo_a_private_key() -> None:
    holds(keys_are_checked, 150, 10,
          user=st.one_of(st.sampled_from(["centos", "root", "rocky"]), st.from_regex(r"[a-z_][a-z0-9_-]{0,12}",
                                                                                      fullmatch=True),
                         st.text(max_size=12)),
          key=st.one_of(st.sampled_from([KEY, "-----BEGIN OPENSSH PRIVATE KEY-----", "ssh-rsa AAAA",
                                         "ssh-ed25519 AAAA\nssh-rsa B"]), st.just(KEY), st.text(max_size=30)))


def no_tweak_on_a_busy_disk(lv: str, busy: set[str]) -> bool:
    host = Host(SITE, PlanRunner(), "test:///default")
    path = f"rl_build/{lv}"
    try:
        disks.tweak_image(host, facts(busy), [tw.SerialGetty()], lv=path)
    except SafetyError:
        assert path in busy and host.runner.records == []
        return False
    except InvalidInput:  # not busy: the (empty) disk has no partition table
        assert path not in busy
        return True
    raise AssertionError("an empty disk cannot be tweaked")


def test_no_tweak_on_a_running_guests_disk() -> None:
    holds(no_tweak_on_a_busy_disk, 60, 5, lv=st.sampled_from(GUEST_LVS), busy=busy_sets)


# ----------------------------------------------------------------- the CLI
def cli_refuses_host_lvs(lv: str) -> bool:
    host = Host(SITE, PlanRunner(), "test:///default")
    try:
        path = _lv(Namespace(lv=lv), host)
    except SafetyError:
        assert lv in HOST_LVS or not lv.startswith("vm") or lv == "vm"
        return False
    assert path is None if not lv else path == f"rl_build/{lv}" and lv.startswith("vm") and lv != "vm"
    assert host.runner.records == []
    return path is not None


def test_the_image_cli_refuses_a_host_lv_before_anything_runs() -> None:
    holds(cli_refuses_host_lvs, 100, 5, lv=lv_names)


# ----------------------------------------------------------------- NetworkManager profiles
ini_lines = st.one_of(st.sampled_from(["# comment", "", "method=auto", "address1=192.0.2.5/24", "gateway=192.0.2.1",
                                       "address2=198.51.100.7/24", "dns=192.0.2.53;", "mac-address=52:54:00:00:00:01",
                                       "interface-name=eth0", "may-fail=true", "id=x", "uuid=u", "type=ethernet"]),
                      st.from_regex(r"[a-z][a-z0-9-]{0,10}=[a-z0-9./;:-]{0,12}", fullmatch=True))
sections = st.lists(st.tuples(st.sampled_from(["connection", "ethernet", "ipv4", "ipv6", "proxy", "user"]),
                              st.lists(ini_lines, max_size=6)), max_size=6, unique_by=lambda part: part[0])


def keyfile_edit_holds(parts: list[tuple[str, list[str]]]) -> bool:
    from kvmops.images import nmprofiles as nm

    text = "".join(f"[{name}]\n" + "".join(f"{ln}\n" for ln in lines) for name, lines in parts)
    s = nm.Settings("eth0", "10.5.68.237/24", "10.5.68.254", ("132.230.200.200",))
    once = nm.edit_keyfile(text, s)
    assert nm.edit_keyfile(once, s) == once  # changed once, then "already so"
    # the profile's binding (interface-name, mac-address) is never changed by setting the address
    assert nm.get_ini(once, "ipv4", "method") == "manual"
    for section, key in (("connection", "interface-name"), ("ethernet", "mac-address")):
        assert nm.get_ini(once, section, key) == nm.get_ini(text, section, key)
    assert nm.get_ini(once, "ipv4", "address1") == "10.5.68.237/24,10.5.68.254"
    assert nm.get_ini(once, "ipv4", "gateway") is None and nm.get_ini(once, "ipv4", "address2") is None
    ipv4 = once.split("[ipv4]\n", 1)[1].split("\n[", 1)[0].splitlines()
    assert [ln for ln in ipv4 if ln.startswith("method=")] == ["method=manual"]  # no duplicate left to win
    kept = [ln for name, lines in parts if name != "ipv4" for ln in lines]
    assert all(ln in once.splitlines() for ln in kept)  # other sections untouched
    return any(name == "ipv4" and lines for name, lines in parts)


def test_a_profile_is_changed_once_and_keeps_what_it_does_not_set() -> None:
    holds(keyfile_edit_holds, 150, 10, parts=sections)
