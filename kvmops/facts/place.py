"""A backup place as the run sees it: a host to run commands on, and what it holds (read
through that host's runner, read-only, also in plan mode)."""

from __future__ import annotations

from dataclasses import replace

from kvmops.cmd import read
from kvmops.errors import KvmopsError
from kvmops.host import Host, connect
from kvmops.runners import LocalRunner, PlanRunner, SSHRunner
from kvmops.runners.base import Runner
from kvmops.site import Site
from kvmops.transfer.commands import TOOL_PATHS
from kvmops.transfer.manifest import MANIFEST
from kvmops.transfer.place import MAX_MANIFEST, Place, PlaceFacts, _backups


def place_host(place: Place, base: Site, *, apply: bool) -> Host:
    """The place as a host the executor can run commands on (only its runner is used): the
    site's own host, or this machine, or ``user@host`` over SSH (strict host keys)."""
    if place.site is not None:
        return connect(place.site, apply=apply)
    runner: Runner = LocalRunner(place.label) if place.ssh is None else SSHRunner(place.ssh)
    site = replace(base, name=place.label, ssh=place.ssh.destination if place.ssh else "", recorded="")
    return Host(site, runner if apply else PlanRunner(runner), "")


def read_place(place: Place, host: Host) -> PlaceFacts:
    """What the place holds: its folder tree and manifests (read-only, also in plan mode)."""
    runner = host.runner
    have = runner.run(read("ls", "-1d", "--", *TOOL_PATHS.values(), ok=(0, 1, 2))).stdout.split()
    tools = frozenset(t for t, path in TOOL_PATHS.items() if path in have)
    res = runner.run(read("find", place.directory, "-mindepth", "1", "-maxdepth", "3", "-printf", r"%y\t%s\t%P\n",
                          ok=(0, 1)))
    if res.returncode != 0:
        if "No such file" not in res.stderr:
            raise KvmopsError(f"cannot list the backup place {place}: {res.stderr.strip()}")
        return PlaceFacts(place, False, (), tools)
    entries = [ln.split("\t", 2) for ln in res.stdout.splitlines() if ln.count("\t") >= 2]
    manifests = [p for kind, _, p in entries if kind == "f" and p.endswith("/" + MANIFEST) and p.count("/") == 2]
    texts = _heads(runner, place.directory, manifests)
    return PlaceFacts(place, True, _backups(place, [(k, int(s), p) for k, s, p in entries], texts), tools)


def _heads(runner: Runner, top: str, rels: list[str]) -> dict[str, str | None]:
    """The manifests' texts in one command: ``head -v`` marks each file with ``==> PATH <==``
    (a line a manifest's JSON cannot hold: its strings escape line breaks)."""
    if not rels:
        return {}
    paths = {f"{top}/{r}": r for r in rels}
    out = runner.run(read("head", "-v", "-c", str(MAX_MANIFEST), "--", *paths, ok=(0, 1))).stdout
    texts: dict[str, list[str]] = {}
    current = None
    for line in out.splitlines(keepends=True):
        marker = line.rstrip("\n")
        if marker.startswith("==> ") and marker.endswith(" <==") and marker[4:-4] in paths:
            current = paths[marker[4:-4]]
            texts[current] = []
        elif current is not None:
            texts[current].append(line)
    return {r: "".join(texts[r]) if r in texts else None for r in rels}
