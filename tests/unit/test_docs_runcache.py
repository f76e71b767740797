"""The manual's runbooks in parallel and cached: a runbook that did not change is not run again
(its earlier run is published, byte for byte), one that changed is; a failing runbook still
fails the build; runs given a secret are never cached; a damaged entry is run again."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from kvmops.runbook.discover import list_runbooks
from kvmops_manual import notebooks, runcache
from kvmops_manual.produce import produce
from tests.support.secrets import PASSWORDS

TINY = textwrap.dedent('''\
    # %% [markdown]
    # # {title}
    #
    # Prints a line.

    # %% tags=["parameters"]
    site = ""  # site
    apply = False  # apply
    confirm = ""  # confirm
    word = "hello"  # a word to print
    token = ""  # secret: a token

    # %%
    import datetime
    print(word, datetime.datetime.now().isoformat())
''')


def folder_with(tmp_path: Path, **runbooks: str) -> Path:
    folder = tmp_path / "runbooks"
    folder.mkdir(exist_ok=True)
    for name, text in runbooks.items():
        (folder / f"{name}.py").write_text(text)
    return folder


def run(tmp_path: Path, folder: Path, lines: list[str], **kw: object) -> dict[str, bytes]:
    produce(tmp_path / "docs", runbooks=folder, progress=lines.append, cache=tmp_path / "cache", jobs=2, **kw)
    gen = tmp_path / "docs/runbooks/generated"
    return {p.stem: p.read_bytes() for p in gen.glob("*.ipynb")}


def test_an_unchanged_runbook_is_published_from_the_cache_and_a_changed_one_runs(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, one=TINY.format(title="One"), two=TINY.format(title="Two"))
    first: list[str] = []
    before = run(tmp_path, folder, first)
    assert sorted(before) == ["one", "two"] and not [ln for ln in first if "(cached)" in ln]
    again: list[str] = []
    assert run(tmp_path, folder, again) == before  # the same bytes: nothing ran
    assert len([ln for ln in again if "(cached)" in ln]) == 2 and not [ln for ln in again if "running" in ln]
    (folder / "two.py").write_text(TINY.format(title="Two").replace("Prints a line.", "Prints one line."))
    third: list[str] = []
    after = run(tmp_path, folder, third)
    assert after["one"] == before["one"] and after["two"] != before["two"]
    assert "docs: runbook two: running" in third and "docs: runbook one: running" not in third
    assert len(list((tmp_path / "cache").glob("*.ipynb"))) == 2  # the old entry of two is gone


def test_the_key_names_everything_a_run_depends_on(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, one=TINY.format(title="One"))
    (info,) = list_runbooks(folder)
    k = runcache.key(info, "demo", {})
    assert k == runcache.key(info, "demo", {}) and len(k) == 64
    assert runcache.key(info, "demo", {"word": "bye"}) != k
    assert runcache.key(info, "demo2", {}) != k
    (folder / "one.py").write_text(TINY.format(title="One!"))
    assert runcache.key(info, "demo", {}) != k
    assert len(runcache.kvmops_hash()) == 64


def test_a_run_given_a_secret_is_not_cached(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, one=TINY.format(title="One"))
    secret = PASSWORDS["docs"]
    lines: list[str] = []
    run(tmp_path, folder, lines, params={"one": {"token": secret}})
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())
    again: list[str] = []
    run(tmp_path, folder, again, params={"one": {"token": secret}})
    assert "docs: runbook one: running" in again
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert not [ln for ln in lines + again if secret in ln]


def test_a_damaged_entry_is_run_again(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, one=TINY.format(title="One"))
    run(tmp_path, folder, [])
    (entry,) = (tmp_path / "cache").glob("*.json")
    entry.write_text(json.dumps({"format": 1, "runbook": "other", "site": "demo", "when": "x"}))
    lines: list[str] = []
    run(tmp_path, folder, lines)
    assert "docs: runbook one: running" in lines


def test_a_failing_runbook_fails_the_parallel_build_and_nothing_is_cached_for_it(tmp_path: Path) -> None:
    broken = TINY.format(title="Broken").replace("print(word", "raise RuntimeError('broken on purpose'); print(word")
    folder = folder_with(tmp_path, a=broken, b=TINY.format(title="B"), c=TINY.format(title="C"))
    with pytest.raises(notebooks.RunbookFailed, match=r"runbook a failed .*broken on purpose"):
        run(tmp_path, folder, [])
    assert not (tmp_path / "docs/runbooks/generated/manifest.json").exists()
    cached = sorted(json.loads(p.read_text())["runbook"] for p in (tmp_path / "cache").glob("*.json"))
    assert "a" not in cached  # the others, if they ended, are kept for the next build
    (folder / "a.py").write_text(TINY.format(title="A"))
    lines: list[str] = []
    run(tmp_path, folder, lines)
    assert sorted(ln for ln in lines if ln.endswith(": running")) == \
        [f"docs: runbook {n}: running" for n in "abc" if n not in cached]
