"""The manual's page per host and per guest, from the latest inventory in the journal, and
the journal's guest filter: the pieces as functions, then the built site (the session's one
build, tests/unit/test_docs_build.py)."""

from __future__ import annotations

import copy
import html
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat
import pytest

from kvmops.facts import read_facts
from kvmops.host import connect
from kvmops.hostfacts import Wanted
from kvmops.runbook.inventory_data import MIME, inventory_data, inventory_in, summary
from kvmops.runbook.journal import RunRecord, write_record
from kvmops.site import load_site, resolve_site
from kvmops_manual import hosts
from kvmops_manual.journal import journal_table
from tests.unit.test_docs_build import BuiltDocs, built_docs


@pytest.fixture(scope="module")
def demo() -> dict[str, Any]:
    """The inventory data of the demo site (recorded facts)."""
    host = connect(load_site(resolve_site("demo")), apply=False)
    try:
        return inventory_data(read_facts(host, Wanted(net=True)))
    finally:
        host.close()


def _run(journal: Path, run_id: str, runbook: str, data: dict[str, Any] | None = None, *, ok: bool = True,
         started: str = "2025-01-01T10:00:00+00:00", host: str = "demo", **params: object) -> RunRecord:
    folder = journal / run_id
    folder.mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("show_inventory(facts)")
    if data is not None:
        cell.outputs = [nbformat.v4.new_output("display_data", data={MIME: data, "text/plain": summary(data)})]
    nb.cells = [cell]
    nbformat.write(nb, str(folder / "notebook.ipynb"))
    rec = RunRecord(id=run_id, runbook=runbook, status="ok" if ok else "failed", params=dict(params), user="ops",
                    site="/x/site.toml", host=host, apply=False, started=started, ended=started,
                    notebook=str(folder / "notebook.ipynb"), record=str(folder / "record.json"))
    write_record(rec)
    return rec


def test_the_inventory_data_of_the_demo_site(demo: dict[str, Any]) -> None:
    assert demo["host"] == "demo" and demo["vg"]["name"] == "rl_build"
    influx = next(g for g in demo["guests"] if g["name"] == "influx")
    assert influx["state"] == "shut off" and influx["bridges"] == ["virbr1.2367"]
    [disk] = influx["disks"]
    assert disk["lv"] == "rl_build/vminflux"
    assert [(s["name"], s["fill"]) for s in disk["snapshots"]] == [("vminflux-20261120T0900Z", 12.5)]
    lvs = {lv["name"]: lv for lv in demo["lvs"]}
    assert lvs["vmtest1-20261124T0815Z"]["filling_up"] and lvs["vmtest1-20261124T0815Z"]["guest"] == "test1"
    assert lvs["vmold"]["guest"] is None
    assert {b["bridge"] for b in demo["bridges"]} >= {"virbr1.2367", "virbr1.2368"}
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x")]
    nb.cells[0].outputs = [nbformat.v4.new_output("display_data", data={MIME: demo, "text/plain": "x"})]
    assert inventory_in(nbformat.reads(nbformat.writes(nb), as_version=4)) == demo


def test_the_newest_good_inventory_of_each_host(tmp_path: Path, demo: dict[str, Any]) -> None:
    old, new, other = copy.deepcopy(demo), copy.deepcopy(demo), copy.deepcopy(demo)
    old["vg"]["free"], other["host"] = 1, "kvm2"
    runs = [_run(tmp_path, "a", "inventory", old, started="2025-01-01T10:00:00+00:00"),
            _run(tmp_path, "b", "inventory", new, started="2025-01-02T10:00:00+00:00"),
            _run(tmp_path, "c", "inventory", old, started="2025-01-03T10:00:00+00:00", ok=False),
            _run(tmp_path, "d", "inventory", None, started="2025-01-04T10:00:00+00:00"),  # no data: an old runbook
            _run(tmp_path, "e", "inventory", other, host="kvm2")]
    found = hosts.from_journal(runs)
    assert sorted(found) == ["demo", "kvm2"]
    assert found["demo"].run_id == "b" and found["demo"].data["vg"]["free"] == demo["vg"]["free"]


def test_runs_touching_a_guest(tmp_path: Path, demo: dict[str, Any]) -> None:
    inv = hosts.HostInventory(demo, "from a test")
    by_guest = _run(tmp_path, "g", "lv-snapshot", guest="influx")
    by_list = _run(tmp_path, "l", "guest-lifecycle", guests="test1, influx")
    by_lv = _run(tmp_path, "v", "lv-remove", lv="vminflux-20261120T0900Z")
    elsewhere = _run(tmp_path, "o", "lv-snapshot", host="kvm2", guest="influx")
    other = _run(tmp_path, "t", "lv-snapshot", guest="test1")
    assert [r.id for r in (by_guest, by_list, by_lv, elsewhere, other) if hosts.touches(r, inv, "influx")] \
        == ["g", "l", "v"]
    assert hosts.guests_of(by_lv, {"demo": inv}) == ["influx"]
    assert hosts.guests_of(by_list, {"demo": inv}) == ["test1", "influx"]


def test_host_and_guest_pages(tmp_path: Path, demo: dict[str, Any]) -> None:
    inv = hosts.HostInventory(demo, "Inventory run `inv0`.")
    runs = [_run(tmp_path, f"r{i}", "lv-snapshot", guest="influx", started=f"2025-01-{i + 1:02d}T10:00:00+00:00")
            for i in range(12)]
    made = hosts.pages({"demo": inv}, runs, datetime(2025, 1, 20, tzinfo=UTC))
    assert sorted(made) == [f"journal/hosts/demo/{p}.md" for p in ("index", "influx", "test1")]
    host = made["journal/hosts/demo/index.md"]
    assert "592.00 GiB free of 892.00 GiB" in host and "[influx](influx.md)" in host
    assert "| `rl_build/vmtest1-20261124T0815Z` | 5.00 GiB | `vmtest1` | **84.4 %** (filling up) | test1 |" in host
    guest = made["journal/hosts/demo/influx.md"]
    assert "| `rl_build/vminflux-20261120T0900Z` | 5.00 GiB | 12.5 % |  |" in guest
    assert guest.count("`lv-snapshot`") == hosts.LAST_RUNS and "2 older runs" in guest  # newest 10 of 12
    assert "`r11`" in guest and "`r0`" not in guest
    assert "[the journal, filtered](../../index.md?guest=influx)" in guest
    assert "| `virbr1.2367` | 2367 | **drift** | drift: bridge missing |" in guest
    assert hosts.nav({"demo": inv}) == [{"demo": ["journal/hosts/demo/index.md",
                                                   {"influx": "journal/hosts/demo/influx.md"},
                                                   {"test1": "journal/hosts/demo/test1.md"}]}]


def test_the_journal_rows_carry_their_guests(tmp_path: Path, demo: dict[str, Any]) -> None:
    inv = {"demo": hosts.HostInventory(demo, "")}
    runs = [_run(tmp_path, "v", "lv-remove", lv="vmtest1"), _run(tmp_path, "n", "inventory")]
    text = journal_table(runs, lambda r: hosts.guests_of(r, inv), {("demo", "test1"): "hosts/demo/test1/"})
    assert '<tr data-guests="test1">' in text and '<a href="hosts/demo/test1/">test1</a>' in text
    assert '<tr data-guests="">' in text


@pytest.fixture(scope="module")
def site_docs(tmp_path_factory: pytest.TempPathFactory) -> BuiltDocs:
    return built_docs(tmp_path_factory)


def _text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def test_the_built_site_has_a_page_per_host_and_guest(site_docs: BuiltDocs) -> None:
    inventory = next(r for r in site_docs.journal_runs if r.runbook == "inventory")
    host = _text(site_docs.page("journal/hosts/demo"))
    assert f"Inventory run {inventory.id} (plan mode, read-only)" in host
    assert "rl_build/vmtest1-20261124T0815Z" in host and "84.4 % (filling up)" in host
    guest = site_docs.page("journal/hosts/demo/influx")
    assert "12.5 %" in _text(guest)
    assert 'href="../../../?guest=influx"' in guest  # journal/, seen from journal/hosts/demo/influx/
    snapshot = next(r for r in site_docs.journal_runs if r.runbook == "lv-snapshot")
    assert snapshot.id in _text(guest)  # the run that touched influx
    journal = site_docs.page("journal")
    assert re.search(r'<tr data-guests="influx"><td>[^<]+</td><td><code>lv-snapshot</code></td>'
                     r'<td><a href="hosts/demo/influx/">influx</a>', journal)
    assert 'src="filter.js"' in journal and "Hosts and guests" in journal  # the filter's script; the nav
    assert (site_docs.site / "journal" / "filter.js").is_file()
