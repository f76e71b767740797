"""The executed runbooks the manual publishes, written to ``docs/runbooks/generated/``.

Per runbook: with ``from_journal``, its latest successful applied run against the lab host;
otherwise (and for runbooks the lab never ran) a fresh plan-mode run against the demo site
through :func:`kvmops.runbook.execute.run_runbook` (``apply=False``), its journal kept in a
temporary folder so the real journal only holds real runs. A failed run stops the build.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from kvmops.runbook.discover import RunbookInfo, list_runbooks
from kvmops.runbook.execute import run_runbook
from kvmops.runbook.journal import RunRecord
from kvmops_manual import notebooks
from kvmops_manual.journal import LAB_HOST, host_name, latest_lab_runs
from kvmops_manual.published import GENERATED, Published, write_manifest

DEMO_SITE = "demo"
Progress = Callable[[str], None]


def generated_dir(docs_dir: Path) -> Path:
    return docs_dir / GENERATED


def produce(
    docs_dir: Path,
    *,
    from_journal: bool = False,
    journal: Path | None = None,
    lab_host: str = LAB_HOST,
    runbooks: Path | None = None,
    params: Mapping[str, Mapping[str, object]] | None = None,
    progress: Progress = print,
) -> list[Published]:
    """Write every runbook's executed notebook and the manifest; return what was published.

    ``params`` gives extra parameters per runbook name for the plan-mode runs.
    """
    out = generated_dir(docs_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    lab = latest_lab_runs(journal, lab_host) if from_journal and journal is not None else {}
    if from_journal and not lab:
        progress(f"docs: no successful applied runs against {lab_host} in the journal: plan-mode runs only")
    infos = list_runbooks(runbooks)
    published: list[Published] = []
    with tempfile.TemporaryDirectory(prefix="kvmops-docs-journal-") as scratch:
        for i, info in enumerate(infos, 1):
            progress(f"docs: [{i}/{len(infos)}] runbook {info.name}")
            rec = lab.get(info.name)
            if rec is not None:
                item = _from_journal(info, rec)
            else:
                wanted = dict((params or {}).get(info.name, {}))
                rec = _plan_run(info, wanted, Path(scratch), runbooks, progress)
                item = _published(info, rec, "plan")
            _publish(rec, item, out)
            published.append(item)
    write_manifest(out, published)
    return published


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
    rec = run_runbook(info.name, params, site=DEMO_SITE, apply=False, journal_dir=scratch,
                      progress=lambda line: progress(f"docs:   {line}"), folder=runbooks)
    if not rec.ok:
        raise notebooks.RunbookFailed(
            f"runbook {info.name} failed in its plan-mode run against the demo site"
            f" (step {rec.failed_step}): {rec.error}. The manual is not built from a failed run; "
            f"see {rec.notebook}"
        )
    return rec


def _from_journal(info: RunbookInfo, rec: RunRecord) -> Published:
    return _published(info, rec, "applied")


def _published(info: RunbookInfo, rec: RunRecord, mode: str) -> Published:
    return Published(
        name=info.name, title=info.title, summary=info.summary,
        mode="applied" if mode == "applied" else "plan",
        site=host_name(rec), when=rec.started, run_id=rec.id if mode == "applied" else "",
    )


def _publish(rec: RunRecord, item: Published, out: Path) -> None:
    nb = notebooks.load(Path(rec.notebook))
    notebooks.check(nb, f"runbook {item.name} (run {rec.id})")
    notebooks.save(notebooks.publishable(nb, item), out / item.file)
