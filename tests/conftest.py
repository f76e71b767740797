"""Test tiers: unit (always), integration (root on Linux), lab (a running lab VM).

Integration tests are marked ``integration`` and skip with a reason when not root.
"""

from __future__ import annotations

import os
import shutil

import pytest


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
