"""The disk runbooks' procedures as functions over facts: image-tweak's tweaks and checks,
guest-resize's phases and verdict, guest-inspect's reading of logs and accounts,
guest-unreachable's findings and suggestions."""

from __future__ import annotations

import pytest

from kvmops.cmd import Cmd, Result
from kvmops.errors import InvalidInput, NotFound
from kvmops.facts import inspect as inspect_facts
from kvmops.facts import read_facts
from kvmops.host import connect
from kvmops.images import grow
from kvmops.images import inspect as ins
from kvmops.images import tweaks as tw
from kvmops.images.mount import Filesystem, RootFs
from kvmops.images.partitions import Partition
from kvmops.images.passwords import Password
from kvmops.lvm.facts import LV, VG
from kvmops.lvm.state import LvmState
from kvmops.plan import Call, Plan
from kvmops.procedures import guest_inspect, guest_resize, guest_unreachable, image_tweak
from kvmops.procedures.base import PreconditionFailed
from kvmops.runners.base import LineSink
from kvmops.site import load_site, resolve_site
from tests.support.facts import domain, host_facts
from tests.support.fakeimage import ROOT, FakeImage

GiB = 1 << 30
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc+ZQ5bnkc8Y9Uvs6yDuB1z2oQ1pL0U8kM9gpqCYQ2n admin@example"
STATE = LvmState(VG("rl_build", 100 * GiB, 50 * GiB, 4 << 20, 2),
                 (LV("vmtest1", "rl_build", "-wi-a-----", 10 * GiB, "", None, None),
                  LV("vmweb", "rl_build", "-wi-------", 10 * GiB, "", None, None)))


# ----------------------------------------------------------------- image-tweak
def test_the_login_user_comes_first_when_a_tweak_needs_it_and_relabel_last() -> None:
    todo = image_tweak.tweaks("centos", password="pw-123456", keys=f"{KEY}; ", sudo=True, console=True)
    kinds = [type(t).__name__ for t in todo]
    assert kinds == ["LoginUser", "SetPassword", "AuthorizedKeys", "Sudoers", "SerialGetty", "GrubSerial",
                     "SelinuxRelabel"]
    only_console = image_tweak.tweaks("centos", console=True)
    assert not any(isinstance(t, tw.LoginUser) for t in only_console)  # nothing for the login user: no user made
    with pytest.raises(PreconditionFailed, match="nothing to do"):
        image_tweak.tweaks("centos")
    assert all("$6$" not in image_tweak.describe(t) for t in todo)
    with pytest.raises(InvalidInput, match="keys: not an OpenSSH public key"):  # the one key parser: validated
        image_tweak.tweaks("centos", keys="ssh-ed25519")


def test_one_tweak_builder_for_both_runbooks() -> None:
    """image-tweak's and guest-create's tweaks come from the same rules: the login user first
    when a tweak concerns it, the relabel last, the same order in between."""
    pw = Password.clear("centos", "pw-123456")
    todo = tw.build("centos", root_password=Password.clear("root", "pw-123456"), keys=(KEY,), root_keys=(KEY,),
                    sudo=True, getty=True)
    assert [type(t).__name__ for t in todo] == ["LoginUser", "SetPassword", "AuthorizedKeys", "AuthorizedKeys",
                                                "Sudoers", "SerialGetty", "SelinuxRelabel"]
    assert [type(t).__name__ for t in tw.build("centos", root_password=pw)] == ["SetPassword", "SelinuxRelabel"]
    assert isinstance(tw.build("centos", password=pw)[0], tw.LoginUser)


def test_the_request_names_each_tweak_and_the_address_in_full() -> None:
    site = load_site(resolve_site("demo"))
    req = image_tweak.request(site, "influx", password="pw-123456", keys=KEY, vlan=2368, address="10.5.68.237")
    text = req.render()
    assert text.startswith("tweaks:\n- login user centos") and "pw-123456" not in text and "$6$" not in text
    assert "guest influx NIC 1 (eth0): 10.5.68.237/24 on VLAN 2368 (bridge virbr1.2368)" in text
    assert isinstance(req.tweaks[-2], tw.StaticIp) and req.address is not None
    with pytest.raises(InvalidInput, match="default router"):
        image_tweak.request(site, "influx", sudo=True, vlan=2368, address="10.5.68.254")


def test_on_a_recorded_host_the_plan_says_the_tweaks_are_not_planned() -> None:
    host = connect(load_site(resolve_site("demo")))
    facts = read_facts(host)
    todo = image_tweak.tweaks("centos", console=True)
    proc = image_tweak.procedure(host, facts, "influx", todo, {"lv": "rl_build/vminflux"})
    (preview,) = proc.preview
    assert not preview.steps and "SKIPPED: site demo replays recorded outputs" in preview.render()
    hold = proc.phases[0].hold
    assert hold is not None and (hold.lv, hold.write, hold.root) == ("rl_build/vminflux", True, True)
    with pytest.raises(PreconditionFailed, match="recorded site"):
        image_tweak.verify(host, "influx", todo, {"lv": "rl_build/vminflux"})


def test_tweak_checks_refuse_a_running_guest_and_a_busy_lv() -> None:
    running = host_facts(STATE, domains=[domain("test1", "/dev/rl_build/vmtest1", active=True)])
    with pytest.raises(PreconditionFailed, match="guest test1 is running"):
        image_tweak.check(running, "test1")
    off = host_facts(STATE, domains=[domain("test1", "/dev/rl_build/vmtest1")])
    assert image_tweak.check(off, "test1").startswith("rl_build/vmtest1: 10.00 GiB")
    with pytest.raises(PreconditionFailed, match="does not exist"):
        image_tweak.check(off, "nosuch")
    assert image_tweak.source(off.site, "test1") == {"lv": "rl_build/vmtest1"}


def test_verify_needs_every_tweak_already_so() -> None:
    empty = tw.TweakReport(plans=[Plan("a").noop("already so: a"), Plan("b").noop("already so: b")])
    assert image_tweak.judge(empty).ok
    pending = tw.TweakReport(plans=[Plan("a").noop("already so"), Plan("b").add("x", Cmd(("true",)))])
    verdict = image_tweak.judge(pending)
    assert not verdict.ok and "FAILED: b: still plans a change" in verdict.render()


# ----------------------------------------------------------------- guest-resize
def _disk(size: int, part_sectors: int, fs: int | None) -> grow.DiskFacts:
    part = Partition(1, "/dev/mapper/rl_build-vmtest1p1", 2048, part_sectors)
    return grow.DiskFacts("rl_build/vmtest1", "/dev/mapper/rl_build-vmtest1", size, "dos", (part,),
                          Filesystem(part, "xfs"), part.size, fs)


def test_resize_checks_and_phases() -> None:
    off = host_facts(STATE, domains=[domain("test1", "/dev/rl_build/vmtest1")])
    assert "10.00 GiB -> 20.00 GiB" in guest_resize.check(off, "test1", 20 * GiB, True)
    with pytest.raises(PreconditionFailed, match="only grows"):
        guest_resize.check(off, "test1", 5 * GiB, True)
    # the LV is that size already (a re-run after phase 1): accepted, its phase is "already so"
    assert "10.00 GiB (grown already)" in guest_resize.check(off, "test1", 10 * GiB, True)
    (done,) = guest_resize.lv_phase(off, "test1", 10 * GiB).preview
    assert not [s for s in done.steps if s.cmd]
    running = host_facts(STATE, domains=[domain("test1", "/dev/rl_build/vmtest1", active=True)])
    with pytest.raises(PreconditionFailed, match="shut it down first"):
        guest_resize.check(running, "test1", 20 * GiB, True)
    assert "running" in guest_resize.check(running, "test1", 20 * GiB, False)
    (lv_plan,) = guest_resize.lv_phase(off, "test1", 20 * GiB).preview
    assert [s.cmd.argv[0] for s in lv_plan.steps if s.cmd] == ["lvresize"]
    seen = _disk(10 * GiB, 10 * GiB // 512 - 2048, 10 * GiB - 2048 * 512)
    part, fs = guest_resize.preview(seen, 20 * GiB)
    assert [s.cmd.argv[0] for s in part.steps if s.cmd] == ["sfdisk", "kpartx"]
    assert [s.cmd.argv[0] for s in fs.steps if s.cmd] == ["xfs_growfs"]


def test_resize_is_one_procedure_of_the_lv_and_the_grow_phases(monkeypatch: pytest.MonkeyPatch) -> None:
    host = connect(load_site(resolve_site("demo")))
    facts = read_facts(host)
    recorded = guest_resize.procedure(host, facts, "influx", 30 * GiB, True)
    (lv_plan,) = recorded.preview  # the demo's disk cannot be mapped: the LV only, and a note why
    assert "the filesystem phase (`xfs_growfs` or `resize2fs`) are not planned here" in lv_plan.render()
    inside = guest_resize.procedure(host, facts, "influx", 30 * GiB, False)
    assert len(inside.phases) == 1 and "run inside it, as root: growpart /dev/vda 1" in inside.preview[0].render()
    seen = _disk(20 * GiB, 20 * GiB // 512 - 2048, 20 * GiB - 2048 * 512)
    monkeypatch.setattr(guest_resize, "look", lambda _h, _g: seen)
    whole = guest_resize.procedure(host, facts, "influx", 30 * GiB, True)
    assert [p.title.split()[0] for p in whole.preview] == ["resize", "grow", "grow"]
    holds = [p.hold for p in whole.phases]
    assert holds[0] is None and all(h is not None and h.lv == "rl_build/vminflux" and h.write for h in holds[1:])
    assert [s.cmd.argv[0] for s in whole.preview[1].steps if s.cmd] == ["sfdisk", "kpartx"]


def test_resize_verdict_is_the_sizes_read_back() -> None:
    grown = host_facts(LvmState(STATE.vg, (LV("vmtest1", "rl_build", "-wi-a-----", 20 * GiB, "", None, None),)))
    whole = 20 * GiB // 512 - 2048
    assert guest_resize.judge(grown, "test1", 20 * GiB, _disk(20 * GiB, whole, whole * 512)).ok
    half = guest_resize.judge(grown, "test1", 20 * GiB, _disk(20 * GiB, whole, whole * 256))
    assert not half.ok and "FAILED: the xfs filesystem is 10.00 GiB" in half.render()
    short = guest_resize.judge(grown, "test1", 20 * GiB, _disk(20 * GiB, whole // 2, whole * 256))
    assert not short.ok and "FAILED: partition 1 ends" in short.render()


# ----------------------------------------------------------------- guest-inspect
class Logs(FakeImage):
    """A fake image whose host-side journalctl and df answer too."""

    def __init__(self, journal: str | None, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.journal = journal

    def _execute(self, cmd: Cmd, on_line: LineSink | None) -> Result:
        if cmd.argv[0] == "journalctl":
            return Result(cmd, self.host, 0 if self.journal is not None else 1, self.journal or "", "", 0.0)
        if cmd.argv[:2] == ("chroot", ROOT) and cmd.argv[2] == "tail":
            return self._answer(cmd, self.files.get(cmd.argv[-1]))
        return super()._execute(cmd, on_line)


def _root() -> RootFs:
    return RootFs(ROOT, Filesystem(Partition(1, "/dev/loop0p1", 2048, 1000), "ext4"), {"ID": "debian"}, False)


def test_the_journal_when_kept_on_disk_else_the_log_files() -> None:
    files = {"/var/log/syslog": "syslog line\n", "/var/log/journal/x/system.journal": ""}
    kept = Logs("2026-11-30T10:00:00+0000 web1 kernel: Linux version\n", files=files)
    logs, notes = inspect_facts._logs(kept, _root(), 5, ins.LOG_FILES)
    assert [what for what, _ in logs] == ["journal (/var/log/journal)"] and not notes
    empty = Logs("-- No entries --\n", files=files)
    logs, notes = inspect_facts._logs(empty, _root(), 5, ins.LOG_FILES)
    assert [what for what, _ in logs] == ["/var/log/syslog"] and "read nothing" in notes[0]
    none = Logs(None, files={"/var/log/syslog": "x\n"})
    assert [what for what, _ in inspect_facts._logs(none, _root(), 5, ins.LOG_FILES)[0]] == ["/var/log/syslog"]
    linked = Logs("entries\n", files={"/var/log/syslog": "x\n"}, links={"/var/log/journal": "/run/log/journal"})
    assert [what for what, _ in inspect_facts._logs(linked, _root(), 5, ins.LOG_FILES)[0]] == ["/var/log/syslog"]


def test_accounts_show_password_state_and_whose_keys_never_a_hash() -> None:
    from kvmops.facts.imagefs import gather

    files = {"/etc/passwd": "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n"
                            "centos:x:1000:1000::/home/centos:/bin/bash\nnobody:x:65534:65534::/:/bin/sh\n",
             "/etc/shadow": "root:$6$salt$hash:1::::::\ncentos:!:1::::::\n",
             "/home/centos/.ssh/authorized_keys": f"{KEY}\n# old\nno-pty {KEY.rsplit(' ', 1)[0]}\n"}
    fake = FakeImage(files, stats={"/home/centos/.ssh/authorized_keys": "regular file|600|1000|1000"})
    rows = ins.account_rows(gather(fake, ROOT, [ins._AccountsWanted()]))
    assert [(r.name, r.password) for r in rows] == [("root", "set"), ("centos", "none (no password login)")]
    assert rows[1].keys == ("admin@example", "ssh-ed25519 key without comment")
    assert rows[1].keys_file == "/home/centos/.ssh/authorized_keys: 600 1000:1000" and rows[0].keys == ()
    assert "$6$" not in repr(rows)


def test_inspect_checks() -> None:
    running = host_facts(STATE, domains=[domain("test1", "/dev/rl_build/vmtest1", active=True)])
    with pytest.raises(PreconditionFailed, match="running"):
        guest_inspect.check(running, "test1")
    off = host_facts(STATE)
    assert "not running" in guest_inspect.check(off, "web")
    assert guest_inspect.preview({"lv": "rl_build/vmweb"}).render().splitlines()[3] == \
        "kpartx -l -p p /dev/mapper/rl_build-vmweb"


def test_a_recorded_host_is_not_inspected_and_says_so() -> None:
    host = connect(load_site(resolve_site("demo")))
    seen = guest_inspect.look_inside(host, "influx", {"lv": "rl_build/vminflux"}, 5)
    assert seen.report is None and seen.render().startswith("SKIPPED: site demo replays recorded outputs")
    assert guest_inspect.verify(host, seen).ok
    assert not [r for r in host.runner.records if r.executed]  # the recording answers reads; nothing ran


def test_an_image_file_the_host_lacks_is_refused() -> None:
    host = connect(load_site(resolve_site("demo")))
    with pytest.raises(NotFound):
        guest_inspect.check(read_facts(host, guest_inspect.wanted("/srv/nosuch.raw")), "influx", "/srv/nosuch.raw")


# ----------------------------------------------------------------- guest-unreachable
def test_findings_from_the_facts_and_what_to_do() -> None:
    facts = host_facts(STATE, domains=[domain("web", "/dev/rl_build/vmweb", "/dev/rl_build/vmgone",
                                              "/var/lib/x.raw")])
    f = guest_unreachable.state(facts, "web")
    assert [d.status for d in f.disks] == [guest_unreachable.INACTIVE, guest_unreachable.MISSING,
                                           "not an LV of the site's VG"]
    tips = guest_unreachable.suggestions(f)
    assert any(t.startswith("a disk LV is missing") for t in tips)
    assert any(t.startswith("a disk LV is not active") for t in tips)
    assert any("action=start" in t for t in tips) and any("autostart is off" in t for t in tips)
    assert guest_unreachable.disk_source(f) == {"lv": "rl_build/vmweb"}


def test_the_reports_say_what_they_read_and_what_they_did_not() -> None:
    host = connect(load_site(resolve_site("demo")))
    facts = read_facts(host)
    off, running = guest_unreachable.state(facts, "influx"), guest_unreachable.state(facts, "test1")
    assert guest_unreachable.state_table(running).rows == [("test1", "running", "off", "virbr1.2368")]
    assert guest_unreachable.disk_table(off).rows == [("/dev/rl_build/vminflux", "LV present")]
    assert guest_unreachable.console(host, off, 5, print) == "guest influx is shut off: no console to read"
    assert guest_unreachable.console(host, running, 0, print) == "console reading skipped (seconds=0)"
    assert "no serial log file configured" in guest_unreachable.serial_log(host, running, 5)
    # the disk: a running guest's only after a destroy, planned; the demo's is never mapped
    assert guest_unreachable.look_at_disk(host, running, False, 5).plans == ()
    planned = guest_unreachable.look_at_disk(host, running, True, 5)
    assert len(planned.plans) == 1 and planned.text.startswith("planned after the destroy")
    seen = guest_unreachable.look_at_disk(host, off, False, 5)
    assert "kpartx -l -p p /dev/mapper/rl_build-vminflux" in seen.plans[0].render()
    assert seen.text.startswith("SKIPPED: site demo replays recorded outputs") and off.report is None
    assert guest_unreachable.seen_lines(off) == ["seen: state: shut off"]
    assert guest_unreachable.next_steps(off).startswith("**Next:**\n- start it and watch it boot")


def test_the_forced_power_off_is_a_procedure_with_its_confirmation() -> None:
    facts = host_facts(STATE, domains=[domain("test1", "/dev/rl_build/vmtest1", active=True)])
    (plan,) = guest_unreachable.procedure(facts, "test1", True).preview
    assert plan.targets == ["test1"] and [s.effect.verb for s in plan.steps if isinstance(s.effect, Call)] == [
        "destroy"]
    (unasked,) = guest_unreachable.procedure(facts, "test1", False).preview
    assert unasked.empty and unasked.targets == []


@pytest.mark.parametrize(("console", "serial", "expect"), [
    ("CentOS Stream 9\nweb login: ", "", "the problem is the network"),
    ("", "", "its console is silent"),
    ("", "[  3.1] Kernel panic - not syncing: VFS: Unable to mount root fs", "the kernel panicked"),
    ("You are in emergency mode. After logging in, type", "", "emergency mode"),
    ("", "Out of memory: Killed process 812 (java)", "(OOM)"),
])
def test_suggestions_follow_what_the_console_and_logs_say(console: str, serial: str, expect: str) -> None:
    facts = host_facts(STATE, domains=[domain("test1", "/dev/rl_build/vmtest1", active=True)])
    f = guest_unreachable.state(facts, "test1")
    f.console, f.serial_tail = console, serial
    assert any(expect in t for t in guest_unreachable.suggestions(f)), guest_unreachable.suggestions(f)


def test_a_full_filesystem_in_df_is_seen() -> None:
    facts = host_facts(STATE, domains=[domain("test1", "/dev/rl_build/vmtest1")])
    f = guest_unreachable.state(facts, "test1")
    df = "Filesystem Type Size Used Avail Use% Mounted on\n/dev/loop0p1 xfs 10G 10G 0 100% /run/kvmops/mnt-a\n"
    guest_unreachable.with_report(f, ins.DiskReport("x", (), "/dev/loop0p1 (xfs)", {"ID": "rocky"}, None, (), df))
    assert any("a filesystem is full" in t for t in guest_unreachable.suggestions(f))
