"""Secrets of a run: handed to the kernel in a private file, scrubbed from everything written.

papermill stores its parameters in the notebook's metadata and in the injected cell, so a
secret is NEVER passed as a parameter. The engine writes the secrets to a 0600 file in a 0700
temporary folder, names it in ``$KVMOPS_SECRETS_FILE`` for the kernel, and removes it after
the run. The kernel takes them at its start (:func:`take_secrets`: read into memory, the file
removed, the variable out of its environment), so no command a cell starts inherits them, nor
any ``KVMOPS_SECRET_*`` (the CLI's way in: never passed to the kernel). Runbooks read them
with :func:`kvmops.notebook.secret`. As defense in depth every occurrence of a secret value is
masked in the executed notebook, the record and the progress.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kvmops.cmd import MASK

SECRETS_ENV = "KVMOPS_SECRETS_FILE"
SECRET_ENV_PREFIX = "KVMOPS_SECRET_"  # noqa: S105 - the CLI's secrets from the environment: a name, not a password
MIN_SCRUB = 3  # shorter values would mask ordinary words; such secrets are refused anyway
_taken: dict[str, str] | None = None  # the secrets the kernel took at its start (take_secrets)


def without_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without ``KVMOPS_SECRETS_FILE`` and any ``KVMOPS_SECRET_*``."""
    return {k: v for k, v in env.items() if k != SECRETS_ENV and not k.startswith(SECRET_ENV_PREFIX)}


def take_secrets() -> None:
    """In the kernel, before the first cell: the handed-over secrets into memory, their file
    removed, and every secret variable out of this process's environment (so out of every
    command it starts)."""
    global _taken
    path = os.environ.get(SECRETS_ENV)
    _taken = read_secrets(path) if path else {}
    if path:
        Path(path).unlink(missing_ok=True)
    for key in [k for k in os.environ if k == SECRETS_ENV or k.startswith(SECRET_ENV_PREFIX)]:
        del os.environ[key]


@contextmanager
def secrets_file(values: dict[str, str]) -> Iterator[Path | None]:
    """A private JSON file with the secrets, removed on every way out (None when no secrets)."""
    if not values:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="kvmops-secrets-"))
    try:
        path = folder / "secrets.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(values, f)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def read_secrets(path: str | None = None) -> dict[str, str]:
    """The secrets the engine handed over (``{}`` outside a kvmops run)."""
    if path is None and _taken is not None:
        return dict(_taken)
    where = path or os.environ.get(SECRETS_ENV)
    if not where or not Path(where).is_file():
        return {}
    data = json.loads(Path(where).read_text())
    return {str(k): str(v) for k, v in data.items()}


class Scrubber:
    """Masks secret values in text and JSON-like data."""

    def __init__(self, values: list[str]) -> None:
        forms: set[str] = set()
        for v in values:
            if len(v) >= MIN_SCRUB:
                forms.add(v)
                forms.add(json.dumps(v)[1:-1])  # as it appears inside a JSON string
        self.forms = sorted(forms, key=len, reverse=True)

    def text(self, s: str) -> str:
        for form in self.forms:
            s = s.replace(form, MASK)
        return s

    def data(self, obj: Any) -> Any:
        """Round-trip through JSON text so that every nested string is masked."""
        if not self.forms:
            return obj
        return json.loads(self.text(json.dumps(obj)))


def scrub_notebook(nb: Any, secret_names: tuple[str, ...], scrub: Scrubber) -> Any:
    """Drop secret names from papermill's metadata and injected cell; mask secret values."""
    import nbformat

    params = nb.metadata.get("papermill", {}).get("parameters", {})
    for name in secret_names:
        params.pop(name, None)
    for cell in nb.cells:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            kept = [ln for ln in cell.source.splitlines() if ln.split("=")[0].strip() not in secret_names]
            cell.source = "\n".join(kept)
    if not scrub.forms:
        return nb
    return nbformat.reads(scrub.text(nbformat.writes(nb)), as_version=4)  # type: ignore[no-untyped-call]
