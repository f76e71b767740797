"""Helpers the runbook cells call; they work the same under ``kvmops run`` and in Jupyter.

    host = nb.open_host(site, apply)           # plan-only unless apply is True
    with nb.step("Snapshot the disk", if_fails="... what to do ..."):
        nb.run_plan(host, plan, confirm)       # shows the plan, applies it only with apply

Nothing here assumes the CLI: an empty ``site`` is ``$KVMOPS_SITE`` or the demo site, and a
secret not handed over by ``kvmops run`` is asked for interactively in Jupyter.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from kvmops.errors import KvmopsError
from kvmops.plan import Plan
from kvmops.runbook.engine import STEP_MARK
from kvmops.runbook.secrets import read_secrets
from kvmops.runbook.sites import resolve_site
from kvmops.site import load_site

if TYPE_CHECKING:
    from kvmops.host import Host
    from kvmops.images.inspect import DiskReport
    from kvmops.lvm.state import LvmState


class PreconditionFailed(KvmopsError):
    """A runbook's precondition does not hold; nothing was changed."""


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


def run_plan(host: Host, plan: Plan, confirm: str = "") -> list[str]:
    """Show the plan, then apply it (see :func:`apply_plan`)."""
    show_plan(plan)
    return apply_plan(host, plan, confirm)


def apply_plan(host: Host, plan: Plan, confirm: str = "") -> list[str]:
    """Run a plan: mutating steps only with apply, destructive ones only with ``confirm``
    equal to their target (checked before the first step). Prints one line per step.

    In plan mode, read-only steps AFTER the first change are checks of that change: they are
    listed, not run (what they would read does not exist yet).
    """
    if host.apply:
        lines = plan.apply(host, confirm=confirm or None, progress=lambda s: print(f"    {s}", flush=True))
    else:
        lines = _walk_plan(host, plan)
    for line in lines:
        print(line)
    if not host.apply and not plan.empty:
        print("(plan only: nothing was changed; run with apply=True to execute it)")
    return lines


def _walk_plan(host: Host, plan: Plan) -> list[str]:
    lines: list[str] = []
    changed = False
    for i, step in enumerate(plan.steps, 1):
        if step.noop:
            lines.append(f"{i}. ok (nothing to do): {step.reason}")
        elif step.mutates:
            if step.cmd is not None:
                host.runner.run(step.cmd)  # the plan runner records it, never executes it
            lines.append(f"{i}. planned: {step.reason}")
            changed = True
        elif changed:
            lines.append(f"{i}. planned check (after the change): {step.reason}")
        else:
            Plan(plan.title, [step]).apply(host)  # a fact read before any change: it runs
            lines.append(f"{i}. done: {step.reason}")
    return lines


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
            print(f"STEP FAILED: {title}\nIf this step fails: {if_fails}", flush=True)
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


def lvm_state(host: Host) -> LvmState:
    """``vgs`` and ``lvs`` of the site's VG (read-only, also in plan mode)."""
    from kvmops.lvm.state import read_state

    return read_state(host.runner, host.site.vg)


def busy(host: Host) -> frozenset[str]:
    """``VG/LV`` paths of the disks of running guests (the storage guards refuse them)."""
    from kvmops.guests.inventory import busy_disks

    return busy_disks(host)


@contextmanager
def locked(host: Host, guest: str, what: str, wait: float = 0.0, *, reading: bool = False) -> Iterator[None]:
    """Hold the guest's lock on the host while changing it (only when applying: a plan
    changes nothing and may run on a plan-only site).

    ``reading=True``: also in plan mode, for work that only reads but must not overlap a
    change (a disk mounted read-only while another run writes to it); not on replay sites.
    """
    if not (host.apply or (reading and not host.site.replay)):
        yield
        return
    from kvmops.lock import guest_lock

    with guest_lock(host.runner, guest, what, wait=wait):
        yield


def users_of_file(host: Host, path: str) -> list[str]:
    """Running guests that have the image file ``path`` as a disk (one libvirt listing)."""
    from kvmops.guests.xml import read_domain

    want = os.path.normpath(path)
    return [d.name for d in host.virt.domains()
            if d.active and any(os.path.normpath(s) == want for s in read_domain(d.xml).disk_sources)]


def inspect_disk(host: Host, *, lv: str | None = None, image: str | None = None,
                 busy: Collection[str] = (), lines: int = 30) -> DiskReport | None:
    """Look inside a guest disk (``lv="VG/LV"``) or an image file, read-only; always unmapped.

    Shows the commands first. On a replay site (recorded facts, such as the demo) nothing can
    be mapped or mounted: the plan is shown, the reading is skipped (and said so), None returned.
    """
    from kvmops.images import inspect
    from kvmops.images.disk import open_disk
    from kvmops.images.mount import image_root

    vg, _, name = (lv or "").partition("/")
    show_plan(inspect.preview(vg=vg or None, lv=name or None, image=image, lines=lines))
    if host.site.replay:
        note(f"SKIPPED: site {host.site.name} replays recorded outputs; a disk cannot be mapped or "
             "mounted there, so nothing above was run and nothing was read. Run this against the "
             "real host (any mode: every command only reads).")
        return None
    with open_disk(host.runner, image=image, lv=lv, busy=busy) as disk, image_root(host.runner, disk) as root:
        print(f"mounted {root.device} ({root.fstype}) read-only at {root.mountpoint}", flush=True)
        report = inspect.read_report(host.runner, disk, root, lines)
    print(inspect.render(report))
    return report


def guest_of_lv(host: Host, lv: str, origin: str | None = None) -> str:
    """The guest whose lock guards an LV: ``vmtest1`` -> ``test1``; a snapshot
    (``vmtest1-20241006T1518Z``, or any LV with ``origin``) -> its origin's guest."""
    from kvmops import names

    base = origin or names.SNAPSHOT_SUFFIX.sub("", lv)
    prefix = host.site.lv_prefix
    return names.guest_name(base[len(prefix):] if host.site.is_guest_lv(base) else base)
