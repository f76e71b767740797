"""Running a runbook: validate, execute with papermill from the text file in memory, journal.

Everything a person can get wrong is refused before a kernel starts and before anything is
written: an unknown runbook or parameter, a value of the wrong type or range, a bad name or
size, a missing site file, ``apply`` on a plan-only site. Then the runbook executes in the
``kvmops`` kernel (:mod:`kvmops.runbook.kernel`); the executed notebook (also after a failure:
papermill keeps it) and ``record.json`` go into the journal.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kvmops.cmd import MASK
from kvmops.errors import InvalidInput
from kvmops.runbook import nbstack, steps
from kvmops.runbook.checks import check_against_site, check_values
from kvmops.runbook.discover import KERNEL, RunbookInfo, find_runbook, info_of, read_notebook
from kvmops.runbook.journal import NOTEBOOK, RECORD, RunRecord, journal_dir, new_run_dir, private_file, write_record
from kvmops.runbook.params import Value, bind, coerce
from kvmops.runbook.secrets import MIN_SCRUB, SECRETS_ENV, Scrubber, scrub_notebook, secrets_file, without_secrets
from kvmops.runners.base import COMMAND_LOG_ENV
from kvmops.runners.recorded import PlanOnly
from kvmops.site import Site, load_site, resolve_site

RUN_ID_ENV = "KVMOPS_RUN_ID"
Progress = Callable[[str], None]


def run_runbook(
    name: str,
    params: dict[str, object],
    *,
    site: str | None,
    apply: bool,
    confirm: str | None = None,
    journal_dir: Path | None = None,
    progress: Progress | None = None,
    folder: Path | None = None,
) -> RunRecord:
    """Execute runbook ``name`` with ``params`` and return its record.

    ``site``/``apply``/``confirm`` fill the parameters every runbook has. Bad input raises
    :class:`InvalidInput` (or ConfigError/NotFound/PlanOnly) before anything starts; a
    failing cell gives a record with ``status == "failed"`` naming the step.
    """
    path = find_runbook(name, folder)
    nb = read_notebook(path)
    info = info_of(path, nb)
    values, the_site, site_path = prepare(info, params, site=site, apply=apply, confirm=confirm)
    secrets = {p.name: str(values[p.name]) for p in info.parameters if p.secret and values[p.name]}
    public = {k: v for k, v in values.items() if k not in info.secrets}
    public["site"] = str(site_path)
    return _execute(info, nb, public, secrets, the_site, _journal(journal_dir), progress)


def prepare(info: RunbookInfo, params: dict[str, object], *, site: str | None, apply: bool,
            confirm: str | None) -> tuple[dict[str, Value], Site, Path]:
    """Bind and check every parameter and load the site: all before a kernel starts."""
    for key in ("site", "apply", "confirm"):
        if info.param(key) is None:
            raise InvalidInput(f"runbook {info.name} does not declare the parameter {key} (a bug in {info.path})")
    given = dict(params)
    for key, value in (("site", site), ("apply", apply), ("confirm", confirm)):
        if value is None:
            continue
        declared = info.param(key)
        if key in given and declared is not None and coerce(declared, given[key]) != value:
            raise InvalidInput(f"parameter {key} is given twice ({given[key]!r} and {value!r})")
        given[key] = value
    values = bind(info.parameters, given, info.name)
    check_values(info.parameters, values)
    for p in info.parameters:
        if p.secret and values[p.name] and len(str(values[p.name])) < MIN_SCRUB:
            raise InvalidInput(f"secret {p.name} is shorter than {MIN_SCRUB} characters: refused")
    site_path = resolve_site(str(values["site"]))
    the_site = load_site(site_path)
    check_against_site(values, the_site)
    if values["apply"] and the_site.recorded:
        raise PlanOnly(
            f"site {the_site.name} ({site_path}) is recorded facts and plan-only: "
            "use `kvmops plan`, or give --site with the site file of a real host"
        )
    return values, the_site, site_path


def _journal(folder: Path | None) -> Path:
    return journal_dir(folder)


def _who() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _execute(info: RunbookInfo, nb: Any, public: dict[str, Value], secrets: dict[str, str],
             site: Site, journal: Path, progress: Progress | None) -> RunRecord:
    run_id, folder = new_run_dir(journal, info.name)
    scrub = Scrubber(list(secrets.values()))
    say = (lambda line: progress(scrub.text(line))) if progress else None
    masked = {**public, **{k: MASK for k in secrets}}
    rec = RunRecord(
        id=run_id, runbook=info.name, status="running", params=masked, user=_who(),
        site=str(public["site"]), host=site.name + (f" ({site.ssh})" if site.ssh else ""),
        apply=bool(public["apply"]), started=_now(),
        notebook=str(folder / NOTEBOOK), record=str(folder / RECORD),
    )
    commands_log = folder / "commands.jsonl"
    keep: list[Any] = []
    try:
        with secrets_file(secrets) as secret_path:
            env = _kernel_env(run_id, commands_log, secret_path)
            _papermill(nb, public, env, say, keep, info.path.parent)
        rec.status = "ok"
    except Exception as exc:
        rec.status = "failed"
        _failure(rec, exc, keep)
        if not _is_cell_failure(exc):
            raise
    except BaseException:
        rec.status = "interrupted"
        raise
    finally:
        rec.ended = _now()
        rec.commands = scrub.data(_commands(commands_log))
        _write_notebook(keep, rec, info, scrub)
        rec.error = scrub.text(rec.error) if rec.error else rec.error
        write_record(rec)
    return rec


def _kernel_env(run_id: str, commands_log: Path, secret_path: Path | None) -> dict[str, str]:
    """The kernel's environment: no secret of this process (``KVMOPS_SECRET_*``); the run's own
    secrets only by the file named in ``KVMOPS_SECRETS_FILE``, which the kernel reads and takes
    out of its environment before the first cell (:func:`kvmops.runbook.secrets.take_secrets`)."""
    env = without_secrets(os.environ)
    env[RUN_ID_ENV] = run_id
    env[COMMAND_LOG_ENV] = str(commands_log)
    if secret_path is not None:
        env[SECRETS_ENV] = str(secret_path)
    return env


def load_engine() -> None:
    """Import the notebook stack and register the engine: once, before runs in threads."""
    nbstack.load()
    import papermill  # noqa: F401

    from kvmops.runbook import engine

    engine.register()


def _papermill(nb: Any, params: dict[str, Value], env: dict[str, str], say: Progress | None,
               keep: list[Any], cwd: Path) -> None:
    load_engine()
    import papermill

    from kvmops.runbook import engine

    with _quiet_papermill():
        papermill.execute_notebook(
            nb,
            None,  # nothing is written by papermill: kvmops scrubs, then writes the journal
            parameters=params,
            engine_name=engine.ENGINE,
            kernel_name=KERNEL["name"],
            progress_bar=False,
            request_save_on_cell_execute=False,
            cwd=str(cwd),
            kvmops_env=env,
            kvmops_progress=say,
            kvmops_keep=keep,
        )


_quiet_lock = threading.Lock()
_quiet_runs = 0
_quiet_level = logging.NOTSET


@contextmanager
def _quiet_papermill() -> Iterator[None]:
    """papermill's own parameter inference warns about comments it cannot parse and about
    "unknown" names; kvmops has validated the parameters itself, so only errors show. Runs in
    threads at once (the manual's build) share it: the level comes back after the last."""
    global _quiet_runs, _quiet_level
    log = logging.getLogger("papermill")
    with _quiet_lock:
        if _quiet_runs == 0:
            _quiet_level = log.level
            log.setLevel(logging.ERROR)
        _quiet_runs += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_runs -= 1
            if _quiet_runs == 0:
                log.setLevel(_quiet_level)


def _is_cell_failure(exc: BaseException) -> bool:
    from papermill.exceptions import PapermillExecutionError

    return isinstance(exc, PapermillExecutionError)


def _failure(rec: RunRecord, exc: Exception, keep: list[Any]) -> None:
    if not _is_cell_failure(exc):
        rec.error = f"{type(exc).__name__}: {exc}"
        rec.failed_step = "kernel"
        return
    rec.error = f"{exc.ename}: {exc.evalue}"  # type: ignore[attr-defined]
    rec.failed_cell = exc.exec_count  # type: ignore[attr-defined]
    where = steps.failure(keep[0].nb if keep else None, exc.source)  # type: ignore[attr-defined]
    rec.failed_step = where.step
    rec.way_out = where.way_out or None


def _commands(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    lines = path.read_text().splitlines()
    path.unlink()
    return [json.loads(ln) for ln in lines if ln.strip()]


def _write_notebook(keep: list[Any], rec: RunRecord, info: RunbookInfo, scrub: Scrubber) -> None:
    import nbformat

    if not keep:
        rec.notebook = ""
        return
    nb = keep[0].nb
    nb.metadata.setdefault("papermill", {})["input_path"] = str(info.path)
    nb.metadata["kvmops"] = {"run": rec.id, "runbook": rec.runbook, "status": rec.status,
                             "site": rec.host, "apply": rec.apply}
    nb = scrub_notebook(nb, info.secrets, scrub)
    private_file(Path(rec.notebook), nbformat.writes(nb))  # type: ignore[no-untyped-call]
