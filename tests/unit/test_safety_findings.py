"""What the safety properties over random hosts found (tests/unit/test_safety_properties.py),
each as a plain example: fixed at the root, kept from coming back."""

from __future__ import annotations

import pytest

from kvmops import names
from kvmops.errors import InvalidInput, SafetyError
from kvmops.guests.spec import GuestSpec
from kvmops.guests.validate import check_not_shared
from kvmops.lvm import ops
from kvmops.lvm.facts import LV, VG
from kvmops.lvm.state import LvmState
from kvmops.site import load_site
from tests.support.facts import domain, host_facts

SITE = load_site()
GiB = 1 << 30


def lv(name: str, vg: str = "rl_build", attr: str = "-wi-a-----", origin: str = "", percent: float | None = None) -> LV:
    return LV(name, vg, attr, GiB, origin, percent, None)


@pytest.mark.parametrize("check", [names.lv_name, names.guest_name, names.ifname, names.vg_name])
def test_a_trailing_newline_is_no_valid_name(check: object) -> None:
    """``$`` also matches before a final newline: ``vm\\n`` used to pass as an LV name."""
    with pytest.raises(InvalidInput):
        check("vmweb1\n")  # type: ignore[operator]


def test_lvs_of_another_vg_are_no_snapshots_or_guest_lvs_of_the_sites_vg() -> None:
    """A report listing another VG made ``extend`` plan ``lvresize rl_build/<its snapshot>``."""
    state = LvmState(VG("rl_build", 100 * GiB, 50 * GiB, 4 << 20, 1),
                     (lv("vmweb1"), lv("vmweb1", "data"), lv("vmweb1-snap", "data", "swi-a-s---", "vmweb1", 99.0)))
    assert state.snapshots_of("vmweb1") == ()
    assert [x.path for x in state.guest_lvs("vm")] == ["rl_build/vmweb1"]
    assert ops.extend_full_snapshots(host_facts(state), 80.0, GiB).empty


def test_a_disk_shared_under_its_mapper_name_is_refused() -> None:
    """``/dev/mapper/rl_build-vmweb1`` is the same disk as ``/dev/rl_build/vmweb1``."""
    other = domain("db1", "/dev/mapper/rl_build-vmweb1")
    with pytest.raises(SafetyError, match="guest db1 already uses /dev/rl_build/vmweb1"):
        check_not_shared(SITE, GuestSpec("web1", 1024, 1, ("virbr1.2368",)), [other])


def test_an_lv_is_not_renamed_to_the_missing_disk_of_another_guest() -> None:
    """Renaming onto a name a defined guest names (its disk is missing) would hand the LV to
    that guest too: with lv-rename's redefinitions, two guests on one disk."""
    state = LvmState(VG("rl_build", 100 * GiB, 50 * GiB, 4 << 20, 1), (lv("vmold"),))
    facts = host_facts(state, domains=[domain("web2", "/dev/rl_build/vmweb2")])
    with pytest.raises(SafetyError, match="guest web2 names rl_build/vmweb2 as a disk"):
        ops.rename(facts, "vmold", "vmweb2")
    assert not ops.rename(facts, "vmold", "vmweb3").empty
