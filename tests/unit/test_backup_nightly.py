"""``kvmops backup nightly``: each guest in turn, a failure does not stop the others, the
summary and the exit code; the guests lv-backup can copy; the CLI's refusals."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

from kvmops.cli.main import main
from kvmops.errors import KvmopsError
from kvmops.procedures import backup_nightly as bn
from kvmops.procedures.base import Verdict
from tests.unit.test_lv_backup import SOURCE


def _fake(results: dict[str, Verdict | Exception]) -> tuple[list[str], Callable[[str], Verdict]]:
    called: list[str] = []

    def one(guest: str) -> Verdict:
        called.append(guest)
        r = results[guest]
        if isinstance(r, Exception):
            raise r
        return r

    return called, one


def test_every_guest_is_tried_and_a_failure_is_its_own_outcome() -> None:
    called, one = _fake({"web1": Verdict.of([(True, "archive web1-x is a complete backup")]),
                         "db1": KvmopsError("VG rl_build has 1.00 GiB free; the snapshots need 5.00 GiB"),
                         "mail": Verdict.of([(False, "archive mail-x is a complete backup (its manifest ...)")])})
    ticks = iter(range(100))
    out = bn.nightly([("web1", ""), ("db1", ""), ("win", "its disk is a file"), ("mail", "")], one,
                     clock=lambda: float(next(ticks)))
    assert called == ["web1", "db1", "mail"]  # one at a time, the skipped one never tried
    assert [(o.guest, o.ok, o.skipped) for o in out] == [("web1", True, False), ("db1", False, False),
                                                         ("win", True, True), ("mail", False, False)]
    text = bn.summary(out)
    assert text.splitlines() == [
        "web1: ok (1 s)",
        "db1: FAILED (1 s): KvmopsError: VG rl_build has 1.00 GiB free; the snapshots need 5.00 GiB",
        "win: skipped (0 s): skipped: its disk is a file",
        "mail: FAILED (1 s): FAILED: archive mail-x is a complete backup (its manifest ...)",
        "1 guest(s) backed up, 2 failed, 1 skipped"]
    assert bn.exit_code(out) == 1
    assert bn.exit_code(bn.nightly([("web1", "")], _fake({"web1": Verdict.of([(True, "ok")])})[1])) == 0


def test_the_guests_lv_backup_can_copy() -> None:
    found = dict(bn.guests_of(SOURCE))
    assert set(found) == {d.name for d in SOURCE.domains}
    assert found["influx"] == "" and found["test1"] == ""
    assert all(why.startswith("guest ") for why in found.values() if why)


def _cli(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(argv))
    return code, err.getvalue()


def test_the_cli_refuses_clearly_without_a_repository_or_with_a_bad_retention() -> None:
    code, err = _cli("backup", "nightly", "--site", "demo")
    assert code == 2 and "names no backup repository" in err
    code, err = _cli("backup", "nightly", "--site", "demo", "--keep", "forever")
    assert code == 2 and "retention 'forever'" in err
