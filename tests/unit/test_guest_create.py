"""guest-create as a procedure: parameters, the phases' previews and confirmations, a whole
run on libvirt's test driver (LVM simulated: tests/unit/test_guest_simlvm.py), the boot's
verdict, and retiring the seed."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

import kvmops
from kvmops import guestlive
from kvmops.errors import ConfirmationRequired, InvalidInput, NotFound, SafetyError
from kvmops.executor import Executor, StepFailed, confirmed
from kvmops.facts import read_facts
from kvmops.guests import boot
from kvmops.guests.xml import read_domain
from kvmops.host import Host, connect
from kvmops.images import nocloud
from kvmops.images import tweaks as tw
from kvmops.plan import Booted, Wait
from kvmops.procedures import guest_create as gc
from kvmops.procedures import guest_seed
from kvmops.procedures.base import PreconditionFailed
from kvmops.site import load_site
from kvmops.waits import BootNotVerified, wait
from tests.unit.test_guest_simlvm import SimLvm
from tests.unit.test_guest_testbed import Bed, bed

__all__ = ["bed"]

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc+ZQ5bnkc8Y9Uvs6yDuB1z2oQ1pL0U8kM9gpqCYQ2n admin@example"
ROOT_KEY = KEY.replace("admin@example", "root@example")


@pytest.fixture
def image(tmp_path: Path) -> str:
    """A real raw image with a partition table (and nothing in it): qemu-img and sfdisk read it."""
    path = tmp_path / "cloud.raw"
    with path.open("wb") as f:
        f.truncate(64 << 20)
    subprocess.run(["sfdisk", "-q", str(path)], input="label: dos\ntype=83\n", text=True, check=True,
                   capture_output=True)
    return str(path)


def req(b: Bed, image: str, **kw: object) -> gc.Request:
    args: dict[str, object] = {"vlans": "2368", "memory": "1g", "vcpus": 1, "size": "1g", "image": image,
                               "keys": KEY}
    args.update(kw)
    return gc.request(b.site, str(args.pop("guest", "web2")), **args)  # type: ignore[arg-type]


def run(host: Host, proc: gc.Procedure, confirm: str = "") -> list[str]:
    return Executor(host, lambda _l: None).run_procedure(proc, confirmed(confirm))


def mutations(sim: SimLvm, host: Host) -> list[str]:
    """Every change that ran: LVM (simulated), files, libvirt calls (all through the runner's log)."""
    return [r.command for r in host.runner.records if r.mutates and r.executed] + [" ".join(a) for a in sim.changes]


# -- parameters ------------------------------------------------------------------------------


def test_vlans_make_one_nic_each_and_the_address_goes_to_the_first(bed: Bed, image: str) -> None:
    r = req(bed, image, vlans="2368,223", address="10.5.68.237")
    assert r.vlans == (2368, 223) and r.spec.bridges == ("virbr1.2368", "virbr1.223")
    assert r.address is not None and r.address.with_prefix == "10.5.68.237/24" and r.address.device == "eth0"
    assert req(bed, image, vlans=2368).vlans == (2368,)  # papermill may hand over an int


@pytest.mark.parametrize(("kw", "message"), [
    ({"vlans": ""}, "give at least one VLAN"),
    ({"vlans": "2368,2368"}, "listed twice"),
    ({"vlans": "2368,x"}, "VLAN"),
    ({"vlans": "999"}, "999"),
    ({"vlans": "223,2368", "address": "10.5.68.237"}, "address: 10.5.68.237 is not in VLAN 223's network"),
    ({"vlans": "2368,223", "addresses": "223=10.5.68.9"}, "addresses: 10.5.68.9 is not in VLAN 223's network"),
    ({"vlans": "2368", "addresses": "223=132.230.223.9"}, "addresses: VLAN 223 is not one of the guest's vlans"),
    ({"vlans": "2368,223", "addresses": "223"}, "addresses: '223' is not VLAN=ADDRESS"),
    ({"vlans": "2368,223", "addresses": "223=132.230.223.9,223=132.230.223.8"}, "VLAN 223 is given twice"),
    ({"address": "10.5.68.9", "addresses": "2368=10.5.68.8"}, "address and addresses both give VLAN 2368's"),
    ({"vlans": "2368,223", "address": "10.5.68.9", "gateway_vlan": 223}, "gateway_vlan: VLAN 223 has no static"),
    ({"vlans": "2368,223", "address": "10.5.68.9", "gateway_vlan": 2367}, "gateway_vlan: VLAN 2367 is not one"),
    ({"gateway_vlan": 5000}, "gateway_vlan: VLAN id 5000 is outside"),
    ({"setup": "none", "keys": "", "addresses": "2368=10.5.68.9"}, "setup=none leaves the image as it is, but addr"),
    ({"setup": "cloud"}, "use one of nocloud, tweaks, none"),
    ({"setup": "none", "keys": "", "root_keys": ROOT_KEY}, "setup=none leaves the image as it is, but root_keys"),
    ({"keys": "ssh-rsa"}, "keys:"),
    ({"root_keys": "not a key"}, "root_keys:"),
    ({"image": "cloud.raw"}, "absolute path"),
    ({"guest": "../x"}, "guest"),
    ({"console_seconds": -1.0}, "console_seconds -1.0"),
    ({"console_seconds": float("nan")}, "console_seconds nan"),
])
def test_bad_parameters_are_refused_before_any_read(bed: Bed, image: str, kw: dict[str, object],
                                                    message: str) -> None:
    with pytest.raises((InvalidInput, NotFound), match=message):
        req(bed, str(kw.pop("image", image)), **kw)


# -- previews and confirmations --------------------------------------------------------------


def test_every_phase_is_shown_up_front_and_a_new_lv_needs_no_confirmation(bed: Bed, image: str) -> None:
    host = bed.host(runner=SimLvm())
    r = req(bed, image, vlans="2368,223", root_keys=ROOT_KEY)
    proc = gc.procedure(read_facts(host, gc.wanted(bed.site, r)), r)
    titles = [p.title for p in proc.preview]
    assert titles[0].startswith("create LV rl_build/vmweb2") and titles[2].startswith("NoCloud seed ISO for web2")
    text = "\n".join(p.render() for p in proc.preview)
    seed = nocloud.seed_path(bed.site, "web2")
    assert "fill rl_build/vmweb2 with" in text and f"install -D -m 0600 /dev/null {seed}" in text
    assert "virsh define" in text and "virsh start web2" in text and "virsh autostart web2" in text
    assert [t for p in proc.preview for t in p.targets] == []
    facts = read_facts(host, gc.wanted(bed.site, r))
    assert read_domain(gc.render_domain_xml(bed.site, gc.spec_of(facts, r))).cdrom == seed


def test_tweaks_are_planned_after_the_copy_with_root_keys_and_relabel(bed: Bed, image: str) -> None:
    r = req(bed, image, setup="tweaks", root_keys=ROOT_KEY, address="10.5.68.237")
    todo = gc.tweaks(r)
    assert isinstance(todo[-1], tw.SelinuxRelabel)  # last: files written offline carry no labels
    keys = {t.user: t.keys for t in todo if isinstance(t, tw.AuthorizedKeys)}
    assert keys == {"centos": (KEY,), "root": (ROOT_KEY,)}
    assert any(isinstance(t, tw.StaticIp) for t in todo) and any(isinstance(t, tw.SerialGetty) for t in todo)
    host = bed.host(runner=SimLvm())
    proc = gc.procedure(read_facts(host, gc.wanted(bed.site, r)), r)
    (tweak,) = proc.preview[2].steps
    assert tweak.noop and "tweak the image on rl_build/vmweb2 when this phase runs" in tweak.reason
    assert "planned from the image's content after the copy" in proc.preview[2].render()
    hold = proc.phases[2].hold
    assert hold is not None and (hold.lv, hold.write, hold.root) == ("rl_build/vmweb2", True, True)


def test_a_stale_kept_xml_is_confirmed_before_the_lv_is_even_created(bed: Bed, image: str) -> None:
    """Issue 13: define's confirmation used to be checked after the LV and the copy."""
    bed.xml_dir.mkdir()
    stale = bed.xml_dir / "web2.xml"
    stale.write_text("<domain type='kvm'><name>web2</name><memory>1</memory><vcpu>1</vcpu></domain>\n")
    sim = SimLvm()
    host = bed.host(runner=sim)
    r = req(bed, image)
    proc = gc.procedure(read_facts(host, gc.wanted(bed.site, r)), r)
    assert [t for p in proc.preview for t in p.targets] == ["web2"]
    with pytest.raises(ConfirmationRequired, match="confirm='web2'"):
        run(host, proc)
    assert mutations(sim, host) == [] and "vmweb2" not in sim.names()
    assert stale.read_text().startswith("<domain type='kvm'><name>web2</name>")
    assert host.virt.domains() == read_facts(host).domains and not host.virt.exists("web2")


def test_copying_onto_an_existing_lv_needs_its_confirmation_first(bed: Bed, image: str) -> None:
    sim = SimLvm()
    sim.add("vmweb2")
    host = bed.host(runner=sim)
    r = req(bed, image)
    facts = read_facts(host, gc.wanted(bed.site, r))
    assert any("EXISTS" in line and "confirm='rl_build/vmweb2'" in line for line in gc.check(facts, r))
    proc = gc.procedure(facts, r)
    with pytest.raises(ConfirmationRequired, match="rl_build/vmweb2"):
        run(host, proc, "web2")
    assert mutations(sim, host) == []


def test_an_lv_that_appears_after_the_preview_is_not_overwritten(bed: Bed, image: str) -> None:
    """Each phase is planned again from fresh facts: the copy then targets an LV this run did
    not make, which nobody confirmed."""
    sim = SimLvm()
    host = bed.host(runner=sim)
    r = req(bed, image)
    proc = gc.procedure(read_facts(host, gc.wanted(bed.site, r)), r)
    sim.add("vmweb2")  # someone else made it meanwhile
    with pytest.raises(ConfirmationRequired, match="host changed meanwhile"):
        run(host, proc)
    assert not any(a[:2] == ("qemu-img", "convert") for a in sim.changes)


def test_a_defined_guest_is_refused(bed: Bed, image: str) -> None:
    host = bed.host(runner=SimLvm())
    r = req(bed, image, guest="web1")
    with pytest.raises(PreconditionFailed, match="guest web1 exists already"):
        gc.check(read_facts(host, gc.wanted(bed.site, r)), r)


# -- a whole run -----------------------------------------------------------------------------


def test_a_whole_run_defines_starts_and_verifies_but_not_the_boot(bed: Bed, image: str) -> None:
    sim = SimLvm()
    host = bed.host(runner=sim)
    r = req(bed, image, vlans="2368,223", address="10.5.68.237", root_keys=ROOT_KEY, console_seconds=0)
    facts = read_facts(host, gc.wanted(bed.site, r))
    gc.check(facts, r)
    proc = gc.procedure(facts, r)
    assert "boot NOT verified: console_seconds=0 skipped the console check" in proc.preview[-2].render()
    stays = proc.preview[-1]  # no boot verified by this run: the seed stays, and the plan says why
    assert stays.empty and "the seed stays (console_seconds=0" in stays.render()
    run(host, proc)
    assert "vmweb2" in sim.names()
    assert [a[:2] for a in sim.changes if a[0] == "qemu-img"] == [("qemu-img", "convert"), ("qemu-img", "compare")]
    seed = Path(nocloud.seed_path(bed.site, "web2"))
    assert stat.S_IMODE(seed.stat().st_mode) == 0o600
    _vol, files = nocloud.read_iso(seed.read_bytes())
    assert ROOT_KEY in files["user-data"] and "10.5.68.237/24" in files["network-config"]
    info = host.virt.info("web2")
    assert info.active and info.autostart
    defined = read_domain(info.inactive_xml)
    assert defined.cdrom == str(seed) and defined.bridges == ("virbr1.2368", "virbr1.223")
    now = read_facts(host, gc.verify_wanted(bed.site, r))
    assert gc.verify(now, r).ok, gc.verify(now, r).render()  # libvirt's view
    verdict = gc.verify(now, r, facts)  # this run started it: no boot verified is no success
    assert [ln for ln in verdict.lines if ln.startswith("FAILED")] == [
        "FAILED: boot NOT verified: console_seconds=0 skipped the console check (a start is not a boot)"]
    assert Path(seed).exists() and not gc.retires_seed(facts, r)  # kept: no boot was verified
    again = gc.procedure(read_facts(host, gc.wanted(bed.site, r)), r)  # a re-run: the guest is there as asked
    assert all(s.effect is None for p in again.preview for s in p.steps)  # nothing again, no copy under it
    assert "guest web2 runs already: this run does not start it" in again.preview[-1].render()
    with pytest.raises(SafetyError, match="disk of the running guest web2"):  # never copied under a guest
        gc.procedure(read_facts(host, gc.wanted(bed.site, r)), req(bed, image, memory="2g"))


def test_the_seed_is_retired_once_and_for_all(bed: Bed, image: str) -> None:
    sim = SimLvm()
    host = bed.host(runner=sim)
    r = req(bed, image, password="", console_seconds=0)
    run(host, gc.procedure(read_facts(host, gc.wanted(bed.site, r)), r))
    host.virt.destroy("web2")  # the test driver cannot eject live: the live eject is the integration test's
    seed = nocloud.seed_path(bed.site, "web2")
    wanted = guest_seed.wanted(bed.site, "web2")
    assert not guest_seed.verify(read_facts(host, wanted), "web2").ok
    run(host, guest_seed.procedure(read_facts(host, wanted), "web2"))
    verdict = guest_seed.verify(read_facts(host, wanted), "web2")
    assert verdict.ok, verdict.render()
    assert not Path(seed).exists() and read_domain(host.virt.inactive_xml("web2")).cdrom is None
    assert read_domain((bed.xml_dir / "web2.xml").read_text()).cdrom is None
    assert host.virt.info("web2").autostart  # only the drive changed
    assert guest_seed.plan(read_facts(host, wanted), "web2").empty  # converged


def test_the_seed_is_retired_from_a_running_guest_live_first(bed: Bed, image: str) -> None:
    host = bed.host(runner=SimLvm())
    r = req(bed, image, console_seconds=0)
    run(host, gc.procedure(read_facts(host, gc.wanted(bed.site, r)), r))
    plan = guest_seed.plan(read_facts(host, guest_seed.wanted(bed.site, "web2")), "web2")
    assert [s.text() for s in plan.steps][:2] == ["virsh change-media web2 sda --eject --live",
                                                   "virsh change-media web2 sda --eject --config"]
    assert plan.steps[-1].text() == f"rm -f -- {nocloud.seed_path(bed.site, 'web2')}"


# -- the boot's verdict ----------------------------------------------------------------------

CONSOLES = sorted((Path(__file__).parent.parent / "fixtures" / "console").glob("*.log"))


def _fake_console(monkeypatch: pytest.MonkeyPatch, text: str, seconds: float = 30.0) -> list[object]:
    """guestlive.read_console returns ``text`` (a real captured console); the clock says the
    read took ``seconds``. Returns the ``until`` functions the reader was given."""
    untils: list[object] = []

    def read(*_a: object, until: object = None, **_k: object) -> str:
        untils.append(until)
        return text

    monkeypatch.setattr(guestlive, "read_console", read)
    ticks = iter([100.0, 100.0 + seconds])
    monkeypatch.setattr(guestlive, "time", SimpleNamespace(monotonic=lambda: next(ticks)))
    return untils


def _boot(host: object, guest: str, seconds: float) -> str:
    """The start's boot wait (the one boot check): what it said, or the BootNotVerified it raised."""
    said: list[str] = []
    try:
        wait(host, Booted(guest, seconds, way_out="Follow guest-unreachable."), said.append)  # type: ignore[arg-type]
    except BootNotVerified as exc:
        return f"raised: {exc}"
    return said[-1]


@pytest.mark.parametrize("case", CONSOLES, ids=lambda p: p.stem)
def test_booted_only_on_a_login_prompt_in_real_consoles(monkeypatch: pytest.MonkeyPatch, case: Path) -> None:
    """Every captured console (tests/fixtures/console): booted exactly when it shows a login
    prompt; otherwise 'boot NOT verified in N s', how far it got and why that may be."""
    want = json.loads(case.with_suffix(".expected.json").read_text())
    _fake_console(monkeypatch, case.read_bytes().decode("utf-8", "replace"), 30.0)
    text = _boot(SimpleNamespace(name="testhost"), "web2", 30)
    if want["booted"]:
        assert text.startswith("guest web2 booted: login prompt after 30 s"), text
    else:
        assert text.startswith("raised: guest web2: boot NOT verified in 30 s: NOT verified: no login prompt "
                               f"within 30 s; the console got as far as {want['stage']};"), text
        assert "this may be because " + boot.WHY[want["stage"]] in text and text.endswith("Follow guest-unreachable.")


def test_the_runbook_called_ok_what_was_still_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's 180 s on a loaded machine: boot loader and kernel lines, no login prompt."""
    text = next(c for c in CONSOLES if c.stem == "small-guest-nested-kvm-loaded-180s").read_text()
    assert "SYSLINUX" in text
    _fake_console(monkeypatch, text, 180.0)
    said = _boot(SimpleNamespace(name="testhost"), "demo1", 180)
    assert said.startswith("raised: guest demo1: boot NOT verified in 180 s: NOT verified: no login prompt within "
                           "180 s; the console got as far as kernel")
    assert "booted" not in said.replace("NOT verified", "")


def test_the_console_is_read_until_a_login_prompt_or_a_fatal_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    untils = _fake_console(monkeypatch, "")
    _boot(SimpleNamespace(name="testhost"), "web2", 30)
    until = untils[0]
    assert callable(until)
    assert not until("SYSLINUX 6.04 2021\nLoading /boot/initrd.img...ok\n")
    assert until("\nweb2 login: ") and until("[ 2.1] Kernel panic - not syncing: VFS: Unable to mount root fs\n")


def test_the_images_marker_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_console(monkeypatch, "[    7.5] XFS (vda1): Ending clean mount\nKVMOPS-MARKER guest is up\n", 9.0)
    v = guestlive.wait_booted(None, "web2", 30, markers=("KVMOPS-MARKER",))  # type: ignore[arg-type]
    assert v.booted and "the image's boot marker" in v.message


def test_boot_loader_lines_are_never_a_boot() -> None:
    syslinux = "SYSLINUX 6.04 EDD 20191223 Copyright (C) 1994-2015 H. Peter Anvin et al\nLoading /boot/vmlinuz... ok\n"
    assert not boot.login_prompt(syslinux) and not boot.login_prompt(syslinux + "GRUB loading.\n")
    assert not boot.login_prompt("Last login: Mon Nov 30 08:00:00 UTC 2026 on ttyS0\n")
    assert boot.login_prompt(syslinux + "\nweb2 login: ")


def test_the_start_waits_for_the_boot_and_only_then_the_seed_is_retired(bed: Bed, image: str) -> None:
    host = bed.host(runner=SimLvm())
    r = req(bed, image, console_seconds=90)
    proc = gc.procedure(read_facts(host, gc.wanted(bed.site, r)), r)
    start, retire = proc.preview[-2:]
    waits = [s.effect.until for s in start.steps if isinstance(s.effect, Wait)]
    assert waits == [Booted("web2", 90, way_out=waits[0].way_out)] and "seed-done web2" in waits[0].way_out
    assert retire.title.startswith("only after a verified boot: retire the NoCloud seed of guest web2")
    assert [t.split()[:2] for t in (s.text() for s in retire.steps)][:2] == [["virsh", "change-media"]] * 2
    assert gc.retires_seed(proc.facts, r)  # type: ignore[arg-type]
    tweaks = gc.procedure(read_facts(host, gc.wanted(bed.site, req(bed, image, setup="tweaks"))),
                          req(bed, image, setup="tweaks"))
    assert not tweaks.preview[-1].title.startswith("only after")  # no seed, no retirement phase


def test_a_boot_not_verified_fails_the_run_and_the_seed_stays(bed: Bed, image: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    text = next(c for c in CONSOLES if c.stem == "small-guest-nested-kvm-loaded-180s").read_text()
    monkeypatch.setattr(guestlive, "read_console", lambda *_a, **_k: text)
    host = bed.host(runner=SimLvm())
    r = req(bed, image, console_seconds=5)
    with pytest.raises(StepFailed, match="boot NOT verified") as err:
        run(host, gc.procedure(read_facts(host, gc.wanted(bed.site, r)), r))
    assert "seed-done web2 --apply" in str(err.value)
    assert host.virt.info("web2").active and Path(nocloud.seed_path(bed.site, "web2")).exists()
    assert read_domain(host.virt.inactive_xml("web2")).cdrom == nocloud.seed_path(bed.site, "web2")


def test_the_demo_site_plans_any_new_guest() -> None:
    """Plan mode from recorded facts: a guest whose kept XML and seed were never recorded
    (web3) is a guest that has none."""
    host = connect(load_site(Path(kvmops.__file__).parent / "sites" / "demo.toml"))
    try:
        r = gc.request(host.site, "web3", vlans="2368,223", memory="2g", vcpus=2, size="10g",
                       image="/var/lib/kvmops/images/Rocky-9-GenericCloud.latest.x86_64.qcow2")
        facts = read_facts(host, gc.wanted(host.site, r))
        assert "disk rl_build/vmweb3: created with 10.00 GiB (VG has 592.00 GiB free)" in gc.check(facts, r)
        proc = gc.procedure(facts, r)
        assert [t for p in proc.preview for t in p.targets] == []
        assert "virsh start web3" in proc.preview[-2].render()
        assert "rm -f -- /var/lib/libvirt/boot/web3-seed.iso" in proc.preview[-1].render()
        assert guest_seed.plan(read_facts(host, guest_seed.wanted(host.site, "test1")), "test1").empty
    finally:
        host.close()


