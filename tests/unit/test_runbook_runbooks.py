"""Every runbook in runbooks/ executed in plan mode against the demo site (recorded facts +
libvirt test driver); the plan must hold the expected commands. Each runbook runs once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kvmops.cmd import MASK
from kvmops.runbook.discover import list_runbooks
from kvmops.runbook.execute import run_runbook
from kvmops.runbook.journal import RunRecord
from tests.support.demo_plans import CASES
from tests.support.secrets import PASSWORDS


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RunRecord]:
    journal = tmp_path_factory.mktemp("journal")
    return {name: run_runbook(name, params, site="demo", apply=False, journal_dir=journal)
            for name, (params, _, _) in CASES.items()}


def _output(rec: RunRecord) -> str:
    nb = json.loads(Path(rec.notebook).read_text())
    texts = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            texts.append("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)


def test_every_runbook_has_a_case() -> None:
    assert {b.name for b in list_runbooks()} == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_plan_against_the_demo_site(runs: dict[str, RunRecord], name: str) -> None:
    rec = runs[name]
    assert rec.status == "ok", f"{rec.failed_step}: {rec.error}"
    _, commands, texts = CASES[name]
    planned = [c["command"] for c in rec.commands if c["mutates"]]
    assert all(not c["executed"] for c in rec.commands if c["mutates"])  # plan mode: nothing ran
    assert len(planned) == len(commands), planned
    for want, got in zip(commands, planned, strict=True):
        assert got.startswith(want), (want, got)
    out = _output(rec)
    for text in texts:
        assert text in out, text
    assert "plan only" in out


@pytest.mark.parametrize("name", ["guest-create", "image-tweak"])
def test_a_secret_is_in_no_file(runs: dict[str, RunRecord], name: str) -> None:
    rec = runs[name]
    assert rec.params["password"] == MASK
    for path in Path(rec.record).parent.iterdir():
        assert PASSWORDS["runbooks"] not in path.read_text(), path


@pytest.mark.parametrize("name", sorted(CASES))
def test_runbook_shape(name: str) -> None:
    """One parameters cell with site/apply/confirm, a title, and a plan shown before changes."""
    info = {b.name: b for b in list_runbooks()}[name]
    assert [p.name for p in info.parameters][:3] == ["site", "apply", "confirm"]
    assert [p.default for p in info.parameters][:3] == ["", False, ""]
    assert info.title and info.summary
    text = info.path.read_text()
    assert text.count('tags=["parameters"]') == 1
    assert "If this step fails" in text or "if_fails" in text
