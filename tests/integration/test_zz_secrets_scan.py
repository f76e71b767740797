"""Last test of the integration tier: no password or private key the tests used appears in
any output of this session.

Not marked integration: it only reads. Scanned: everything below the session's temp folder
that is an output (executed notebooks, journal records, command logs, the built manual with
its search index, CLI output the tests saved) and the session's kvmops log (tests/conftest.py).
See tests/support/secrets.py.
"""

from __future__ import annotations

import pytest

from tests.conftest import SESSION_LOG
from tests.support.secrets import outputs, scan


def test_no_secret_in_any_output_of_this_session(tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.getbasetemp()
    assert (base / SESSION_LOG).is_file()
    scanned = outputs(base)
    hits = [(str(p.relative_to(base)), what) for p, what in scan(base)]
    assert hits == [], f"secrets found in {len(hits)} places (of {len(scanned)} outputs): {hits[:20]}"

