"""A guest root as a dict, answering the reads of :func:`kvmops.images.imagefs.read_image`
(``chroot ROOT cat|stat|stat -L|readlink|ls``) the way coreutils inside a real image does;
every other command is recorded, not run. For unit tests of tweak plans."""

from __future__ import annotations

from collections.abc import Mapping

from kvmops.cmd import Cmd, Result
from kvmops.runners.base import LineSink, Runner

ROOT = "/run/kvmops/mnt-test"


class FakeImage(Runner):
    """``files``: path -> content; ``dirs``: folders; ``links``: path -> target; ``stats``:
    path -> ``kind|mode|uid|gid`` overriding the defaults (file 644, folder 755, root-owned)."""

    def __init__(self, files: Mapping[str, str], dirs: tuple[str, ...] = (), links: Mapping[str, str] | None = None,
                 stats: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.host = "fake"
        self.files, self.links, self.stats = dict(files), dict(links or {}), dict(stats or {})
        self.dirs = {"/", *(a for p in [*self.files, *self.links, *dirs] for a in _ancestors(p)), *dirs}

    def _execute(self, cmd: Cmd, on_line: LineSink | None) -> Result:
        a = cmd.argv
        if cmd.mutates or a[:2] != ("chroot", ROOT):
            return Result(cmd, self.host, 0, "", "", 0.0, executed=False)
        verb = a[2]
        if verb == "cat":
            return self._answer(cmd, self.files.get(a[3]))
        if verb == "readlink":
            return self._answer(cmd, self.links.get(a[3]))
        if verb == "ls":
            return self._answer(cmd, self._ls(a[-1]))
        if verb == "stat" and a[3] == "-L":
            found = [p for p in a[a.index("--") + 1:] if self._exists(p)]
            return Result(cmd, self.host, 0, "".join(p + "\n" for p in found), "", 0.0)
        if verb == "stat":
            lines = [f"{self._stat(p)}|{p}\n" for p in a[a.index("--") + 1:] if self._stat(p)]
            return Result(cmd, self.host, 0, "".join(lines), "", 0.0)
        raise AssertionError(f"unexpected read {a}")

    def _exists(self, path: str) -> bool:
        target = self.links.get(path)
        if target is not None:
            return self._exists(target)
        return path in self.files or path in self.dirs

    def _stat(self, path: str) -> str | None:
        if path in self.stats:
            return self.stats[path]
        if path in self.links:
            return "symbolic link|777|0|0"
        if path in self.files:
            return "regular file|644|0|0"
        return "directory|755|0|0" if path in self.dirs else None

    def _ls(self, folder: str) -> str | None:
        if folder not in self.dirs:
            return None
        inside = {p[len(folder) + 1:].split("/")[0] for p in [*self.files, *self.dirs, *self.links]
                  if p.startswith(folder + "/")}
        return "".join(n + "\n" for n in sorted(inside))

    def _answer(self, cmd: Cmd, out: str | None) -> Result:
        return Result(cmd, self.host, 0 if out is not None else 1, out or "", "", 0.0)


def _ancestors(path: str) -> list[str]:
    """``/a/b/c`` -> ``/a``, ``/a/b``."""
    parts = path.strip("/").split("/")[:-1]
    return ["/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)]
