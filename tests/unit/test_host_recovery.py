"""host-recovery from facts: which guests were meant to run (autostart, libvirt's own log of
runs cut by the outage), what blocks them (missing or inactive disks, invalid snapshots), a
merge under way waited for and never started again, the declared order, no guest started twice."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from kvmops import guestlive
from kvmops.errors import ConfigError, KvmopsError
from kvmops.guests.domain import DomainInfo
from kvmops.guests.history import parse_boot_time, parse_qemu_log, running_when_host_went_down
from kvmops.lvm.facts import LV, VG
from kvmops.lvm.state import LvmState
from kvmops.plan import Call, Wait
from kvmops.procedures import host_recovery as rec
from kvmops.site import default_site_path, load_site
from kvmops.waits import BootNotVerified, wait
from tests.support.facts import domain, host_facts

LOGS = Path(__file__).parent.parent / "fixtures" / "libvirt" / "qemu-logs"
# the host booted after the runs of the captured logs (their last start: 08:19:17 UTC)
BOOT = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
PROC_STAT = f"cpu  1 2 3 4\nbtime {int(BOOT.timestamp())}\nprocesses 7\n"
GiB = 1 << 30


def log(name: str) -> str:
    return (LOGS / f"{name}.log").read_text()


def lv(name: str, attr: str = "-wi-a-----", origin: str = "", pct: float | None = None) -> LV:
    return LV(name, "rl_build", attr, GiB, origin, pct, None)


def facts(domains: list[DomainInfo], lvs: list[LV], logs: dict[str, str | None]) -> rec.HostFacts:
    return host_facts(LvmState(VG("rl_build", 100 * GiB, 50 * GiB, 4 << 20, len(lvs)), tuple(lvs)),
                      domains=domains, files={"/proc/stat": PROC_STAT}, guest_logs=logs)


def test_a_run_cut_by_the_outage_is_found_in_libvirts_own_log() -> None:
    cut = parse_qemu_log(log("power-cut-while-running"))
    assert [(r.reason, r.stop is None) for r in cut] == [("destroyed", False), ("", True)]
    assert running_when_host_went_down(cut, BOOT)
    clean = parse_qemu_log(log("destroyed-twice"))
    assert [r.reason for r in clean] == ["destroyed", "destroyed"]
    assert not running_when_host_went_down(clean, BOOT)
    assert not running_when_host_went_down(cut, datetime(2026, 11, 30, 8, 0, tzinfo=UTC))  # no run before boot
    assert parse_boot_time(PROC_STAT) == BOOT
    with pytest.raises(ValueError, match="btime"):
        parse_boot_time("cpu 1 2\n")


def test_who_was_meant_to_run_and_what_blocks_it() -> None:
    checks = {c.name: c for c in rec.assess(facts(
        [domain("dns1", "/dev/rl_build/vmdns1", autostart=True),
         domain("db1", "/dev/rl_build/vmdb1"),
         domain("old1", "/dev/rl_build/vmold1"),
         domain("web1", "/dev/rl_build/vmweb1", autostart=True, active=True),
         domain("gone1", "/dev/rl_build/vmgone1", autostart=True),
         domain("bad1", "/dev/rl_build/vmbad1", autostart=True)],
        [lv("vmdns1"), lv("vmdb1"), lv("vmold1"), lv("vmweb1", "-wi-ao----"), lv("vmbad1", "owi-a-s---"),
         lv("vmbad1-20261130T0800Z", "swi-I-s---", "vmbad1", 100.0)],
        {"db1": log("power-cut-while-running"), "old1": log("destroyed-twice"), "dns1": None}))}
    assert checks["dns1"].why == "autostart is on" and checks["dns1"].action == "start"
    assert checks["db1"].why == "libvirt's log shows it running when the host went down"
    assert checks["old1"].action == "leave off (not meant to run)"  # stopped on purpose before the outage
    assert checks["web1"].action == "running (nothing to do)"
    assert "vmgone1 is MISSING" in checks["gone1"].action and not checks["gone1"].to_start
    assert "INVALID" in checks["bad1"].action


def test_an_interrupted_merge_is_waited_for_never_started_again() -> None:
    f = facts([domain("db1", "/dev/rl_build/vmdb1", autostart=True)],
              [lv("vmdb1", "Owi-a-s---"), lv("vmdb1-20261130T0800Z", "Swi-a-s---", "vmdb1", 40.0)], {})
    (check,) = rec.assess(f)
    assert check.merging == ("rl_build/vmdb1-20261130T0800Z -> rl_build/vmdb1",)
    assert check.action == "wait for the merge, then start"
    (plan,) = rec.procedure(f, ()).preview
    kinds = [type(s.effect).__name__ for s in plan.steps]
    assert kinds == ["Cmd", "Wait", "Call", "Wait"]
    assert plan.steps[0].text() == "lvchange --poll y rl_build/vmdb1"  # resumes the polling, starts nothing
    assert "never started again" in plan.steps[1].reason
    assert not any("lvconvert" in s.text() for s in plan.steps)


def test_only_the_merging_snapshot_of_an_origin_is_waited_for_and_a_disk_named_twice_once() -> None:
    """LVM merges one snapshot of an origin at a time (marked S): the other snapshot stays; a
    second poll after the first merge ended would resume nothing (the gate refuses it)."""
    f = facts([domain("db1", "/dev/rl_build/vmdb1", autostart=True)],
              [lv("vmdb1", "Owi-a-s---"), lv("vmdb1-20261130T0800Z", "Swi-a-s---", "vmdb1", 40.0),
               lv("vmdb1-20261201T0800Z", "swi-a-s---", "vmdb1", 10.0)], {})
    (check,) = rec.assess(f)
    assert check.merging == ("rl_build/vmdb1-20261130T0800Z -> rl_build/vmdb1",)
    f = facts([domain("db1", "/dev/rl_build/vmdb1", "/dev/rl_build/vmdb1", autostart=True)],
              [lv("vmdb1", "Owi-a-s---"), lv("vmdb1-20261201T0800Z", "swi-a-s---", "vmdb1", 10.0)], {})
    (check,) = rec.assess(f)  # the origin merges, no snapshot shows which: each is waited for, once
    assert check.merging == ("rl_build/vmdb1-20261201T0800Z -> rl_build/vmdb1",)


def test_the_declared_order_first_then_the_rest_by_name() -> None:
    f = facts([domain(n, f"/dev/rl_build/vm{n}", autostart=True) for n in ("web1", "app1", "db1", "dns1")],
              [lv(f"vm{n}") for n in ("web1", "app1", "db1", "dns1")], {})
    proc = rec.procedure(f, ("dns1", "db1"), boot_seconds=60)
    assert [p.title for p in proc.phases] == ["start dns1", "start db1", "start app1", "start web1"]
    first = proc.preview[0]
    assert isinstance(first.steps[0].effect, Call) and first.steps[0].text() == "virsh start dns1"
    assert isinstance(first.steps[1].effect, Wait) and "60 s" in first.steps[1].reason
    with pytest.raises(KvmopsError, match="names nope, which are no guests here"):
        rec.procedure(f, ("nope",))


def test_a_guest_running_by_now_is_not_started_twice() -> None:
    f = facts([domain("dns1", "/dev/rl_build/vmdns1", autostart=True)], [lv("vmdns1")], {})
    phase = rec.procedure(f, ()).phases[0]
    now = facts([domain("dns1", "/dev/rl_build/vmdns1", autostart=True, active=True)], [lv("vmdns1", "-wi-ao----")], {})
    again = phase.plan(now)  # planned again from fresh facts just before it runs
    assert again.empty and "not started again" in again.steps[0].reason


@pytest.mark.parametrize("text", ["dns1,dns1", "a b/c", "-x"])
def test_a_bad_order_is_a_clear_error(text: str) -> None:
    with pytest.raises(KvmopsError):
        rec.parse_order(text)


def test_verify_fails_while_a_meant_guest_is_down() -> None:
    down = facts([domain("dns1", "/dev/rl_build/vmdns1", autostart=True)], [lv("vmdns1")], {})
    assert not rec.verify(down).ok
    up = facts([domain("dns1", "/dev/rl_build/vmdns1", autostart=True, active=True)], [lv("vmdns1", "-wi-ao----")], {})
    assert rec.verify(up).ok and rec.verify(up).lines == ("ok: guest dns1 runs (autostart is on)",)


@pytest.mark.parametrize(("section", "error"), [
    ('order = "dns1"', "recovery.order: must be a list"),
    ('order = ["dns1", "dns1"]', "names a guest twice"),
    ('order = ["a b"]', "recovery.order[0]"),
    ("boot_seconds = 1", "recovery.boot_seconds: must be seconds from 10 to 3600"),
    ("when = 1", "unknown key(s) when"),
])
def test_the_sites_recovery_section_is_checked(tmp_path: Path, section: str, error: str) -> None:
    site = tmp_path / "site.toml"
    site.write_text(default_site_path().read_text() + f"\n[recovery]\n{section}\n")
    with pytest.raises(ConfigError, match=error.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_site(site)


def test_the_sites_recovery_order() -> None:
    site = load_site()
    assert (site.recovery_order, site.recovery_boot_seconds) == ((), 300.0)


CONSOLE = Path(__file__).parent.parent / "fixtures" / "console"


def _boot_wait(monkeypatch: pytest.MonkeyPatch, fixture: str, seconds: float) -> Wait:
    """The boot wait of dns1's start, its console a real capture read in ``seconds``."""
    text = (CONSOLE / f"{fixture}.log").read_bytes().decode("utf-8", "replace")
    monkeypatch.setattr(guestlive, "read_console", lambda *_a, **_k: text)
    ticks = iter([0.0, seconds])
    monkeypatch.setattr(guestlive, "time", SimpleNamespace(monotonic=lambda: next(ticks)))
    f = facts([domain("dns1", "/dev/rl_build/vmdns1", autostart=True)], [lv("vmdns1")], {})
    wait = rec.procedure(f, (), boot_seconds=300).preview[0].steps[-1].effect
    assert isinstance(wait, Wait)
    return wait


def test_a_start_counts_as_booted_only_on_a_login_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    wait(SimpleNamespace(name="testhost"), _boot_wait(monkeypatch, "small-guest-one-level-tcg", 41.0).until,  # type: ignore[arg-type]
         said.append)
    assert said == ["guest dns1 booted: login prompt after 41 s ('kvmops-guest login:')"]


@pytest.mark.parametrize(("fixture", "stage"), [("small-guest-nested-kvm-loaded-180s", "kernel"),
                                                 ("cloud-image-first-3s-grub", "boot loader"),
                                                 ("cloud-image-bad-fstab-emergency", "emergency mode")])
def test_no_login_prompt_stops_the_recovery_and_says_why(monkeypatch: pytest.MonkeyPatch, fixture: str,
                                                         stage: str) -> None:
    with pytest.raises(BootNotVerified) as err:
        wait(SimpleNamespace(name="testhost"), _boot_wait(monkeypatch, fixture, 300.0).until,  # type: ignore[arg-type]
             lambda _l: None)
    text = str(err.value)
    assert text.startswith("guest dns1: boot NOT verified in 300 s:")
    assert f"got as far as {stage}" in text and "this may be because" in text and "NOT started" in text
