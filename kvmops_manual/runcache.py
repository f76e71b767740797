"""The executed runbooks of earlier builds, so that an unchanged runbook is not run again.

A runbook's plan-mode run against the demo site depends on the runbook's source, the site
(its file and its recorded facts), kvmops itself (every file of the package: procedures,
readers, the shipped sites), the parameters given and the notebook stack that runs it. The
key of a run is the sha256 of all of them (:func:`key`); when a build finds an entry under
that key, it publishes that run instead of running the runbook again.

An entry is two files in the cache folder: ``<key>.ipynb``, the executed notebook as the
journal kept it (scrubbed), and ``<key>.json``, which runbook it is, where and when it ran
(written last: a folder holding only the notebook has no entry). Only successful runs are
stored, and runs given secret parameters never are (their key would be made from the
secret). An entry is read as untrusted input: bounded, its fields checked, its notebook
checked for errors before it is published (:func:`kvmops_manual.notebooks.check`); one that
does not read back is treated as missing, and the runbook runs again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

import kvmops
from kvmops.runbook.discover import RunbookInfo
from kvmops.site import load_site, resolve_site

FORMAT = 1  # of the key and the entries: a change runs every runbook again
STACK = ("papermill", "nbclient", "nbformat", "jupytext", "ipykernel", "jupyter_client")
MAX_ENTRY = 64 << 10  # bytes of an entry's JSON read at most
MAX_NOTEBOOK = 64 << 20  # bytes of an executed notebook used at most
_KEY = re.compile(r"^[0-9a-f]{64}$")
_SKIP_DIRS = {"__pycache__"}


@dataclass(frozen=True)
class Entry:
    """One cached run: its notebook file, the runbook, the site's host name and when it ran."""

    notebook: Path
    runbook: str
    site: str
    when: str


def _tree_hash(top: Path) -> str:
    """The sha256 of every file under ``top`` (relative path and bytes), bytecode left out."""
    h = hashlib.sha256()
    for path in sorted(top.rglob("*")):
        if path.is_dir() or _SKIP_DIRS.intersection(path.relative_to(top).parts) or path.suffix == ".pyc":
            continue
        h.update(path.relative_to(top).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


@cache
def kvmops_hash() -> str:
    """The content hash of the kvmops package's sources (once per process)."""
    return _tree_hash(Path(kvmops.__file__).resolve().parent)


@cache
def site_hash(site: str) -> str:
    """The site file and the files of its recorded facts (the folder they are in)."""
    path = resolve_site(site)
    h = hashlib.sha256(path.read_bytes())
    recorded = load_site(path).recorded
    if recorded:
        h.update(_tree_hash(Path(recorded).resolve().parent).encode())
    return h.hexdigest()


@cache
def stack_versions() -> str:
    """Python and the notebook stack's versions: the executed notebook is their output too."""
    return ";".join([f"python={platform.python_version()}",
                     *(f"{name}={metadata.version(name)}" for name in STACK)])


def key(info: RunbookInfo, site: str, params: Mapping[str, object]) -> str:
    """The key of a plan-mode run of ``info`` against ``site`` with ``params`` (no secrets)."""
    doc = {"format": FORMAT, "runbook": info.name,
           "source": hashlib.sha256(info.path.read_bytes()).hexdigest(),
           "site": site, "site_sha256": site_hash(site), "kvmops": kvmops_hash(),
           "stack": stack_versions(), "params": {k: repr(v) for k, v in sorted(params.items())}}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def cacheable(info: RunbookInfo, params: Mapping[str, object]) -> bool:
    """A run is cached unless it is given a value for a secret parameter."""
    return not any(params.get(name) for name in info.secrets)


class RunCache:
    """The cache folder (made on first store)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, key: str, runbook: str) -> Entry | None:
        """The entry under ``key`` for ``runbook``, or None (missing, damaged or not its own)."""
        if not _KEY.match(key):
            return None
        meta, nb = self.folder / f"{key}.json", self.folder / f"{key}.ipynb"
        try:
            if meta.stat().st_size > MAX_ENTRY or nb.stat().st_size > MAX_NOTEBOOK:
                return None
            data = json.loads(meta.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("runbook") != runbook:
            return None
        site, when = data.get("site"), data.get("when")
        if not isinstance(site, str) or not isinstance(when, str):
            return None
        return Entry(nb, runbook, site, when)

    def put(self, key: str, notebook: Path, runbook: str, site: str, when: str) -> Entry:
        """Store a successful run's notebook under ``key`` (each file replaced in one step)."""
        if not _KEY.match(key):
            raise ValueError(f"not a cache key: {key!r}")
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"{key}.ipynb"
        _atomic_write(target, notebook.read_bytes())
        doc = {"format": FORMAT, "runbook": runbook, "site": site, "when": when}
        _atomic_write(self.folder / f"{key}.json", (json.dumps(doc, indent=1) + "\n").encode())
        return Entry(target, runbook, site, when)

    def prune(self, keep: Iterable[str]) -> None:
        """Remove every entry whose key is not in ``keep`` (the runs of the last build)."""
        kept = set(keep)
        if not self.folder.is_dir():
            return
        for path in self.folder.iterdir():
            if path.suffix in (".json", ".ipynb") and path.stem not in kept:
                path.unlink(missing_ok=True)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
