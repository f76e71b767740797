"""The runbook engine end to end with small runbooks: validation before the kernel, the
failure path (non-zero exit naming the step, a record kept), secrets never written."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import pytest

from kvmops.cli.main import main
from kvmops.cmd import MASK
from kvmops.errors import ConfigError, InvalidInput, NotFound
from kvmops.runbook import execute
from kvmops.runbook.discover import list_runbooks
from kvmops.runbook.journal import find_record, list_records
from kvmops.runners.recorded import PlanOnly
from tests.support.secrets import PASSWORDS

HEAD = '''# %% [markdown]
# # {title}
#
# {summary}

# %% tags=["parameters"]
site = ""  # site
apply = False  # apply
confirm = ""  # confirm
{extra}
'''

FAILS = HEAD.format(title="Fails on purpose", summary="A runbook whose second step fails.",
                    extra='guest = "influx"  # the guest') + '''
# %%
from kvmops import notebook as nb
host = nb.open_host(site, apply)

# %% [markdown]
# ## First step

# %%
with nb.step("Read the LVs"):
    from kvmops.lvm import ops
    facts = nb.read(host)
    print(len(facts.lvm.lvs), "LVs")
    nb.execute(host, ops.create(facts, "vmnew", 1 << 30))

# %% [markdown]
# ## Second step

# %%
with nb.step("Break on purpose", if_fails="nothing to do: this is a test"):
    raise RuntimeError("broken on purpose")
'''

SECRET = HEAD.format(title="Uses a secret", summary="Checks a secret it gets from kvmops.",
                     extra='password = ""  # secret: a password\nexpect = ""  # sha256 of the password') + '''
# %%
import hashlib
from kvmops import notebook as nb
pw = nb.secret("password", password)
assert hashlib.sha256(pw.encode()).hexdigest() == expect, "the kernel did not get the secret"
print("leaking on purpose:", pw)
'''

THE_SECRET = PASSWORDS["engine"]


@pytest.fixture(scope="module")
def books(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("runbooks")
    (folder / "fails.py").write_text(FAILS)
    (folder / "secret.py").write_text(SECRET)
    return folder


@pytest.fixture(scope="module")
def failed_run(books: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    journal = tmp_path_factory.mktemp("journal")
    mp = pytest.MonkeyPatch()
    mp.setenv("KVMOPS_RUNBOOKS", str(books))
    try:
        import contextlib
        import io

        err = io.StringIO()
        out = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main(["run", "fails", "--journal", str(journal)])
    finally:
        mp.undo()
    return code, out.getvalue() + err.getvalue(), journal


def test_list_reads_title_summary_and_parameters(books: Path) -> None:
    infos = {i.name: i for i in list_runbooks(books)}
    assert set(infos) == {"fails", "secret"}
    assert infos["fails"].title == "Fails on purpose"
    assert infos["fails"].summary == "A runbook whose second step fails."
    assert infos["secret"].secrets == ("password",)


def test_failing_step_exits_1_names_the_step_and_keeps_a_record(failed_run: tuple[int, str, Path]) -> None:
    code, output, journal = failed_run
    assert code == 1
    assert "FAILED at step 'Break on purpose'" in output
    assert "RuntimeError: broken on purpose" in output
    assert "==> Read the LVs" in output and "8 LVs" in output  # live progress of the step before
    (rec,) = list_records(journal)
    assert rec.status == "failed" and rec.failed_step == "Break on purpose"
    assert rec.error == "RuntimeError: broken on purpose"
    nb = json.loads(Path(rec.notebook).read_text())
    errors = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o["output_type"] == "error"]
    assert errors and errors[0]["evalue"] == "broken on purpose"
    # the demo's facts are data: its journal holds the planned change, nothing executed
    assert [c["command"].split()[:3] for c in rec.commands] == [["lvcreate", "--name", "vmnew"]]
    assert all(c["returncode"] is None and not c["executed"] for c in rec.commands)
    assert rec.params["site"].endswith("sites/demo.toml") and rec.apply is False
    assert rec.user and rec.started <= rec.ended and rec.host == "demo"


def test_journal_lists_and_shows_the_run(failed_run: tuple[int, str, Path],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    _, _, journal = failed_run
    rec = list_records(journal)[0]
    assert main(["journal", "--journal", str(journal)]) == 0
    listing = capsys.readouterr().out
    assert rec.id in listing and "failed at: Break on purpose" in listing
    assert main(["journal", "--journal", str(journal), "show", rec.id[:10]]) == 0
    shown = capsys.readouterr().out
    assert "status    failed at step 'Break on purpose'" in shown
    assert "[planned] lvcreate --name vmnew --size 1g" in shown
    assert find_record(journal, rec.id).id == rec.id
    with pytest.raises(NotFound):
        find_record(journal, "19700101")


def _no_kernel(*_a: object, **_k: object) -> None:
    raise AssertionError("the kernel was started")


@pytest.mark.parametrize("params, kwargs, error, message", [
    ({"guest": "bad name"}, {}, InvalidInput, "parameter guest: guest name 'bad name'"),
    ({"gest": "x"}, {}, InvalidInput, "has no parameter gest; its parameters are: site"),
    ({"apply": "perhaps"}, {}, InvalidInput, "not a boolean"),
    ({}, {"site": "nowhere"}, ConfigError, "no shipped site called 'nowhere'"),
    ({}, {"site": "/nonexistent/site.toml"}, ConfigError, "does not exist"),
    ({}, {"apply": True}, PlanOnly, "plan-only"),
])
def test_bad_input_is_refused_before_the_kernel_starts(
    books: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    params: dict[str, object], kwargs: dict[str, object], error: type[Exception], message: str,
) -> None:
    monkeypatch.setattr(execute, "_papermill", _no_kernel)
    journal = tmp_path / "journal"
    args: dict[str, object] = {"site": None, "apply": False, **kwargs}
    with pytest.raises(error, match=message):
        execute.run_runbook("fails", params, journal_dir=journal, folder=books, **args)  # type: ignore[arg-type]
    assert not journal.exists()


def test_unknown_runbook_lists_the_known_ones(books: Path) -> None:
    with pytest.raises(NotFound, match=r"no runbook 'nope' in .* \(runbooks: fails, secret\)"):
        execute.run_runbook("nope", {}, site=None, apply=False, folder=books)


def test_cli_refuses_bad_parameter_with_exit_2(books: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KVMOPS_RUNBOOKS", str(books))
    monkeypatch.setattr(execute, "_papermill", _no_kernel)
    assert main(["plan", "fails", "-p", "guest", "a b", "--journal", str(tmp_path / "j")]) == 2
    assert "parameter guest" in capsys.readouterr().err
    assert not (tmp_path / "j").exists()


def test_a_secret_reaches_the_kernel_and_is_never_written(books: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    private = tmp_path / "tmp"  # the hand-over file's folder, apart from other runs on this machine
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    lines: list[str] = []
    rec = execute.run_runbook(
        "secret",
        {"password": THE_SECRET, "expect": hashlib.sha256(THE_SECRET.encode()).hexdigest()},
        site=None, apply=False, journal_dir=tmp_path / "journal", progress=lines.append, folder=books,
    )
    assert rec.status == "ok", rec.error  # the kernel checked the hash of what it received
    assert rec.params["password"] == MASK
    written = [p for p in (tmp_path / "journal").rglob("*") if p.is_file()]
    assert {p.name for p in written} == {"notebook.ipynb", "record.json"}
    for p in written:
        assert THE_SECRET not in p.read_text(), p
    nb = json.loads(Path(rec.notebook).read_text())
    assert "password" not in nb["metadata"]["papermill"]["parameters"]
    assert f"leaking on purpose: {MASK}" in json.dumps(nb)
    assert not any(THE_SECRET in ln for ln in lines) and any(f"leaking on purpose: {MASK}" in ln for ln in lines)
    assert list(private.iterdir()) == []  # the hand-over file and its folder are gone
    assert "KVMOPS_SECRETS_FILE" not in os.environ


def test_a_too_short_secret_is_refused(books: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(execute, "_papermill", _no_kernel)
    with pytest.raises(InvalidInput, match="secret password is shorter"):
        execute.run_runbook("secret", {"password": "ab"}, site=None, apply=False, folder=books)
