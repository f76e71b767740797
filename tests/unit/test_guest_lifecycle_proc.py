"""guest-lifecycle as a procedure: each action planned from facts, run through the one
executor, and verified by libvirt's state read afresh (libvirt's test driver)."""

from __future__ import annotations

import pytest

from kvmops.errors import InvalidInput, NotFound
from kvmops.executor import Executor, confirmed
from kvmops.facts import read_facts
from kvmops.procedures import guest_lifecycle as gl
from tests.unit.test_guest_testbed import Bed, bed

__all__ = ["bed"]


@pytest.mark.parametrize(("guest", "action", "confirm"), [
    ("db1", "start", ""), ("web1", "shutdown", ""), ("web1", "destroy", "web1"),
    ("db1", "autostart", ""), ("db1", "noautostart", ""), ("web1", "status", ""),
])
def test_each_action_runs_and_is_verified_afresh(bed: Bed, guest: str, action: str, confirm: str) -> None:
    host = bed.host()
    facts = read_facts(host)
    gl.check(facts, guest, action)
    Executor(host, lambda _l: None).run_procedure(gl.procedure(facts, guest, action, timeout=5), confirmed(confirm))
    verdict = gl.verify(read_facts(host), guest, action)
    assert verdict.ok, verdict.render()


def test_verify_says_when_the_state_is_not_what_was_wanted(bed: Bed) -> None:
    facts = read_facts(bed.host())
    assert not gl.verify(facts, "db1", "start").ok  # nothing ran: db1 is still shut off
    assert gl.verify(facts, "db1", "start").render() == "FAILED: guest db1 runs (shut off)"
    assert not gl.verify(facts, "web1", "shutdown").ok


def test_unknown_action_or_guest(bed: Bed) -> None:
    facts = read_facts(bed.host())
    with pytest.raises(InvalidInput, match="use one of status, start, shutdown"):
        gl.check(facts, "web1", "reboot")
    with pytest.raises(NotFound, match="no guest 'nosuch'"):
        gl.check(facts, "nosuch", "start")


def test_reads_say_what_to_do_where_the_host_cannot_answer(bed: Bed) -> None:
    host = bed.host()
    lines = gl.read(host, "web1", "console", 0.1, lambda _l: None)
    assert "cannot open consoles" in lines[0] and lines[1].startswith("virsh console web1")
    assert gl.read(host, "web1", "guestinfo", 0, lambda _l: None)[0].startswith("no guestinfo:")
    assert gl.read(host, "web1", "status", 0, lambda _l: None) == []
