"""A backup engine's repository as the run sees it: its archives and the sealed manifests of
one guest's backups, read by borg on the host (read-only, also in plan mode). Each manifest is
extracted on its own and bounded (:func:`kvmops.transfer.engine.unseal`)."""

from __future__ import annotations

from kvmops.errors import KvmopsError
from kvmops.host import Host
from kvmops.transfer import engine as en
from kvmops.transfer.place import PlaceFacts


def _archives(repo: en.Repo, host: Host) -> tuple[en.Archive, ...] | None:
    """Every archive kvmops made in ``repo``; None when the repository does not exist."""
    res = host.runner.run(en.list_archives(repo), check=False)
    if res.returncode != 0:
        if "does not exist" in res.stderr:
            return None
        raise KvmopsError(f"cannot list the backup repository {repo}: {res.stderr.strip()[:500]}")
    return en.parse_list(res.stdout, f"borg list {repo}")


def read_repo(repo: en.Repo, host: Host, guest: str) -> PlaceFacts:
    """``guest``'s backups in ``repo`` (newest first), as a place's facts: each complete when its
    sealed manifest reads back and its items are in the archive."""
    runner = host.runner
    listed = _archives(repo, host)
    if listed is None:
        return PlaceFacts(en.place_of(repo, host.name), False)
    archives = en.backups_of(listed, guest)
    out = []
    for a in archives:
        items = en.parse_items(runner.run(en.list_items(repo, a.name)).stdout, f"borg list {repo}::{a.name}")
        paths = {i.path for i in items}
        size = next((i.size for i in items if i.path == en.MANIFEST_ITEM), None)
        sealed = None
        if size is not None and size <= en.MAX_SEALED:  # a larger one is refused unread
            sealed = runner.run(en.extract(repo, a.name, en.MANIFEST_ITEM)).stdout
        out.append(en.backup_of(a, sealed, paths))
    return PlaceFacts(en.place_of(repo, host.name), True, tuple(out))


def guests_in_repo(repo: en.Repo, host: Host) -> tuple[str, ...]:
    """The guests with at least one backup archive in ``repo`` (sorted); none when it does not exist."""
    return tuple(sorted({a.guest for a in _archives(repo, host) or () if not a.verified}))
