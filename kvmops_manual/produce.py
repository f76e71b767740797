"""The executed runbooks the manual publishes, written to ``docs/runbooks/generated/``.

Per runbook: with ``from_journal``, its latest successful applied run against the lab host;
otherwise (and for runbooks the lab never ran) a plan-mode run against the demo site through
:func:`kvmops.runbook.execute.run_runbook` (``apply=False``), its journal kept in a temporary
folder so the real journal only holds real runs.

The plan-mode runs go ``jobs`` at a time (each in its own kernel; the build waits mostly on
kernels starting and stopping). With a ``cache`` folder, a run whose runbook, site, kvmops and
parameters are those of an earlier build's run is not repeated: that run is published
(:mod:`kvmops_manual.runcache`). A failed run stops the build: the runs not started yet are
dropped, the ones running end, and the failure is raised.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from kvmops.runbook.discover import RunbookInfo, list_runbooks
from kvmops.runbook.execute import load_engine, run_runbook
from kvmops.runbook.journal import RunRecord
from kvmops_manual import notebooks
from kvmops_manual.journal import LAB_HOST, host_name, latest_lab_runs
from kvmops_manual.published import GENERATED, Published, write_manifest
from kvmops_manual.runcache import Entry, RunCache, cacheable, key

DEMO_SITE = "demo"
MAX_JOBS = 8
Progress = Callable[[str], None]


@dataclass(frozen=True)
class _Run:
    """A plan-mode run to publish: its notebook, the site's host name, when it ran."""

    notebook: Path
    site: str
    when: str
    cached: bool = False


def generated_dir(docs_dir: Path) -> Path:
    return docs_dir / GENERATED


def default_jobs() -> int:
    """Runs at a time: two per core (a run waits on its kernel more than it computes), at most 8."""
    return max(1, min(MAX_JOBS, 2 * (os.cpu_count() or 1)))


def produce(
    docs_dir: Path,
    *,
    from_journal: bool = False,
    journal: Path | None = None,
    lab_host: str = LAB_HOST,
    runbooks: Path | None = None,
    params: Mapping[str, Mapping[str, object]] | None = None,
    progress: Progress = print,
    jobs: int | None = None,
    cache: Path | None = None,
) -> list[Published]:
    """Write every runbook's executed notebook and the manifest; return what was published.

    ``params`` gives extra parameters per runbook name for the plan-mode runs; ``jobs`` how
    many run at a time (default :func:`default_jobs`); ``cache`` the folder of earlier runs.
    """
    out = generated_dir(docs_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    lab = latest_lab_runs(journal, lab_host) if from_journal and journal is not None else {}
    if from_journal and not lab:
        progress(f"docs: no successful applied runs against {lab_host} in the journal: plan-mode runs only")
    infos = list_runbooks(runbooks)
    wanted = {i.name: dict((params or {}).get(i.name, {})) for i in infos}
    store = RunCache(cache) if cache is not None else None
    with tempfile.TemporaryDirectory(prefix="kvmops-docs-journal-") as scratch:
        runs = _plan_runs([i for i in infos if i.name not in lab], wanted, store, Path(scratch), runbooks,
                          jobs or default_jobs(), _locked(progress))
        published = [_publish_one(info, lab.get(info.name), runs.get(info.name), out) for info in infos]
    write_manifest(out, published)
    return published


def _locked(progress: Progress) -> Progress:
    """``progress`` callable from the runs' threads, one line at a time."""
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            progress(line)

    return say


def _plan_runs(infos: list[RunbookInfo], params: dict[str, dict[str, object]], store: RunCache | None,
               scratch: Path, runbooks: Path | None, jobs: int, progress: Progress) -> dict[str, _Run]:
    """Every plan-mode run: from the cache where it holds the run, else run, ``jobs`` at a time."""
    runs: dict[str, _Run] = {}
    keys = {i.name: key(i, DEMO_SITE, params[i.name]) for i in infos
            if store is not None and cacheable(i, params[i.name])}
    todo = []
    for info in infos:
        hit = store.get(keys[info.name], info.name) if store is not None and info.name in keys else None
        if hit is not None:
            runs[info.name] = _Run(hit.notebook, hit.site, hit.when, cached=True)
            progress(f"docs: runbook {info.name}: unchanged since its run at {hit.when} (cached)")
        else:
            todo.append(info)
    if todo:
        load_engine()  # the notebook stack imported once, before the threads
        progress(f"docs: running {len(todo)} runbook(s) in plan mode against the {DEMO_SITE} site, "
                 f"{min(jobs, len(todo))} at a time")
        runs.update(_run_all(todo, params, keys, store, scratch, runbooks, jobs, progress))
    if store is not None:
        store.prune(keys.values())
    return runs


def _run_all(infos: list[RunbookInfo], params: dict[str, dict[str, object]], keys: dict[str, str],
             store: RunCache | None, scratch: Path, runbooks: Path | None, jobs: int,
             progress: Progress) -> dict[str, _Run]:
    """Run ``jobs`` at a time; each successful run is stored in the cache as it ends."""

    def one(info: RunbookInfo) -> _Run:
        rec = _plan_run(info, params[info.name], scratch, runbooks, progress)
        entry = _store(store, keys.get(info.name), rec)
        return _Run(entry.notebook if entry else Path(rec.notebook), host_name(rec), rec.started)

    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="kvmops-docs")
    try:
        futures: dict[Future[_Run], str] = {pool.submit(one, info): info.name for info in infos}
        wait(futures, return_when=FIRST_EXCEPTION)
    finally:  # a failure or an interrupt: the runs not started yet are dropped, the others end
        pool.shutdown(wait=True, cancel_futures=True)
    failed = [f for f in futures if not f.cancelled() and f.exception() is not None]
    if failed:
        failed[0].result()  # raises the first failure
    return {name: f.result() for f, name in futures.items()}


def _store(store: RunCache | None, run_key: str | None, rec: RunRecord) -> Entry | None:
    if store is None or run_key is None:
        return None
    return store.put(run_key, Path(rec.notebook), rec.runbook, host_name(rec), rec.started)


def secret_values(params: Mapping[str, Mapping[str, object]] | None,
                  runbooks: Path | None = None) -> list[str]:
    """The values given for parameters the runbooks declare secret (for the site scan)."""
    if not params:
        return []
    secret = {info.name: set(info.secrets) for info in list_runbooks(runbooks)}
    return [str(v) for name, given in params.items() for k, v in given.items()
            if k in secret.get(name, set()) and v]


def _plan_run(info: RunbookInfo, params: dict[str, object], scratch: Path, runbooks: Path | None,
              progress: Progress) -> RunRecord:
    progress(f"docs: runbook {info.name}: running")
    rec = run_runbook(info.name, params, site=DEMO_SITE, apply=False, journal_dir=scratch,
                      progress=lambda line: progress(f"docs:   {info.name}: {line}"), folder=runbooks)
    if not rec.ok:
        raise notebooks.RunbookFailed(
            f"runbook {info.name} failed in its plan-mode run against the demo site"
            f" (step {rec.failed_step}): {rec.error}. The manual is not built from a failed run; "
            f"see {rec.notebook}"
        )
    return rec


def _publish_one(info: RunbookInfo, lab: RunRecord | None, run: _Run | None, out: Path) -> Published:
    if lab is not None:
        item = _published(info, "applied", host_name(lab), lab.started, lab.id)
        _publish(Path(lab.notebook), item, f"runbook {item.name} (run {lab.id})", out)
        return item
    assert run is not None
    item = _published(info, "plan", run.site, run.when, "")
    _publish(run.notebook, item, f"runbook {item.name} ({'cached ' if run.cached else ''}plan-mode run)", out)
    return item


def _published(info: RunbookInfo, mode: str, site: str, when: str, run_id: str) -> Published:
    return Published(name=info.name, title=info.title, summary=info.summary,
                     mode="applied" if mode == "applied" else "plan", site=site, when=when, run_id=run_id)


def _publish(notebook: Path, item: Published, where: str, out: Path) -> None:
    nb = notebooks.load(notebook)
    notebooks.check(nb, where)
    notebooks.save(notebooks.publishable(nb, item), out / item.file)
