"""The strict build of the manual, once per session, and what the built site must hold.

The build runs on a staged copy of docs/ in a temporary folder (the checkout is not
touched): every runbook runs in plan mode against the demo site through run_runbook, then
``mkdocs build --strict``. The browser test (tests/integration/test_docs_browser.py) reuses
the same build through :func:`built_docs`.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from kvmops.runbook.discover import RunbookInfo, list_runbooks
from kvmops.runbook.execute import run_runbook
from kvmops.runbook.journal import RunRecord, write_record
from kvmops.site import load_site
from kvmops_manual import notebooks, scan
from kvmops_manual.build import BuildResult, DocsBuildFailed, build, mkdocs_build
from kvmops_manual.produce import produce
from kvmops_manual.published import Published, write_manifest
from tests.support.secrets import PASSWORDS

TOP = Path(__file__).resolve().parents[2]
# Every secret the docs tests hand to a runbook; the built site must contain none of them.
SECRET = PASSWORDS["docs"]


@dataclass
class BuiltDocs:
    result: BuildResult
    runbooks: list[RunbookInfo]
    journal_runs: list[RunRecord]
    secrets: list[str]

    @property
    def site(self) -> Path:
        return self.result.site_dir

    def page(self, rel: str) -> str:
        return (self.site / rel / "index.html").read_text()


_BUILT: dict[str, BuiltDocs] = {}


def _secret_params(infos: list[RunbookInfo]) -> dict[str, dict[str, object]]:
    return {i.name: {name: SECRET for name in i.secrets} for i in infos if i.secrets}


def built_docs(tmp_path_factory: pytest.TempPathFactory) -> BuiltDocs:
    """The one build of this test session (made on first use)."""
    if "docs" not in _BUILT:
        work = tmp_path_factory.mktemp("docs-build")
        infos = list_runbooks()
        params = _secret_params(infos)
        journal = work / "journal"
        # Real runs into the journal the manual lists: every runbook that takes a secret gets one;
        # the inventory's makes the host and guest pages, lv-snapshot's touches guest influx.
        first = infos[0].name
        runs = [run_runbook(name, dict(params.get(name, {})), site="demo", apply=False, journal_dir=journal)
                for name in sorted({first, "inventory", "lv-snapshot", *params})]
        result = build(TOP, workdir=work, journal=journal, params=params, secrets=[SECRET],
                       progress=lambda _line: None)
        _BUILT["docs"] = BuiltDocs(result, infos, runs, [SECRET])
    return _BUILT["docs"]


@pytest.fixture(scope="session")
def docs(tmp_path_factory: pytest.TempPathFactory) -> BuiltDocs:
    return built_docs(tmp_path_factory)


def _text(page_html: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page_html))


def test_every_runbook_is_published_as_an_executed_plan_mode_page(docs: BuiltDocs) -> None:
    assert [p.name for p in docs.result.published] == [i.name for i in docs.runbooks]
    assert docs.runbooks, "no runbooks were found to publish"
    for info in docs.runbooks:
        page = docs.page(f"runbooks/generated/{info.name}")
        assert 'data-mode="plan"' in page
        assert "Plan-mode run against the demo site (recorded facts), nothing executed" in page
        assert "jp-OutputArea-output" in page, f"{info.name}: no executed output on its page"


def test_the_snapshot_runbook_page_shows_its_plan(docs: BuiltDocs) -> None:
    if "lv-snapshot" not in [i.name for i in docs.runbooks]:
        pytest.skip("runbook lv-snapshot not present")
    text = _text(docs.page("runbooks/generated/lv-snapshot"))
    assert re.search(r"# Plan: snapshot rl_build/vm\w+ as vm\w+-\d{8}T\d{4}Z", text)
    assert re.search(r"lvcreate --snapshot --name vm\w+-\d{8}T\d{4}Z --size 5g rl_build/vm\w+", text)


def test_runbook_list_links_every_runbook(docs: BuiltDocs) -> None:
    page = docs.page("runbooks")
    for info in docs.runbooks:
        assert f'href="generated/{info.name}/"' in page


def test_networks_and_site_facts_come_from_the_site_file(docs: BuiltDocs) -> None:
    site = load_site(TOP / "kvmops/sites/guide.toml")
    text = _text(docs.page("reference/networks"))
    for n in site.networks:
        assert re.search(rf"{n.vlan}\s+{re.escape(n.bridge)}\s+{re.escape(str(n.cidr))}\s+{n.gateway}", text)
    facts = _text(docs.page("reference/site"))
    assert "kvmops/sites/guide.toml" in facts and site.vg in facts and site.name in facts


def test_no_marker_is_left_unexpanded(docs: BuiltDocs) -> None:
    left = [p for p in docs.site.rglob("*.html") if "<!-- kvmops:" in p.read_text()]
    assert left == []


def test_api_reference_is_generated_from_docstrings(docs: BuiltDocs) -> None:
    text = _text(docs.page("api/primitives"))
    assert "lvremove_argv" in text
    assert "never -y, --yes, -f, --force" in text.replace("``", "")


def test_search_index_finds_lvremove_on_the_safety_page(docs: BuiltDocs) -> None:
    index = json.loads((docs.site / "search/search_index.json").read_text())
    hits = {d["location"].split("#")[0] for d in index["docs"] if "lvremove" in d["text"] + d["title"]}
    assert "reference/safety/" in hits


def test_journal_page_lists_the_runs(docs: BuiltDocs) -> None:
    text = _text(docs.page("journal"))
    for rec in docs.journal_runs:
        assert rec.id in text


def test_inventory_page(docs: BuiltDocs) -> None:
    text = _text(docs.page("journal/inventory"))
    if "inventory" in [i.name for i in docs.runbooks]:
        assert "Plan-mode run against the demo site" in text
        assert "```" not in text and "No inventory in this build" not in text
    else:
        assert "No inventory in this build" in text


def test_built_site_holds_no_secret_and_no_generated_leftovers(docs: BuiltDocs) -> None:
    assert scan.scan(docs.site, docs.secrets) == []
    assert not list(docs.site.rglob("manifest.json"))
    assert not [p for p in (TOP / "docs").rglob("*.py")], "a .py under docs/ would be rendered as a page"


# -- failures stop the build ----------------------------------------------------------------

BROKEN = textwrap.dedent('''\
    # %% [markdown]
    # # Broken
    #
    # Fails on purpose.

    # %% tags=["parameters"]
    site = ""  # site
    apply = False  # apply
    confirm = ""  # confirm

    # %%
    raise RuntimeError("broken on purpose")
''')


def test_a_failing_runbook_fails_the_build(tmp_path: Path) -> None:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "broken.py").write_text(BROKEN)
    with pytest.raises(notebooks.RunbookFailed, match=r"runbook broken failed .*broken on purpose"):
        produce(tmp_path / "docs", runbooks=folder, progress=lambda _l: None)


def test_an_error_in_a_generated_notebook_fails_mkdocs(tmp_path: Path) -> None:
    docs_dir = tmp_path / "docs"
    gen = docs_dir / "runbooks" / "generated"
    gen.mkdir(parents=True)
    (docs_dir / "index.md").write_text("# Home\n")
    (docs_dir / "runbooks" / "index.md").write_text("# Runbooks\n")
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("1/0")
    cell.outputs = [nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="boom", traceback=[])]
    nb.cells = [cell]
    nbformat.write(nb, str(gen / "bad.ipynb"))
    write_manifest(gen, [Published("bad", "Bad", "", "plan", "demo", "t")])
    config = tmp_path / "mkdocs.yml"
    config.write_text(json.dumps({
        "site_name": "t", "docs_dir": str(docs_dir), "strict": True,
        "hooks": [str(TOP / "kvmops_manual/hooks.py")],
        "extra": {"kvmops": {"site_file": str(TOP / "kvmops/sites/guide.toml")}},
        "nav": [{"Home": "index.md"}, {"Runbooks": ["runbooks/index.md"]}],
    }))
    with pytest.raises(DocsBuildFailed, match=r"runbook bad: the executed runbook failed.*ZeroDivisionError"):
        mkdocs_build(config, tmp_path / "site", tmp_path / "journal", lambda _l: None)
    assert not (tmp_path / "site" / "index.html").exists()


def test_from_journal_publishes_the_lab_run(tmp_path: Path) -> None:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    (folder / "tiny.py").write_text(BROKEN.replace("# Broken", "# Tiny").replace(
        'raise RuntimeError("broken on purpose")', 'print("hello")'))
    run = tmp_path / "journal" / "20250102T100000Z-tiny"
    run.mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('print("hello")')
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="LAB OUTPUT\n")]
    nb.cells = [cell]
    nbformat.write(nb, str(run / "notebook.ipynb"))
    write_record(RunRecord(id=run.name, runbook="tiny", status="ok", params={}, user="ops", site="lab.toml",
                           host="kvmlab (root@127.0.0.1)", apply=True, started="2025-01-02T10:00:00+00:00",
                           notebook=str(run / "notebook.ipynb"), record=str(run / "record.json")))
    # The broken runbook is never executed: the lab run of "tiny" is published as it is.
    items = produce(tmp_path / "docs", from_journal=True, journal=tmp_path / "journal", runbooks=folder,
                    progress=lambda _l: None)
    assert [(p.name, p.mode, p.site, p.run_id) for p in items] == [("tiny", "applied", "kvmlab", run.name)]
    out = nbformat.read(str(tmp_path / "docs/runbooks/generated/tiny.ipynb"), as_version=4)
    assert "Applied run against the lab host (kvmlab) at 2025-01-02T10:00:00+00:00" in out.cells[0].source
    assert out.cells[1].outputs[0]["text"] == "LAB OUTPUT\n"


def test_cli_has_the_docs_command() -> None:
    out = subprocess.run([sys.executable, "-m", "kvmops.cli.main", "docs", "--help"],
                         capture_output=True, text=True, check=True).stdout
    assert "--from-journal" in out and "--serve" in out and "127.0.0.1" in out
