"""Issue 20: every path that starts a guest is refused by the safety gate when the host holds
one of its disks (an LV open: mapped with ``kpartx -a`` or mounted, as the guide's 4.3 leaves
it), whoever planned the start: the CLI, guest-lifecycle, host-recovery, lv-backup's restart,
lv-backup-restore's start, guest-move's start on the target and its restart on the source.
The refusal names the mapping and the way out, and nothing runs."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from kvmops.cli.main import main
from kvmops.executor import Executor, Refused
from kvmops.guests import lifecycle
from kvmops.guests.history import PROC_STAT
from kvmops.host import connect
from kvmops.hostfacts import HostFacts
from kvmops.lvm.facts import LV, VG
from kvmops.lvm.state import LvmState
from kvmops.plan import Plan
from kvmops.procedures import guest_lifecycle, host_recovery, lv_backup, lv_backup_restore, move_stages
from kvmops.procedures.move_facts import Both
from kvmops.site import load_site, resolve_site
from kvmops.transfer.place import PlaceFacts, parse_place
from tests.support.facts import domain, host_facts

SITE = load_site()
GiB = 1 << 30
OPEN = "-wi-ao----"  # kpartx -a (or a mount) holds it open; no guest runs on it
CLOSED = "-wi-a-----"


def facts(attr: str, *, active: bool = False, autostart: bool = True) -> HostFacts:
    lvs = (LV("vmweb1", "rl_build", attr, 10 * GiB, "", None, None),)
    lvm = LvmState(VG("rl_build", 100 * GiB, 50 * GiB, 4 << 20, 1), lvs)
    return host_facts(lvm, domains=[domain("web1", "/dev/rl_build/vmweb1", active=active, autostart=autostart)],
                      guest_logs={"web1": None}, files={PROC_STAT: "btime 1764489600\n"})


def judged(plan: Plan, f: HostFacts) -> None:
    """``plan`` through the executor (plan mode: nothing could run anyway)."""
    host = connect(SITE)
    try:
        Executor(host, lambda _l: None).execute(plan, facts=f)
    finally:
        host.close()


PATHS: dict[str, Callable[[HostFacts], Plan]] = {
    "guests.lifecycle.start": lambda f: lifecycle.start(f, "web1"),
    "guest-lifecycle": lambda f: guest_lifecycle.procedure(f, "web1", "start").preview[0],
    "host-recovery": lambda f: host_recovery.procedure(f, ()).preview[0],
    "lv-backup (start again)": lambda f: lv_backup._start_again(
        lv_backup.Ctx(f, PlaceFacts(parse_place("/srv/backups"), True)), "web1", True),
    "lv-backup-restore (start)": lambda f: lv_backup_restore._start(
        lv_backup_restore.Ctx(f, PlaceFacts(parse_place("/srv/backups"), True)), "web1", 60),
    "guest-move (start on the target)": lambda f: move_stages.start(Both(_empty(), f), "web1", 60),
    "guest-move (restart on the source)": lambda f: move_stages.restart(Both(f, _empty()), "web1", True),
}


def _empty() -> HostFacts:
    return host_facts(LvmState(VG("rl_build", 100 * GiB, 100 * GiB, 4 << 20, 0), ()))


@pytest.mark.parametrize("path", list(PATHS))
def test_every_start_path_is_refused_while_the_host_holds_the_disk(path: str) -> None:
    plan = PATHS[path](facts(OPEN))
    assert any(s.call is not None and s.call.verb == "start" for s in plan.steps), plan.render()
    with pytest.raises(Refused) as err:
        judged(plan, facts(OPEN))
    text = str(err.value)
    assert "[rule start-free]" in text and "open on the host" in text and "kpartx -d /dev/rl_build/vmweb1" in text
    judged(PATHS[path](facts(CLOSED)), facts(CLOSED))  # the same path with the disk free: accepted


def test_a_start_is_refused_when_another_running_guest_has_the_disk() -> None:
    f = facts(CLOSED)
    f = replace(f, domains=(*f.domains, domain("web2", "/dev/rl_build/vmweb1", active=True)))
    with pytest.raises(Refused, match=r"disk of the running guest web2.*two guests must never share a disk"):
        judged(lifecycle.start(f, "web1"), f)


def test_the_cli_refuses_to_start_a_guest_whose_disk_is_mapped(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    """The issue's case: a copy of the demo site whose recorded ``lvs`` shows vminflux open
    (``owi-aos---``) while guest influx is shut off."""
    demo = resolve_site("demo")
    shutil.copytree(demo.parent / "demo", tmp_path / "demo")
    shutil.copy(demo, tmp_path / "demo.toml")
    facts_file = tmp_path / "demo" / "facts.toml"
    text = facts_file.read_text()
    assert '"lv_name":"vminflux", "vg_name":"rl_build", "lv_attr":"owi-a-s---"' in text
    facts_file.write_text(text.replace('"lv_name":"vminflux", "vg_name":"rl_build", "lv_attr":"owi-a-s---"',
                                       '"lv_name":"vminflux", "vg_name":"rl_build", "lv_attr":"owi-aos---"'))
    code = main(["guest", "start", "influx", "--site", str(tmp_path / "demo.toml")])
    out, err = capsys.readouterr()
    assert code != 0 and "planned" not in out and "(plan only" not in out  # the plan is shown, then refused
    assert "refused by the safety gate" in err and "kpartx -d /dev/rl_build/vminflux" in err
