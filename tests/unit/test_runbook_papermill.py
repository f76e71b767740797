"""Plain papermill runs a runbook through kvmops' I/O handler (``kvmops://``), and papermill's
own parameter inference parses every parameters line of every runbook."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kvmops.errors import InvalidInput, NotFound
from kvmops.runbook.discover import find_runbook, list_runbooks, parameters_cell, read_notebook
from kvmops.runbook.papermill_io import KvmopsHandler, NotARunbook, notebook_json, runbook_file
from kvmops.runbook.params import ParameterCellError, parse_cell
from tests.support.kernel_probe import PAPERMILL_SAYS

PAPERMILL = Path(sys.executable).parent / "papermill"


def _papermill(tmp_path: Path, source: str, *params: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KVMOPS_")}
    argv = [str(PAPERMILL), source, str(tmp_path / "out.ipynb"), "--no-progress-bar"]
    for i in range(0, len(params), 2):
        argv += ["-p", params[i], params[i + 1]]
    return subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def _printed(path: Path) -> str:
    nb = json.loads(path.read_text())
    out = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            text = o.get("text") or o.get("data", {}).get("text/plain", "")
            out.append("".join(text))
    return "".join(out)


def test_the_papermill_cli_runs_a_runbook_by_name_cleanly(tmp_path: Path) -> None:
    proc = _papermill(tmp_path, "kvmops://lv-snapshot.ipynb", "guest", "influx")
    assert proc.returncode == 0, proc.stderr
    assert all(line.startswith(PAPERMILL_SAYS) for line in proc.stderr.splitlines()), proc.stderr
    printed = _printed(tmp_path / "out.ipynb")
    assert "host demo (recorded facts, plan-only)" in printed  # site "" -> the demo site
    assert "lvcreate --snapshot --name vminflux-" in printed
    assert "plan only: nothing was changed" in printed
    nb = json.loads((tmp_path / "out.ipynb").read_text())
    assert nb["metadata"]["papermill"]["parameters"] == {"guest": "influx"}
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and 'guest = "influx"' in "".join(injected[0]["source"])


def test_papermill_loads_a_runbook_file_by_path() -> None:
    from papermill.iorw import load_notebook_node

    path = find_runbook("lv-create")
    with pytest.warns(UserWarning, match=r"does not end in one of \['.ipynb'"):  # papermill's, documented
        nb = load_notebook_node(f"kvmops://{path}")
    assert nb.metadata.kernelspec.name == "kvmops"  # kvmops/runbook/kernel.py, over IPC
    [cell] = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert cell.source == parameters_cell(read_notebook(path), "lv-create").source


@pytest.mark.parametrize("name", [b.name for b in list_runbooks()])
def test_papermill_infers_every_parameter_of_every_runbook(name: str, caplog: pytest.LogCaptureFixture) -> None:
    from papermill.translators import PythonTranslator

    path = find_runbook(name)
    cell = parameters_cell(read_notebook(path), name)
    with caplog.at_level(logging.WARNING, logger="papermill"):
        inferred = PythonTranslator.inspect(cell)
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    ours = parse_cell(cell.source, name)
    assert [p.name for p in inferred] == [p.name for p in ours]
    assert [p.help for p in inferred] == [p.help for p in ours]


def test_a_parameter_line_papermill_cannot_parse_is_refused() -> None:
    with pytest.raises(ParameterCellError, match=r"line 1: more than one '='.*write ':'"):
        parse_cell('site = ""  # site ("" = the default)\n')
    assert parse_cell('site = ""  # site ("": the default)\n')[0].help == 'site ("": the default)'


def test_addresses_and_refusals(tmp_path: Path) -> None:
    assert runbook_file("kvmops://lv-create") == runbook_file("kvmops://lv-create.ipynb") == find_runbook("lv-create")
    with pytest.raises(NotFound, match="runbooks: .*lv-create"):
        runbook_file("kvmops://no-such-book")
    with pytest.raises(NotFound, match="no runbook file"):
        runbook_file(f"kvmops://{tmp_path}/missing.py")
    with pytest.raises(InvalidInput, match="only reads runbooks"):
        KvmopsHandler.write("{}", "kvmops://lv-create")
    assert "kvmops://lv-snapshot" in KvmopsHandler.listdir("kvmops://")
    bad = tmp_path / "bad.py"
    bad.write_text('# %% tags=["parameters"]\nsite = ""  # x ("" = y)\n')
    with pytest.raises(ParameterCellError):
        notebook_json(f"kvmops://{bad}")
    with pytest.raises(NotARunbook, match="more than one '='"):  # papermill's command line: "Error: ..."
        KvmopsHandler.read(f"kvmops://{bad}")


def test_papermill_finds_the_handler_through_its_entry_point() -> None:
    from papermill.iorw import papermill_io

    assert papermill_io.get_handler("kvmops://lv-create.ipynb") is KvmopsHandler
