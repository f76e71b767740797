"""Plain papermill runs a runbook: ``papermill kvmops://lv-snapshot out.ipynb -p guest test1``.

papermill reads only JSON notebooks; the runbooks are jupytext percent files. This I/O handler
(entry point group ``papermill.io``, scheme ``kvmops://``) hands papermill the runbook as a
notebook, read in memory exactly as ``kvmops run`` reads it:

- ``kvmops://NAME.ipynb`` or ``kvmops://NAME``: the runbook NAME (``$KVMOPS_RUNBOOKS``, else
  the ones shipped in kvmops); with ``.ipynb`` papermill does not warn about the extension;
- ``kvmops://PATH``: a percent file (PATH holds a ``/`` or ends in ``.py``; relative to the
  working directory, ``kvmops:///abs/path.py`` absolute).

It only reads: the executed notebook goes to an ordinary output path. An address that names no
runbook (``kvmops://..``, ``kvmops://NAME?x``) is a clear error (papermill prints ``Error:`` and
the reason), never a traceback. What ``kvmops run``
adds on top (parameter validation before the kernel starts, the journal, secrets kept out of
the record) is not part of a plain papermill run.
"""

from __future__ import annotations

from pathlib import Path

import click

from kvmops.errors import InvalidInput, KvmopsError, NotFound
from kvmops.runbook.discover import find_runbook, info_of, list_runbooks, read_notebook

SCHEME = "kvmops://"
NOTEBOOK_SUFFIX = ".ipynb"


def runbook_file(url: str) -> Path:
    """The runbook file a ``kvmops://`` address names (NotFound says what exists)."""
    if not url.startswith(SCHEME):
        raise InvalidInput(f"{url!r} is not a kvmops:// address (e.g. kvmops://lv-snapshot.ipynb)")
    rest = url[len(SCHEME):]
    if any(c in rest for c in "?#") or any(c.isspace() or not c.isprintable() for c in rest):
        raise InvalidInput(f"{url!r}: a kvmops:// address is a runbook name or a path, without ?, # or spaces "
                           "(e.g. kvmops://lv-snapshot.ipynb)")
    if "/" not in rest and not rest.endswith(".py"):
        return find_runbook(rest.removesuffix(NOTEBOOK_SUFFIX))
    path = Path(rest).expanduser()
    if not path.is_file():
        raise NotFound(f"{url}: no runbook file {path} (give kvmops://NAME, or a path to a runbook .py)")
    return path


def notebook_json(url: str) -> str:
    """The runbook as nbformat v4 JSON, its parameters cell checked like ``kvmops run`` does."""
    import nbformat

    path = runbook_file(url)
    nb = read_notebook(path)
    info_of(path, nb)  # a malformed parameters cell is an error here, not a papermill warning
    text: str = nbformat.writes(nb)  # type: ignore[no-untyped-call]
    return text


class NotARunbook(click.ClickException, KvmopsError):
    """An address that names no runbook: papermill's command line (click) prints ``Error:``
    and the message, no traceback; for a caller in Python it is a KvmopsError."""


class KvmopsHandler:
    """papermill's I/O handler protocol: ``read``, ``write``, ``listdir``, ``pretty_path``."""

    @classmethod
    def read(cls, path: str) -> str:
        try:
            return notebook_json(path)
        except KvmopsError as exc:
            raise NotARunbook(str(exc)) from None

    @classmethod
    def write(cls, buf: str, path: str) -> None:
        raise InvalidInput(f"{path}: kvmops:// only reads runbooks; write the executed notebook to a "
                           "local path such as out.ipynb")

    @classmethod
    def listdir(cls, path: str) -> list[str]:
        return [SCHEME + info.name for info in list_runbooks()]

    @classmethod
    def pretty_path(cls, path: str) -> str:
        return path
