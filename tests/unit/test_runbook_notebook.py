"""The helpers runbook cells call (kvmops.notebook), outside a kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvmops import notebook as nb
from kvmops.cmd import Cmd, Result, read
from kvmops.guests import hostfile
from kvmops.host import connect
from kvmops.plan import Plan
from kvmops.runners.base import LineSink, Runner
from kvmops.site import load_site, resolve_site
from tests.support.facts import empty_facts


class OneRead(Runner):
    """Answers ``cat /etc/before`` only: the check after the change must not run."""

    host = "t"

    def _execute(self, cmd: Cmd, on_line: LineSink | None) -> Result:
        assert cmd.argv == ("cat", "/etc/before"), cmd.argv
        return Result(cmd, self.host, 0, "x\n", "", 0.0)


def test_plan_mode_runs_fact_reads_before_the_change_only(capsys: pytest.CaptureFixture[str]) -> None:
    host = connect(load_site(resolve_site("demo")))
    host.runner.inner = OneRead()  # type: ignore[attr-defined]
    plan = (Plan("t").add("read first", read("cat", "/etc/before"))
            .add("change", hostfile.write_cmd("/root/kvm/x", "x"))
            .add("check after", read("cat", "/etc/x")))
    lines = nb.execute(host, plan, facts=empty_facts(host.site))
    assert lines == ["1. done: read first", "2. planned: change", "3. planned check (after the change): check after"]
    assert [(r.command, r.executed) for r in host.runner.records] == [("cat /etc/before", True),
                                                                      ("install -D -m 0600 /dev/stdin /root/kvm/x "
                                                                       "<<< x", False)]
    assert "plan only: nothing was changed" in capsys.readouterr().out


def test_step_prints_its_title_and_guidance_on_failure(capsys: pytest.CaptureFixture[str]) -> None:
    with nb.step("Quiet step", if_fails="never shown"):
        pass
    with pytest.raises(RuntimeError), nb.step("Loud step", if_fails="do this instead"):
        raise RuntimeError("boom")
    out = capsys.readouterr().out
    assert out.startswith("==> Quiet step\n==> Loud step\n")
    assert "never shown" not in out and "If this step fails: do this instead" in out


def test_check_and_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(nb.PreconditionFailed, match="the reason"):
        nb.check(False, "the reason")
    nb.check(True, "not raised")
    assert nb.secret("pw", "typed") == "typed"
    f = tmp_path / "s.json"
    f.write_text('{"pw": "handed"}')
    monkeypatch.setenv("KVMOPS_SECRETS_FILE", str(f))
    assert nb.secret("pw") == "handed"
    monkeypatch.setenv("KVMOPS_RUN_ID", "x")
    assert nb.secret("other") == ""  # a run without it: no prompt


def test_table_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    nb.table([("a", 1), ("bbb", 22)], ["name", "n"])
    assert capsys.readouterr().out == "name  n\na     1\nbbb   22\n"
