"""The disk runbooks' procedures as functions over facts: image-tweak's tweaks and checks,
guest-resize's phases and verdict, guest-inspect's reading of logs and accounts,
guest-unreachable's findings and suggestions."""

from __future__ import annotations

import pytest

from kvmops.cmd import Cmd, Result
from kvmops.facts import inspect as inspect_facts
from kvmops.images import grow
from kvmops.images import inspect as ins
from kvmops.images import tweaks as tw
from kvmops.images.mount import Filesystem, RootFs
from kvmops.images.partitions import Partition
from kvmops.lvm.facts import LV, VG
from kvmops.lvm.state import LvmState
from kvmops.plan import Plan
from kvmops.procedures import guest_inspect, guest_resize, guest_unreachable, image_tweak
from kvmops.procedures.base import PreconditionFailed
from kvmops.runners.base import LineSink
from tests.support.facts import domain, host_facts
from tests.support.fakeimage import ROOT, FakeImage

GiB = 1 << 30
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHc+ZQ5bnkc8Y9Uvs6yDuB1z2oQ1pL0U8kM9gpqCYQ2n admin@example"
STATE = LvmState(VG("rl_build", 100 * GiB, 50 * GiB, 4 << 20, 2),
                 (LV("vmtest1", "rl_build", "-wi-a-----", 10 * GiB, "", None, None),
                  LV("vmweb", "rl_build", "-wi-------", 10 * GiB, "", None, None)))


# ----------------------------------------------------------------- image-tweak
def test_the_login_user_comes_first_when_a_tweak_needs_it_and_relabel_last() -> None:
    todo = image_tweak.tweaks("centos", password="pw-123456", keys=[KEY, " "], sudo=True, console=True)
    kinds = [type(t).__name__ for t in todo]
    assert kinds == ["LoginUser", "SetPassword", "AuthorizedKeys", "Sudoers", "SerialGetty", "GrubSerial",
                     "SelinuxRelabel"]
    only_console = image_tweak.tweaks("centos", console=True)
    assert not any(isinstance(t, tw.LoginUser) for t in only_console)  # nothing for the login user: no user made
    with pytest.raises(PreconditionFailed, match="nothing to do"):
        image_tweak.tweaks("centos")
    assert all("$6$" not in image_tweak.describe(t) for t in todo)


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
    assert image_tweak.verify(empty).ok
    pending = tw.TweakReport(plans=[Plan("a").noop("already so"), Plan("b").add("x", Cmd(("true",)))])
    verdict = image_tweak.verify(pending)
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


def test_resize_verdict_is_the_sizes_read_back() -> None:
    grown = host_facts(LvmState(STATE.vg, (LV("vmtest1", "rl_build", "-wi-a-----", 20 * GiB, "", None, None),)))
    whole = 20 * GiB // 512 - 2048
    assert guest_resize.verify(grown, "test1", 20 * GiB, _disk(20 * GiB, whole, whole * 512)).ok
    half = guest_resize.verify(grown, "test1", 20 * GiB, _disk(20 * GiB, whole, whole * 256))
    assert not half.ok and "FAILED: the xfs filesystem is 10.00 GiB" in half.render()
    short = guest_resize.verify(grown, "test1", 20 * GiB, _disk(20 * GiB, whole // 2, whole * 256))
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
