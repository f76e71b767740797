"""Run a plan in a test the way runbooks and the CLI do: through the one executor."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from kvmops.executor import Executor, confirmed
from kvmops.host import Host
from kvmops.hostfacts import HostFacts
from kvmops.plan import Plan
from kvmops.runbook.execute import run_runbook
from kvmops.runbook.journal import RunRecord


def run_plan(host: Host, plan: Plan, confirm: str | None = None,
             progress: Callable[[str], None] | None = None, facts: HostFacts | None = None) -> list[str]:
    """``plan`` executed on ``host`` (applied when the host applies), ``confirm`` confirmed;
    judged by the safety gate against ``facts`` (the ones it was planned from), else the host's
    facts read now."""
    return Executor(host, progress or (lambda _line: None)).execute(plan, confirmed(confirm), facts=facts)


def run_timed(site: str, name: str, times: dict[str, float], key: str, confirm: str | None = None, *,
              ok: bool = True, where: str = "", **params: object) -> RunRecord:
    """``kvmops run NAME --site SITE --apply [--confirm X] -p ...`` as a lab test runs it: timed
    into ``times[key]``, its progress printed, and asserted to succeed (``ok``) or to fail
    (``where``: the host it ran on, for the message)."""
    t0 = time.monotonic()
    rec = run_runbook(name, dict(params), site=site, apply=True, confirm=confirm, progress=print)
    times[key] = time.monotonic() - t0
    print(f"{rec.id}: {rec.status} in {times[key]:.1f}s")
    if ok:
        assert rec.ok, f"{name}{where} failed at {rec.failed_step!r}: {rec.error} (journal {rec.id})"
    else:
        assert not rec.ok, f"{name}{where} was expected to fail"
    return rec


def notebook_text(rec: RunRecord) -> str:
    """Every stream output of the run's executed notebook (the journal's copy)."""
    nb = json.loads(rec.notebook_path.read_text())
    return "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
