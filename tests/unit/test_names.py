from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from kvmops import names
from kvmops.errors import InvalidInput

BAD_LV = ["", "a b", "a/b", "..", "x..y", "-rf", "a;b", "a$b", "a`b", "a|b", "x" * 65, "snapshot1",
          "vm_tmeta", "pvmove0", "a\nb", "ä"]


@pytest.mark.parametrize("name", BAD_LV)
def test_lv_name_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        names.lv_name(name)


@pytest.mark.parametrize("name", ["vmtest1", "vminfluxdb", "vmvgcn-test2", "vm_a.b+c", "x" * 64])
def test_lv_name_accepted(name: str) -> None:
    assert names.lv_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", "a b", "a/b", ".x", "x" * 49, "a:b", "a..b"])
def test_guest_name_refused(name: str) -> None:
    with pytest.raises(InvalidInput):
        names.guest_name(name)


def test_ifname_limit_is_15() -> None:
    assert names.ifname("virbr1.2368") == "virbr1.2368"
    with pytest.raises(InvalidInput, match="at most 15"):
        names.ifname("ens802f1.2368000")


def test_snapshot_name_is_utc_with_z() -> None:
    cet = timezone(timedelta(hours=1))
    when = datetime(2024, 10, 6, 16, 18, tzinfo=cet)
    assert names.snapshot_name("vmtest1", when) == "vmtest1-20241006T1518Z"
    assert names.snapshot_time("vmtest1-20241006T1518Z") == datetime(2024, 10, 6, 15, 18, tzinfo=UTC)
    assert names.snapshot_time("vmtest1") is None


def test_snapshot_name_needs_a_time_zone() -> None:
    with pytest.raises(InvalidInput, match="time zone"):
        names.snapshot_name("vmtest1", datetime(2024, 10, 6, 16, 18))
