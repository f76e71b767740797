"""Runbooks run in this process, cell by cell, against one host that outlives the run.

``kvmops run`` executes a runbook in a fresh kernel that opens its own host. For fault
injection with libvirt's test driver that is not enough: each new connection to a
``test:///<file>`` URI starts from the file again, so a re-run would not see what the failed
run did. Here the runbook's own code cells run with ``exec`` in one namespace (its parameters
cell first, then the given parameters, as papermill injects them), ``nb.open_host`` hands out
the test's host, and ``host.close()`` leaves it open for the next run. The step a failure
belongs to is the last ``==> step`` line printed, as ``kvmops run`` names it.

Faults are set exactly as for a kernel: ``$KVMOPS_FAULT_AT``/``MATCH``/``WHEN`` (read by the
host's runner and the executor), counting restarted for each run.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from kvmops import notebook
from kvmops.host import Host
from kvmops.runbook.discover import find_runbook, parameters_cell, read_notebook
from kvmops.runbook.steps import STEP_MARK
from kvmops.runners import faults
from tests.support.faults import fault_env


class KeptHost(Host):
    """A host whose ``close()`` keeps its libvirt connection (and with it the test driver's
    state) for the next run; :meth:`shut` closes it for good."""

    def close(self) -> None:
        pass

    def shut(self) -> None:
        Host.close(self)


@dataclass
class CellRun:
    """One run of a runbook: whether it got through, where it stopped, what it printed."""

    ok: bool
    step: str
    error: BaseException | None
    output: str
    steps: list[str] = field(default_factory=list)


class _Tee(io.StringIO):
    """Captures stdout and keeps the last step announced."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[str] = []

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.startswith(STEP_MARK):
                self.steps.append(line[len(STEP_MARK):].strip())
        return super().write(text)

    @property
    def step(self) -> str:
        return self.steps[-1] if self.steps else ""


_current: list[_Tee] = []


def current_step() -> str:
    """The step the runbook running now has announced last ("" outside a run)."""
    return _current[-1].step if _current else ""


def run_runbook(name: str, params: dict[str, Any], host: Host, monkeypatch: pytest.MonkeyPatch, *,
                confirm: str = "", fault: int | None = None, match: str = "", when: str = "before",
                peers: Mapping[str, Host] | None = None) -> CellRun:
    """Run runbook ``name`` with ``apply=True`` on ``host`` (and ``peers``: the hosts of other
    sites it opens, by the site given); a fault when ``fault`` is given."""
    nb = read_notebook(find_runbook(name))
    cells = [c for c in nb.cells if c.cell_type == "code"]
    first = parameters_cell(nb, name)
    start = next(i for i, c in enumerate(cells) if c is first)
    ns: dict[str, Any] = {"__name__": f"runbook_{name.replace('-', '_')}"}
    tee = _Tee()
    with monkeypatch.context() as m:
        m.setattr(notebook, "open_host", lambda site="", apply=False: (peers or {}).get(site, host))
        m.setenv("KVMOPS_RUN_ID", f"inproc-{name}")  # nb.secret: a run, nothing asked interactively
        for key in (faults.FAULT_AT_ENV, faults.FAULT_MATCH_ENV, faults.FAULT_WHEN_ENV):
            m.delenv(key, raising=False)
        for key, value in fault_env(fault, match, when).items():
            m.setenv(key, value)
        faults.reset()
        _current.append(tee)
        try:
            with contextlib.redirect_stdout(tee):
                exec(compile(first.source, f"{name}:parameters", "exec"), ns)
                ns.update({"site": "", "apply": True, "confirm": confirm, **params})
                for i, cell in enumerate(cells[start + 1:], start + 1):
                    exec(compile(cell.source, f"{name}:cell{i}", "exec"), ns)
        except Exception as exc:
            return CellRun(False, tee.step, exc, tee.getvalue(), tee.steps)
        finally:
            _current.pop()
            faults.reset()
    return CellRun(True, tee.step, None, tee.getvalue(), tee.steps)


@contextlib.contextmanager
def kept_host(make: Callable[[], KeptHost]) -> Iterator[KeptHost]:
    host = make()
    try:
        yield host
    finally:
        host.shut()
