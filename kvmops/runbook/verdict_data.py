"""A backup's boot verdict as data, kept in the executed notebook of ``lv-backup-verify``.

An applied run shows the verdict (the JSON that is also kept beside a backup in a repository:
:func:`kvmops.procedures.lv_backup_verify.verdict_text`) as a display output of MIME type
:data:`MIME`, beside one line of ``text/plain``. The manual reads the backup's stamp back with
:func:`stamp_in` when the run proved "the newest" (no ``backup`` parameter): the journal's
record names the guest, the notebook which backup was proven. No secrets: names and stamps.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from kvmops.transfer.manifest import STAMP_FORMAT

MIME = "application/vnd.kvmops.backup-verdict+json"


def summary(data: dict[str, Any]) -> str:
    return (f"verdict kept for the manual: backup {data.get('stamp')} of {data.get('guest')}: "
            + ("ok" if data.get("ok") is True else "FAILED"))


def keep_verdict(apply: bool, text: str) -> None:
    """Show the verdict ``text`` (JSON) as data in the notebook; plan mode has no verdict."""
    if not apply:
        return
    data = json.loads(text)
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        print(summary(data))
        return
    if get_ipython() is None:
        print(summary(data))
    else:
        display({MIME: data, "text/plain": summary(data)}, raw=True)  # type: ignore[no-untyped-call]


def stamp_in(nb: Any, guest: str) -> str:
    """The stamp of the backup of ``guest`` an executed notebook (nbformat dict, untrusted)
    keeps a verdict of, "" when it keeps none that is well formed."""
    cells = nb.get("cells") if isinstance(nb, dict) else None
    for cell in cells if isinstance(cells, list) else []:
        outputs = cell.get("outputs") if isinstance(cell, dict) else None
        for out in outputs if isinstance(outputs, list) else []:
            found = out.get("data") if isinstance(out, dict) else None
            data = found.get(MIME) if isinstance(found, dict) else None
            if isinstance(data, dict) and data.get("guest") == guest and _stamp(data.get("stamp")):
                return str(data["stamp"])
    return ""


def _stamp(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.strptime(value, STAMP_FORMAT)
    except ValueError:
        return False
    return True
