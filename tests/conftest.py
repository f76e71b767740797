"""Test tiers: unit (always), integration (root on Linux), lab (a running lab VM).

Integration tests are marked ``integration`` and skip with a reason when not root.
Property tests run a few hundred cases each; ``KVMOPS_PROPERTY_PROFILE=ci`` (set by
``.ci/run``) runs at least 10,000 per property (tests/support/properties.py).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvmops.runners import faults
from tests.support.properties import load_profile

load_profile()  # hypothesis: dev (quick) or ci ($KVMOPS_PROPERTY_PROFILE=ci: 10,000 cases each)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    not_root = os.geteuid() != 0
    for item in items:
        if "integration" in item.keywords and not_root:
            item.add_marker(pytest.mark.skip(reason="integration tier needs root (loop devices, LVM, netns)"))


def need_tools(*tools: str) -> None:
    """Skip the calling test with a clear reason when a system tool is missing."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"missing system tools: {', '.join(missing)} (run scripts/bootstrap as root)")


SESSION_LOG = "kvmops-session.log"


@pytest.fixture(scope="session", autouse=True)
def _kvmops_session_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every kvmops log line of the session (commands as logged, masked) in one file under the
    session's temp folder, for the secret scan at the end of a tier (test_zz_secrets_scan.py)."""
    path = tmp_path_factory.getbasetemp() / SESSION_LOG
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("kvmops")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield path
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
        handler.close()


@pytest.fixture(autouse=True)
def _locks_of_this_test(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run locks a test takes (kvmops.lock) live in a folder of its own, not the host's."""
    from kvmops.lock import LOCK_DIR_ENV

    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path_factory.mktemp("locks")))


@pytest.fixture(autouse=True)
def _fault_count_from_zero() -> None:
    """The fault hook counts effects per process (kvmops.runners.faults): every test starts
    from zero, whichever test set the same fault before it."""
    faults.reset()
