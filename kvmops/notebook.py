"""The display facade the runbook cells call; the same under ``kvmops run`` and in Jupyter.

    host = nb.open_host(site, apply)              # plan-only unless apply is True
    facts = nb.read(host)                         # the host, read once
    proc = lv.snapshot(facts, guest, size, when)  # what to do: kvmops.procedures
    nb.show_procedure(proc)                       # the exact commands, before anything runs
    with nb.step("Snapshot the disk", if_fails="... what to do ..."):
        nb.run_procedure(host, proc, confirm)     # the one executor; changes only with apply
    nb.verify(host, lambda f: lv.verify_snapshot(f, guest, when))

The logic lives in :mod:`kvmops.procedures`; this module only shows plans, steps, checks,
tables and verdicts, and asks for secrets. A runbook's cells call it and a procedure, with no
branch or loop of their own: the executor takes the run's locks and judges every plan, so a
cell takes no lock and checks no safety rule itself.

Nothing here assumes the CLI: an empty ``site`` is ``$KVMOPS_SITE`` or the demo site, and a
secret not handed over by ``kvmops run`` is asked for interactively in Jupyter.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from kvmops.executor import Executor, Procedure, confirmed
from kvmops.plan import Plan
from kvmops.procedures.base import PreconditionFailed, Verdict
from kvmops.procedures.stages import Ran, Staged
from kvmops.progress import printer
from kvmops.runbook.secrets import read_secrets
from kvmops.runbook.steps import FAILED_MARK, STEP_MARK, WAY_OUT_MARK
from kvmops.site import load_site, resolve_site

if TYPE_CHECKING:
    from kvmops.host import Host
    from kvmops.hostfacts import HostFacts, Wanted


def _display(markdown: str, plain: str) -> None:
    """Markdown in a notebook (plain text in papermill's log and a terminal)."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython is a dependency of ipykernel
        print(plain)
        return
    if get_ipython() is None:
        print(plain)
        return
    display({"text/markdown": markdown, "text/plain": plain}, raw=True)  # type: ignore[no-untyped-call]


def open_host(site: str = "", apply: bool = False) -> Host:
    """The Host of a runbook's ``site``/``apply`` parameters; says which host and mode."""
    from kvmops.host import connect

    path = resolve_site(site)
    the_site = load_site(path)
    host = connect(the_site, apply=apply)
    mode = "APPLY: changes are executed" if host.apply else "plan only: nothing is changed"
    kind = " (recorded facts, plan-only)" if the_site.replay else ""
    print(f"host {the_site.name}{kind} from {path}; {mode}")
    return host


def show_plan(plan: Plan) -> None:
    """The plan as a code block: the exact commands with the reason for each."""
    text = plan.render()
    _display("```sh\n" + text + "\n```", text)


def execute(host: Host, plan: Plan, *confirm: str, facts: HostFacts | None = None) -> list[str]:
    """Run a plan (shown before) through the one executor: judged by its safety gate (against
    ``facts``, the ones it was planned from, else facts read now), changes only with apply,
    destructive steps only when their target is among ``confirm`` (checked before the first
    step). Prints one line per step."""
    return _report(host, [plan], Executor(host, printer()).execute(plan, confirmed(*confirm), facts=facts))


def execute_all(host: Host, plans: list[Plan], *confirm: str) -> list[str]:
    """Several plans of one run: every confirmation checked before the first change."""
    from kvmops.executor import execute_all as run_all

    return _report(host, plans, run_all(host, plans, confirmed(*confirm), printer()))


def show_procedure(proc: Procedure) -> None:
    """Every phase's plan, as planned from the facts read at the start."""
    for plan in proc.preview:
        show_plan(plan)


def run_procedure(host: Host, proc: Procedure, *confirm: str) -> list[str]:
    """Run a procedure (shown before): fresh facts before each phase, confirmations first."""
    return _report(host, proc.preview, Executor(host, printer()).run_procedure(proc, confirmed(*confirm)))


def show_staged(staged: Staged[Any]) -> None:
    """Every stage's plan with the host it runs on, as planned from the facts read at the start."""
    _display(staged.markdown(), staged.render())


def show_ran(host: Host, staged: Staged[Any], ran: Ran) -> Ran:
    """What a run of stages did (its progress shown as it came: :func:`progress`): one line
    per step, and the "plan only" note when nothing was changed."""
    _report(host, staged.preview, ran.lines)
    return ran


def progress(line: str) -> None:
    """Long work's progress (a copy's percentage), indented under its step."""
    print(f"    {line}", flush=True)


def _report(host: Host, plans: list[Plan], lines: list[str]) -> list[str]:
    show_lines(lines)
    if not host.apply and not all(p.empty for p in plans):
        print("(plan only: nothing was changed; run with apply=True to execute it)")
    return lines


def show_lines(lines: Iterable[str]) -> None:
    """Lines of text, one per line (nothing for none)."""
    for line in lines:
        print(line)


def show_plans(plans: Iterable[Plan]) -> None:
    """Plans, each as a code block (nothing for none)."""
    for plan in plans:
        show_plan(plan)


def table(rows: Sequence[Sequence[object]], headers: Sequence[str]) -> None:
    """A table: markdown in a notebook, aligned text elsewhere."""
    cells = [[str(c) for c in r] for r in rows]
    md = "| " + " | ".join(headers) + " |\n|" + "---|" * len(headers) + "\n"
    md += "".join("| " + " | ".join(r) + " |\n" for r in cells)
    all_rows = [list(headers), *cells]
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(headers))]
    plain = "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in all_rows)
    _display(md if cells else md + "| (none) |\n", plain if cells else plain + "\n(none)")


def note(text: str) -> None:
    """A remark in the output (markdown in a notebook)."""
    _display(text, text)


@contextmanager
def step(title: str, if_fails: str = "") -> Iterator[None]:
    """Announce a step (``==> title``); if it raises, print what to do, then re-raise.

    ``kvmops run`` names the last announced step when a cell fails.
    """
    print(f"{STEP_MARK}{title}", flush=True)
    try:
        yield
    except BaseException:
        if if_fails:
            print(f"{FAILED_MARK}{title}\n{WAY_OUT_MARK}{if_fails}", flush=True)
        raise


def check(condition: object, message: str) -> None:
    """A precondition: raise :class:`PreconditionFailed` with ``message`` when false."""
    if not condition:
        raise PreconditionFailed(message)


def secret(name: str, value: str = "") -> str:
    """A secret parameter's value: typed into the parameters cell (Jupyter), handed over by
    ``kvmops run`` in a private file, or asked for interactively; "" when none is given."""
    if value:
        return value
    handed = read_secrets()
    if name in handed:
        return handed[name]
    if os.environ.get("KVMOPS_RUN_ID"):
        return ""  # a kvmops run without this secret: the runbook decides what that means
    try:
        return getpass.getpass(f"{name} (leave empty to skip): ")
    except (EOFError, OSError):
        return ""


def read(host: Host, wanted: Wanted | None = None) -> HostFacts:
    """The host's facts, read once (LVM, guests, limits, and what ``wanted`` names)."""
    from kvmops.facts import read_facts

    facts = read_facts(host, wanted)
    running = sum(1 for d in facts.domains if d.active)
    print(f"facts of {host.name} read at {facts.read_at}: {len(facts.lvm.lvs)} LVs in VG {facts.lvm.vg.name}, "
          f"{len(facts.domains)} guests ({running} running)")
    return facts


def verify(host: Host, verdict: Callable[[HostFacts], Verdict], wanted: Wanted | None = None) -> Verdict | None:
    """After an applied run: read the host again and show the verdict; raise when it fails.
    In plan mode nothing was changed, so there is nothing to verify (said so)."""
    from kvmops.facts import read_facts

    return verify_with(host, lambda: verdict(read_facts(host, wanted)))


def verify_with(host: Host, verdict: Callable[[], Verdict]) -> Verdict | None:
    """After an applied run: ``verdict()`` reads what it judges (one host, several, a backup
    place, a disk) and is shown; raise when it fails. Plan mode: nothing to verify (said so)."""
    if not host.apply:
        print("plan only: nothing was changed, so nothing is verified")
        return None
    return judge(verdict())


def judge(verdict: Verdict) -> Verdict:
    """Show a verdict; raise :class:`PreconditionFailed` naming what failed when it is not ok."""
    print(verdict.render())
    if not verdict.ok:
        raise PreconditionFailed("verification FAILED: " + "; ".join(ln for ln in verdict.lines
                                                                     if ln.startswith("FAILED")))
    return verdict
