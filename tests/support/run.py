"""Run a plan in a test the way runbooks and the CLI do: through the one executor."""

from __future__ import annotations

from collections.abc import Callable

from kvmops.executor import Executor, confirmed
from kvmops.host import Host
from kvmops.hostfacts import HostFacts
from kvmops.plan import Plan


def run_plan(host: Host, plan: Plan, confirm: str | None = None,
             progress: Callable[[str], None] | None = None, facts: HostFacts | None = None) -> list[str]:
    """``plan`` executed on ``host`` (applied when the host applies), ``confirm`` confirmed;
    judged by the safety gate against ``facts`` (the ones it was planned from), else the host's
    facts read now."""
    return Executor(host, progress or (lambda _line: None)).execute(plan, confirmed(confirm), facts=facts)
