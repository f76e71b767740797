"""The manual's generated pieces: site tables, markers, journal choice, notebooks, secret scan.

No mkdocs build and no kernel here (see test_docs_build.py for those).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from kvmops.errors import ConfigError
from kvmops.runbook.journal import RunRecord, write_record
from kvmops.site import load_site
from kvmops_manual import notebooks, pages, scan
from kvmops_manual.journal import journal_table, latest_lab_runs, newest_first
from kvmops_manual.published import Published, read_manifest, write_manifest

SITE_TOML = """
[host]
name = "kvm9.example.org"
[storage]
vg = "vg_guests"
lv_prefix = "kvm"
snapshot_size = "1g"
[libvirt]
uri = "qemu:///system"
emulator = "/usr/bin/qemu-system-x86_64"
xml_dir = "/etc/kvm"
[images]
login_user = "debian"
[network]
uplink = "eno2"
dns = ["192.0.2.53"]
[[network.vlan]]
id = 3001
cidr = "198.51.100.0/24"
dhcp = "yes"
[[network.vlan]]
id = 12
cidr = "203.0.113.0/25"
gateway = "203.0.113.126"
"""


@pytest.fixture
def site(tmp_path: Path):
    path = tmp_path / "site.toml"
    path.write_text(SITE_TOML)
    return load_site(path)


def test_networks_table_comes_from_the_site_file(site) -> None:
    lines = pages.networks_table(site).splitlines()
    assert lines[0] == "| VLAN | Bridge | CIDR | Gateway | DHCP | VLAN port |"
    # sorted by VLAN id; the gateway is .254 unless the site file names another
    assert lines[2] == ("| 12 | `virbr1.12` | `203.0.113.0/25` | `203.0.113.126` | unknown (the guide does not say) "
                        "| `eno2.12` |")  # the site file does not say
    assert lines[3] == "| 3001 | `virbr1.3001` | `198.51.100.0/24` | `198.51.100.254` | yes | `eno2.3001` |"
    assert len(lines) == 4


def test_site_values_and_examples(site) -> None:
    v = pages.site_values(site)
    assert v["vg"] == "vg_guests"
    assert v["example_lv"] == "kvmtest1"
    assert v["example_snapshot"] == "kvmtest1-20241006T1518Z"
    assert v["snapshot_size"] == "1.00 GiB"
    assert v["dns"] == "`192.0.2.53`"
    facts = pages.site_facts(site)
    assert "`kvm9.example.org`" in facts and "`/etc/kvm`" in facts and "VLAN 3001, VLAN 12" in facts


def test_expand_replaces_markers_and_rejects_unknown_ones(site) -> None:
    handlers = {"site": lambda key: pages.site_value(site, key, "page.md"),
                "networks": lambda _: "TABLE"}
    text = "VG `<!-- kvmops:site vg -->`\n\n<!-- kvmops:networks -->\n"
    assert pages.expand(text, handlers, "page.md") == "VG `vg_guests`\n\nTABLE\n"
    with pytest.raises(ConfigError, match=r"page.md: unknown marker <!-- kvmops:netwrks -->"):
        pages.expand("<!-- kvmops:netwrks -->", handlers, "page.md")
    with pytest.raises(ConfigError, match=r"no such site value"):
        pages.expand("<!-- kvmops:site vgg -->", handlers, "page.md")


def test_the_guide_site_gives_the_guides_networks() -> None:
    table = pages.networks_table(load_site())
    for vlan, cidr, gw in ((223, "132.230.223.0/24", "132.230.223.254"), (2367, "10.5.67.0/24", "10.5.67.254"),
                           (2368, "10.5.68.0/24", "10.5.68.254"), (68, "132.230.68.0/24", "132.230.68.254")):
        assert f"| {vlan} | `virbr1.{vlan}` | `{cidr}` | `{gw}` |" in table


# -- journal ---------------------------------------------------------------------------------

def _record(journal: Path, run_id: str, *, runbook: str = "tiny", status: str = "ok", apply: bool = True,
            host: str = "kvmlab (root@127.0.0.1)", started: str = "2025-01-01T10:00:00+00:00",
            params: dict[str, object] | None = None, notebook: bool = True) -> RunRecord:
    folder = journal / run_id
    folder.mkdir(parents=True)
    nb_path = folder / "notebook.ipynb"
    if notebook:
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell("print('hello')")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"output of {run_id}\n")]
        nb.cells = [nbformat.v4.new_markdown_cell("# Tiny"), cell]
        nbformat.write(nb, str(nb_path))
    rec = RunRecord(id=run_id, runbook=runbook, status=status, params=params or {"guest": "influx"},
                    user="ops", site="/somewhere/site.toml", host=host, apply=apply, started=started,
                    ended=started, notebook=str(nb_path), record=str(folder / "record.json"))
    write_record(rec)
    return rec


def test_latest_lab_run_is_the_newest_ok_applied_one_on_the_lab_host(tmp_path: Path) -> None:
    j = tmp_path / "journal"
    _record(j, "r1", started="2025-01-01T10:00:00+00:00")
    want = _record(j, "r2", started="2025-01-02T10:00:00+00:00")
    _record(j, "r3", started="2025-01-03T10:00:00+00:00", status="failed")
    _record(j, "r4", started="2025-01-04T10:00:00+00:00", apply=False)
    _record(j, "r5", started="2025-01-05T10:00:00+00:00", host="build.galaxyproject.eu")
    _record(j, "r6", started="2025-01-06T10:00:00+00:00", notebook=False)
    _record(j, "o1", runbook="other", started="2024-12-01T10:00:00+00:00")
    chosen = latest_lab_runs(j)
    assert chosen["tiny"].id == want.id
    assert chosen["other"].id == "o1"
    assert latest_lab_runs(j, lab_host="elsewhere") == {}
    assert latest_lab_runs(tmp_path / "missing") == {}


def test_journal_table_lists_runs_newest_first_with_outcome(tmp_path: Path) -> None:
    j = tmp_path / "journal"
    _record(j, "r1", started="2025-01-01T10:00:00+00:00",
            params={"guest": "influx", "password": "********", "site": "/home/ops/kvmops/sites/demo.toml"})
    failed = _record(j, "r2", started="2025-01-02T10:00:00+00:00", status="failed", apply=False)
    write_record(replace(failed, failed_step="Preconditions", error="NotFound: no `vmx`\nmore"))
    text = journal_table(newest_first(j), links={("kvmlab", "influx"): "hosts/kvmlab/influx/"})
    rows = [ln for ln in text.splitlines() if ln.startswith("<tr data-guests")]
    lab = "kvmlab (root@127.0.0.1)"
    assert rows[0] == ('<tr data-guests="influx"><td>2025-01-02 10:00</td><td><code>tiny</code></td>'
                       '<td><a href="hosts/kvmlab/influx/">influx</a></td><td>plan</td>'
                       f'<td><strong>failed</strong> at Preconditions</td><td>{lab}</td><td><code>r2</code></td></tr>')
    assert rows[1].startswith('<tr data-guests="influx"><td>2025-01-01 10:00</td>')
    assert "<td>apply</td><td>ok</td>" in rows[1]
    assert 'id="kvmops-journal-filter"' in text and '<table id="kvmops-journal-table">' in text
    r1 = text[text.index('"r1: tiny'):]
    assert "    - `password` = `'********'`" in r1
    assert "    - `site` = `'demo.toml'`" in r1  # the file, not the path on someone's machine
    assert "    - error: `NotFound: no 'vmx'`" in text
    assert "The journal is empty" in journal_table([])


def test_output_markdown_turns_steps_into_headings() -> None:
    pieces = [("stream", "host demo\n==> Guests\nGUEST  STATE\n"), ("stream", "influx shut off\n"),
              ("markdown", "| LV |\n|---|\n| vmx |\n"), ("stream", "==> Done\n"), ("plain", "42")]
    assert pages.output_markdown(pieces) == (
        "```text\nhost demo\n```\n\n## Guests\n\n```text\nGUEST  STATE\ninflux shut off\n```\n\n"
        "| LV |\n|---|\n| vmx |\n\n## Done\n\n```text\n42\n```\n")


# -- notebooks -------------------------------------------------------------------------------

def _nb_with_error() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("1/0")
    cell.outputs = [nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero",
                                           traceback=[])]
    nb.cells = [cell]
    return nb


def test_an_error_output_stops_publishing() -> None:
    nb = _nb_with_error()
    assert notebooks.errors(nb) == ["cell 0: ZeroDivisionError: division by zero"]
    with pytest.raises(notebooks.RunbookFailed, match="runbook x: the executed runbook failed"):
        notebooks.check(nb, "runbook x")
    nb.cells[0].outputs = []
    notebooks.check(nb, "runbook x")  # no error: fine


def test_publishable_adds_the_provenance_banner_and_drops_local_paths() -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"input_path": "/home/x/in.ipynb", "output_path": "/tmp/o", "parameters": {"a": 1},
                                "duration": 1.5}
    nb.cells = [nbformat.v4.new_markdown_cell("# T")]
    lab = Published("tiny", "Tiny", "", "applied", "kvmlab", "2025-01-02T10:00:00+00:00", "r2")
    out = notebooks.publishable(nb, lab)
    assert out.metadata["papermill"] == {"duration": 1.5}
    assert "Applied run against the lab host (kvmlab) at 2025-01-02T10:00:00+00:00" in out.cells[0].source
    assert out.cells[1].source == "# T"
    assert len(nb.cells) == 1  # the original is untouched
    plan = replace(lab, mode="plan", site="demo", run_id="")
    assert "Plan-mode run against the demo site (recorded facts), nothing executed" in plan.banner_html()


def test_manifest_round_trip_and_garbage(tmp_path: Path) -> None:
    items = [Published("a", "A", "does a", "plan", "demo", "t1"),
             Published("b", "B", "", "applied", "kvmlab", "t2", "r")]
    write_manifest(tmp_path, items)
    assert read_manifest(tmp_path) == items
    (tmp_path / "manifest.json").write_text(json.dumps([{"nope": 1}]))
    with pytest.raises(ConfigError, match="not a manifest kvmops wrote"):
        read_manifest(tmp_path)
    assert read_manifest(tmp_path / "none") == []


# -- secret scan -----------------------------------------------------------------------------

def test_scan_finds_secrets_in_every_form_and_never_prints_them(tmp_path: Path) -> None:
    tmp_path = tmp_path / "planted-site"  # leaks planted on purpose: the session's secret scan skips them
    tmp_path.mkdir()
    secret = 'pa"ss<w>rd-42'
    (tmp_path / "a.html").write_text("<p>pa&quot;ss&lt;w&gt;rd-42</p>")
    (tmp_path / "search_index.json").write_text(json.dumps({"text": secret}))
    (tmp_path / "clean.html").write_text("<p>nothing here</p>")
    (tmp_path / "key.txt").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    hits = scan.scan(tmp_path, [secret])
    assert sorted((h.file.name, h.what) for h in hits) == [
        ("a.html", "secret #1"), ("key.txt", "PRIVATE KEY-----"), ("search_index.json", "secret #1")]
    with pytest.raises(scan.SecretInSite) as exc:
        scan.check(tmp_path, [secret])
    assert secret not in str(exc.value) and "a.html" in str(exc.value)
    for name in ("a.html", "search_index.json", "key.txt"):
        (tmp_path / name).unlink()
    scan.check(tmp_path, [secret])  # clean now


def test_the_server_answers_on_loopback_only(tmp_path: Path) -> None:
    import threading
    import urllib.request

    from kvmops.errors import KvmopsError
    from kvmops_manual.build import make_server

    with pytest.raises(KvmopsError, match="holds no built site: run `kvmops docs` first"):
        make_server(tmp_path, 0)
    (tmp_path / "index.html").write_text("<h1>manual</h1>")
    httpd = make_server(tmp_path, 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = httpd.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as resp:
            assert resp.read() == b"<h1>manual</h1>"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
