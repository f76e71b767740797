"""The notebook stack (jupytext, nbformat, papermill), imported without optional parts that
kvmops never uses and that cost more than the rest of a ``kvmops plan``'s imports:

- jsonschema's format checkers (its "format-nongpl" extra, which JupyterLab's dependencies
  install): jsonschema, imported by nbformat, imports each checker's library when installed,
  and ``rfc3987_syntax`` compiles an Earley grammar at import (0.87 s on 2 cores; the others
  with it about 0.1 s more). nbformat validates with fastjsonschema, uses jsonschema only to
  explain an error, and checks no string formats.
- jupytext's Jupyter contents managers (jupyter_server, tornado; about 0.5 s): they serve
  notebooks in a Jupyter server (``kvmops notebook`` runs one in its own process); kvmops only
  reads percent files. jupytext skips them itself when jupyter_server is not installed.

:func:`load` imports the stack once with those modules marked absent (a ``None`` entry in
``sys.modules`` makes their import raise ImportError, which both libraries expect of optional
parts), then removes the marks. Call it before importing jupytext, nbformat or papermill.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager

FORMAT_CHECKERS = ("rfc3987_syntax", "rfc3986_validator", "rfc3339_validator", "isoduration", "uri_template",
                   "webcolors", "jsonpointer", "fqdn")
CONTENTS_MANAGERS = ("jupytext.sync_contentsmanager", "jupytext.async_contentsmanager")
UNUSED = FORMAT_CHECKERS + CONTENTS_MANAGERS
STACK = ("nbformat", "jupytext")


@contextmanager
def absent(names: tuple[str, ...]) -> Iterator[None]:
    """Within the block, importing any of ``names`` not imported yet raises ImportError."""
    marked = [name for name in names if name not in sys.modules]
    for name in marked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in marked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


def load() -> None:
    """Import jupytext and nbformat (and with them jsonschema) without :data:`UNUSED`."""
    if all(name in sys.modules for name in STACK):
        return
    with absent(UNUSED):
        for name in STACK:
            importlib.import_module(name)
