"""Safety guards from the guide's CAVEATs: pure functions that raise :class:`SafetyError`.

They run inside the command builders and operations, so a forbidden command is never built.
The in-use guards take the host's facts (required, never a caller's list): the running
guests' disks and LVM's open flag, both from one read (:mod:`kvmops.facts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from kvmops.errors import SafetyError

if TYPE_CHECKING:
    from kvmops.facts import HostFacts
    from kvmops.lvm.facts import LV

LVREMOVE_FORBIDDEN = ("-y", "--yes", "-f", "--force", "-ff")


def lvremove_argv(argv: Sequence[str]) -> None:
    """``lvremove`` gets exactly one ``VG/LV`` and never ``-y``, ``--yes``, ``-f``, ``--force``.

    Guide 4.2.3: without an LV name lvremove attempts to delete ALL LVs in the VG.
    """
    if not argv or argv[0] != "lvremove":
        raise SafetyError(f"not an lvremove command: {list(argv)}")
    for arg in argv[1:]:
        if arg in LVREMOVE_FORBIDDEN or arg.startswith("--force") or _short_flags_with(arg, "yf"):
            raise SafetyError(f"lvremove with {arg!r} is forbidden by the guide (4.2.3): never used")
    targets = [a for a in argv[1:] if not a.startswith("-")]
    if len(targets) != 1:
        raise SafetyError(f"lvremove needs exactly one VG/LV, got {targets}: refused")
    vg, sep, lv = targets[0].partition("/")
    if not sep or not vg or not lv or "/" in lv:
        raise SafetyError(
            f"lvremove target {targets[0]!r} is not one exact VG/LV: a VG alone removes every LV in it"
        )


def _short_flags_with(arg: str, letters: str) -> bool:
    """True for a bundle of short flags such as ``-fy`` or ``-vy`` that contains a letter."""
    return arg.startswith("-") and not arg.startswith("--") and any(c in arg[1:] for c in letters)


def not_host_lv(lv: str, prefix: str) -> None:
    """Only LVs that follow the guest naming convention are managed (guide 4.2.1)."""
    if not lv.startswith(prefix) or lv == prefix:
        raise SafetyError(
            f"LV {lv!r} does not start with the guest prefix {prefix!r}: it is a host LV "
            "(root, home, opt, ...) and kvmops never touches those"
        )


def lv_free(facts: HostFacts, lv: LV, action: str) -> None:
    """No snapshot, merge, copy, mapping or removal of an LV that is in use (guide 4.2.5):
    the disk of a running guest, or open by anything (LVM's open flag), whoever the caller."""
    why = facts.lv_in_use(lv)
    if why:
        raise SafetyError(
            f"{action} refused: {lv.path} is in use: {why}. Shut the guest down first (kvmops guest "
            "shutdown NAME --apply), or unmount / `kpartx -d` it; nothing was changed"
        )


def lv_of_no_guest(facts: HostFacts, lv: LV, action: str) -> None:
    """An LV that a defined guest names as a disk stays while that guest is defined."""
    users = facts.guests_with_disk(lv.path)
    if users:
        raise SafetyError(
            f"{action} refused: {lv.path} is a disk of guest {', '.join(users)}; remove the guest "
            "first (runbook guest-remove) or change its definition; nothing was changed"
        )
