"""A backup place as the run sees it: a host to run commands on, and what it holds (read
through that host's runner, read-only, also in plan mode)."""

from __future__ import annotations

from dataclasses import replace

from kvmops.cmd import read
from kvmops.errors import KvmopsError
from kvmops.facts.signing import verify_text
from kvmops.host import Host, connect
from kvmops.runners import LocalRunner, PlanRunner, SSHRunner
from kvmops.runners.base import Runner
from kvmops.site import Site
from kvmops.transfer.commands import TOOL_PATHS
from kvmops.transfer.manifest import MAX_BYTES
from kvmops.transfer.place import Place, PlaceFacts, _backups, to_read


def place_host(place: Place, base: Site, *, apply: bool) -> Host:
    """The place as a host the executor can run commands on (only its runner is used): the
    site's own host, or this machine, or ``user@host`` over SSH (strict host keys)."""
    if place.site is not None:
        return connect(place.site, apply=apply)
    runner: Runner = LocalRunner(place.label) if place.ssh is None else SSHRunner(place.ssh)
    site = replace(base, name=place.label, ssh=place.ssh.destination if place.ssh else "", recorded="")
    return Host(site, runner if apply else PlanRunner(runner), "")


def verify_backups(facts: PlaceFacts, site: Site, guest: str) -> PlaceFacts:
    """The place's facts with the signature of each complete backup of ``guest`` checked against
    ``site``'s allowed signers, as the host its manifest names (``source_site``)."""
    out = []
    for b in facts.backups:
        if b.guest == guest and b.manifest is not None:
            b = replace(b, trust=verify_text(b.text, b.signature, site.allowed_signers, b.manifest.source_site,
                                             site=site.name))
        out.append(b)
    return replace(facts, backups=tuple(out))


def read_place(place: Place, host: Host, guest: str | None = None) -> PlaceFacts:
    """What the place holds: its folder tree, and the manifests (with their signatures) of
    ``guest``'s backups, or of every guest's (read-only, also in plan mode). Each file is read
    on its own, at most :data:`~kvmops.transfer.manifest.MAX_BYTES`: what one file holds never
    decides what another one says."""
    runner = host.runner
    have = runner.run(read("ls", "-1d", "--", *TOOL_PATHS.values(), ok=(0, 1, 2))).stdout.split()
    tools = frozenset(t for t, path in TOOL_PATHS.items() if path in have)
    res = runner.run(read("find", place.directory, "-mindepth", "1", "-maxdepth", "3", "-printf", LISTING,
                          ok=(0, 1)))
    if res.returncode != 0:
        if "No such file" not in res.stderr:
            raise KvmopsError(f"cannot list the backup place {place}: {res.stderr.strip()[:500]}")
        return PlaceFacts(place, False, (), tools)
    entries = listing(res.stdout)
    texts = {rel: _head(runner, f"{place.directory}/{rel}") for rel in to_read(entries, guest)}
    return PlaceFacts(place, True, _backups(place, entries, texts, guest), tools)


LISTING = r"%y\t%s\t%P\0"  # kind, size, path below the place; NUL-separated (a name may hold a line break)


def listing(out: str) -> list[tuple[str, int, str]]:
    """``find -printf LISTING``'s entries; a name with a tab or a line break is left out."""
    entries = []
    for item in out.split("\0"):
        kind, _, rest = item.partition("\t")
        size, _, path = rest.partition("\t")
        if kind in ("d", "f") and size.isdigit() and path and not any(c in path for c in "\t\n\r"):
            entries.append((kind, int(size), path))
    return entries


def _head(runner: Runner, path: str) -> str | None:
    """One file's text, at most one byte beyond the bound (so that a larger one is refused)."""
    res = runner.run(read("head", "-c", str(MAX_BYTES + 1), "--", path, ok=(0, 1)))
    return res.stdout if res.returncode == 0 else None
