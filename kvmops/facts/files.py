"""Files on the host, read through its runner (``cat``, ``test -e``)."""

from __future__ import annotations

from kvmops.errors import CommandFailed
from kvmops.guests.hostfile import cat_cmd
from kvmops.runners.base import Runner


def read_text(runner: Runner, path: str) -> str | None:
    """The file's text, or None when it does not exist (any other failure raises)."""
    result = runner.run(cat_cmd(path))
    if result.returncode == 0:
        return result.stdout
    if "No such file" in result.stderr:
        return None
    raise CommandFailed(runner.host, result.cmd.masked_argv(), result.returncode, result.stderr)
