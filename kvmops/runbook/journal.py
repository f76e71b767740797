"""The run journal: one folder per run with the executed notebook and ``record.json``.

``<journal>/<UTC time>-<runbook>/notebook.ipynb`` and ``record.json``: they describe the hosts
(names, disks, addresses, the commands run), so folders are made 0700 and files 0600
(:func:`private_file`). Where the journal is
(:func:`journal_dir`): an explicit folder (``--journal``), else ``$KVMOPS_JOURNAL``, else
``journal/`` at the top of a checkout (gitignored; what ``kvmops docs --from-journal`` reads),
else, for an installed kvmops, the state folder of the user: ``$XDG_STATE_HOME/kvmops/journal``
when that is set, ``/var/lib/kvmops/journal`` for root (one journal of the host, whoever
sudo'ed), ``~/.local/state/kvmops/journal`` for anyone else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kvmops.errors import NotFound
from kvmops.runbook.discover import repo_top

JOURNAL_ENV = "KVMOPS_JOURNAL"
NOTEBOOK = "notebook.ipynb"
RECORD = "record.json"


SYSTEM_STATE = Path("/var/lib/kvmops")
SYSTEM_JOURNAL = SYSTEM_STATE / "journal"


def journal_dir(folder: str | os.PathLike[str] | None = None) -> Path:
    """``folder``, else ``$KVMOPS_JOURNAL``, else the checkout's or the installed default."""
    if folder:
        return Path(folder)
    if os.environ.get(JOURNAL_ENV):
        return Path(os.environ[JOURNAL_ENV])
    top = repo_top()
    if is_checkout(top):
        return top / "journal"
    return installed_journal(os.environ, os.geteuid(), Path.home())


def is_checkout(top: Path) -> bool:
    """The package runs from a source checkout (editable install), not from site-packages."""
    return (top / "pyproject.toml").is_file() and (top / "kvmops" / "runbook").is_dir()


def installed_journal(env: Mapping[str, str], uid: int, home: Path) -> Path:
    """The journal of an installed kvmops (see the module doc)."""
    return state_dir(env, uid, home) / "journal"


def state_dir(env: Mapping[str, str], uid: int, home: Path) -> Path:
    """kvmops' folder for what it keeps (journal, notebook sessions) when installed."""
    state = env.get("XDG_STATE_HOME")
    if state and Path(state).is_absolute():
        return Path(state) / "kvmops"
    if uid == 0:
        return SYSTEM_STATE
    return home / ".local" / "state" / "kvmops"


@dataclass
class RunRecord:
    """One run of a runbook, as stored in ``record.json`` (secrets masked)."""

    id: str
    runbook: str
    status: str  # "ok", "failed" or "interrupted"
    params: dict[str, Any]
    user: str
    site: str
    host: str
    apply: bool
    started: str
    ended: str = ""
    notebook: str = ""
    record: str = ""
    failed_step: str | None = None
    failed_cell: int | None = None
    error: str | None = None
    way_out: str | None = None  # what the failed step says to do ("If this step fails: ...")
    commands: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def notebook_path(self) -> Path:
        return Path(self.notebook)

    @property
    def record_path(self) -> Path:
        return Path(self.record)

    def summary(self) -> str:
        """One line: ``ID  runbook  status  site  mode  [failed at step]``."""
        mode = "apply" if self.apply else "plan"
        failed = f"  failed at: {self.failed_step}" if self.failed_step else ""
        return f"{self.id}  {self.runbook:<22} {self.status:<11} {self.host:<24} {mode}{failed}"


def new_run_dir(journal: Path, runbook: str, now: datetime | None = None) -> tuple[str, Path]:
    """A fresh folder ``<journal>/<YYYYMMDDTHHMMSSZ>-<runbook>[-N]`` (never reused), 0700."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    private_dir(journal)
    for n in range(1, 1000):
        run_id = f"{stamp}-{runbook}" + (f"-{n}" if n > 1 else "")
        folder = journal / run_id
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue
        return run_id, folder
    raise RuntimeError(f"too many runs of {runbook} in one second in {journal}")


def private_dir(folder: Path) -> Path:
    """``folder`` (and its missing parents), the last one made 0700."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def private_file(path: Path, text: str) -> Path:
    """Write ``text`` into ``path``, readable by its owner only (0600, also when it existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def write_record(rec: RunRecord) -> None:
    private_file(Path(rec.record), json.dumps(asdict(rec), indent=2) + "\n")


RECORD_MAX = 8 * 1024 * 1024  # a record with every command of a long run stays far below
_REQUIRED_TEXT = ("id", "runbook", "status", "user", "site", "host", "started")
_TEXT = ("id", "runbook", "status", "user", "site", "host", "started", "ended", "notebook", "record")
_OPTIONAL_TEXT = ("failed_step", "error", "way_out")


def read_record(path: Path) -> RunRecord | None:
    """The record in ``path``, or None when it is damaged. Records are untrusted: one that is
    too big, not JSON, or whose fields are missing, unknown or of the wrong type is no record."""
    try:
        if not path.is_file() or path.stat().st_size > RECORD_MAX:
            return None
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return RunRecord(**data) if _well_formed(data) else None


def _well_formed(data: Any) -> bool:
    if not isinstance(data, dict) or not set(data) <= {f.name for f in fields(RunRecord)}:
        return False
    if not all(isinstance(data.get(k), str) for k in _REQUIRED_TEXT):
        return False
    return (all(isinstance(data.get(k, ""), str) for k in _TEXT)
            and all(data.get(k) is None or isinstance(data[k], str) for k in _OPTIONAL_TEXT)
            and isinstance(data.get("params"), dict) and isinstance(data.get("apply"), bool)
            and isinstance(data.get("commands", []), list)
            and (data.get("failed_cell") is None or type(data["failed_cell"]) is int))


def list_records(journal: Path, damaged: list[Path] | None = None) -> list[RunRecord]:
    """Every run in the journal, oldest first. Folders without a record are skipped; a damaged
    record is left out (and added to ``damaged`` when given), never a failure of the reader."""
    if not journal.is_dir():
        return []
    out = []
    for folder in sorted(journal.iterdir()):
        path = folder / RECORD
        if not path.is_file():
            continue
        rec = read_record(path)
        if rec is not None:
            out.append(rec)
        elif damaged is not None:
            damaged.append(path)
    return out


def find_record(journal: Path, run_id: str) -> RunRecord:
    """The run ``run_id`` (a unique prefix is enough), or the latest run of a runbook by name."""
    runs = list_records(journal)
    exact = [r for r in runs if r.id == run_id]
    match = exact or [r for r in runs if r.id.startswith(run_id)] or [r for r in runs if r.runbook == run_id][-1:]
    if len(match) == 1:
        return match[0]
    if not match:
        raise NotFound(f"no run {run_id!r} in {journal} (see `kvmops journal`)")
    raise NotFound(f"{run_id!r} matches {len(match)} runs: give more of the id")
