"""Safety guards from the guide's CAVEATs: pure functions that raise :class:`SafetyError`.

They run inside the command builders and operations, so a forbidden command is never built.
The guards that need the host's facts (an LV in use) are :func:`kvmops.hostfacts.lv_free`
and :func:`kvmops.hostfacts.lv_of_no_guest`.
"""

from __future__ import annotations

from collections.abc import Sequence

from kvmops.errors import SafetyError

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


