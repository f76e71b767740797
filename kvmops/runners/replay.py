"""The replay runner: answers read-only commands from recorded real outputs (plan-only).

A replay folder holds ``index.json`` and one file per recorded output::

    {"commands": [{"argv": ["vgs", "--reportformat", "json", ...],
                   "stdout": "vgs-3f2a9c1b7d0e.out", "returncode": 0, "stderr": ""}]}

Output files are named by :func:`key`, a stable hash of the argv, so re-recording a command
replaces its file. The demo site (``kvmops/sites/demo.toml``) uses it: plans are computed from
real-looking facts on a machine without a KVM host. Mutating commands are refused: a replay
site can show a plan, never apply one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from kvmops.cmd import Cmd, Result
from kvmops.errors import ConfigError, KvmopsError, NotFound
from kvmops.runners.base import LineSink, Runner

INDEX = "index.json"


class ReplayRefused(KvmopsError):
    """A mutating command (or apply) was asked of a replay site, which is plan-only."""


def key(argv: tuple[str, ...] | list[str]) -> str:
    """A stable file-name key for an argv: ``lvs-<12 hex digits>``."""
    digest = hashlib.sha256("\0".join(argv).encode()).hexdigest()[:12]
    stem = Path(argv[0]).name if argv else "cmd"
    return f"{stem}-{digest}"


@dataclass(frozen=True)
class Recorded:
    """One recorded command: its output file, exit code and stderr."""

    argv: tuple[str, ...]
    stdout_file: str
    returncode: int = 0
    stderr: str = ""


def load_index(folder: Path) -> dict[tuple[str, ...], Recorded]:
    """Read ``index.json``; a broken index names the file and what is wrong."""
    path = folder / INDEX
    try:
        data = json.loads(path.read_text())
        entries = data["commands"]
        out = {}
        for e in entries:
            rec = Recorded(tuple(e["argv"]), e["stdout"], int(e.get("returncode", 0)), e.get("stderr", ""))
            out[rec.argv] = rec
        return out
    except FileNotFoundError:
        raise ConfigError(f"replay folder {folder} has no {INDEX}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: not a replay index ({exc})") from None


def record(folder: Path, argv: tuple[str, ...], stdout: str, returncode: int = 0, stderr: str = "") -> Path:
    """Add (or replace) one recorded command in a replay folder; returns the output file."""
    folder.mkdir(parents=True, exist_ok=True)
    index = load_index(folder) if (folder / INDEX).exists() else {}
    name = key(argv) + ".out"
    (folder / name).write_text(stdout)
    index[argv] = Recorded(argv, name, returncode, stderr)
    entries = [
        {"argv": list(r.argv), "stdout": r.stdout_file, "returncode": r.returncode, "stderr": r.stderr}
        for r in sorted(index.values(), key=lambda r: r.argv)
    ]
    lines = ",\n".join("  " + json.dumps(e) for e in entries)
    (folder / INDEX).write_text('{"commands": [\n' + lines + "\n]}\n")
    return folder / name


class ReplayRunner(Runner):
    """Answers read-only commands from ``facts_dir``; refuses every mutating command."""

    def __init__(self, facts_dir: str | Path, host: str = "replay") -> None:
        super().__init__()
        self.folder = Path(facts_dir)
        self.host = host
        self._index = load_index(self.folder)

    @property
    def executes_mutations(self) -> bool:
        return False

    def _execute(self, cmd: Cmd, on_line: LineSink | None) -> Result:
        if cmd.mutates:
            raise ReplayRefused(
                f"`{cmd.display()}` changes the host, but {self.host} replays recorded outputs "
                "(plan-only): run without apply, or use the site file of a real host"
            )
        rec = self._index.get(cmd.argv)
        if rec is None:
            raise NotFound(
                f"{self.host} has no recorded output for `{cmd.display()}` "
                f"(replay folder {self.folder}): record it with "
                "kvmops.runners.replay.record(folder, argv, stdout) from a real run"
            )
        stdout = (self.folder / rec.stdout_file).read_text()
        if on_line is not None:
            for line in stdout.splitlines():
                if line.strip():
                    on_line(line)
        return Result(cmd, self.host, rec.returncode, stdout, rec.stderr, 0.0)
