"""Last test of the unit tier (and of a whole run: tests/unit is collected last): no password
or private key the tests used appears in any output of this session.

Scanned: everything below the session's temp folder that is an output (executed notebooks,
journal records, command logs, the built manual with its search index, CLI output the tests
saved) and the session's kvmops log (tests/conftest.py). See tests/support/secrets.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import SESSION_LOG
from tests.support.secrets import PASSWORDS, forget_last_key, forms, outputs, register_key, scan


def test_no_secret_in_any_output_of_this_session(tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.getbasetemp()
    assert (base / SESSION_LOG).is_file()
    scanned = outputs(base)
    hits = [(str(p.relative_to(base)), what) for p, what in scan(base)]
    assert hits == [], f"secrets found in {len(hits)} places (of {len(scanned)} outputs): {hits[:20]}"


def test_the_scan_finds_planted_secrets(tmp_path: Path) -> None:
    """The scan is not blind: each form of a secret and a key marker are found (a test of the test)."""
    planted = tmp_path / "leaks"  # not "planted-": this scan must see them; removed below
    planted.mkdir()
    pw = 'tw"eak<pw>&' + PASSWORDS["tweak"]  # every escaping differs
    register_key("-----BEGIN OPENSSH PRIVATE KEY-----\n" + "A" * 70 + "\n-----END OPENSSH PRIVATE KEY-----\n")
    try:
        variants = sorted(forms(pw))
        assert len(variants) == 4
        for i, form in enumerate(variants):
            (planted / f"leak{i}.json").write_text(f'{{"x": "{form}"}}')
        (planted / "key.log").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
        (planted / "body.html").write_text("<pre>" + "A" * 70 + "</pre>")
        (planted / "disk.raw").write_text(PASSWORDS["tweak"])  # an input, not an output: not scanned
        found = sorted((p.name, what) for p, what in scan(planted))
        # the key line is reported by the number of the first registered key holding it
        # (how many keys the session registered before depends on the tiers that ran)
        keyed = [what for name, what in found if name == "body.html"]
        assert len(keyed) == 1 and keyed[0].startswith("key #") and keyed[0].endswith(" line 1")
        rest = [f for f in found if f[0] != "body.html"]
        assert rest == sorted([("key.log", "PRIVATE KEY-----"), *((f"leak{i}.json", "tweak") for i in range(4))])
    finally:
        forget_last_key()
        shutil.rmtree(planted)
