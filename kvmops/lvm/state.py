"""The LVM state of a host: one ``lvs`` and one ``vgs`` report, read at the edge."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from kvmops.errors import NotFound
from kvmops.lvm.facts import LV, VG

ACTIVATION_DISABLED = "Activation disabled. No device-mapper interaction will be attempted."


@dataclass(frozen=True)
class LvmState:
    """All LVs and the VG of the site, from one report each.

    ``activation_disabled``: LVM said so itself (its ``Activation disabled`` warning, on hosts
    without device-mapper): no LV can be active, hence none open, though the report shows
    ``X`` for both states.
    """

    vg: VG
    lvs: tuple[LV, ...]
    activation_disabled: bool = False

    def is_open(self, lv: LV) -> bool | None:
        """LVM's open flag; False when activation is off; None when LVM cannot tell."""
        if lv.open is None and self.activation_disabled:
            return False
        return lv.open

    @cached_property
    def _by_name(self) -> dict[str, LV]:
        return {lv.name: lv for lv in self.lvs if lv.vg == self.vg.name}

    @cached_property
    def _snapshots(self) -> dict[str, tuple[LV, ...]]:
        out: dict[str, list[LV]] = {}
        for lv in self._by_name.values():  # of the site's VG only, like get()
            if lv.is_snapshot:
                out.setdefault(lv.origin, []).append(lv)
        return {origin: tuple(snaps) for origin, snaps in out.items()}

    def get(self, name: str) -> LV | None:
        return self._by_name.get(name)

    def need(self, name: str) -> LV:
        lv = self.get(name)
        if lv is None:
            raise NotFound(
                f"LV {self.vg.name}/{name} does not exist (see `kvmops lv list`)"
            )
        return lv

    def snapshots_of(self, origin: str) -> tuple[LV, ...]:
        return self._snapshots.get(origin, ())

    def guest_lvs(self, prefix: str) -> tuple[LV, ...]:
        """LVs of the site's VG that follow the guest naming convention; host LVs are left out."""
        return tuple(lv for lv in self._by_name.values() if lv.name.startswith(prefix) and lv.name != prefix)


