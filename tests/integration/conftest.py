"""Integration fixtures: the site's VG on a scratch loop-backed PV, so that the host's facts
(which always include LVM's report of the site's VG) can be read on this machine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kvmops.site import load_site
from tests.support.loop import scratch_vg


@pytest.fixture
def site_vg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """VG ``rl_build`` (the guide site's) on a scratch PV, seen only by this test's LVM; its
    files live outside the test's own tmp_path, whose leftovers the tests check."""
    vg = load_site().vg
    folder = tmp_path_factory.mktemp("site-vg")
    with scratch_vg(folder, vg, "64M"):
        yield vg
