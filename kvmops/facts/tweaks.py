"""An image's content as the offline tweaks want it, read through a mapping of its disk."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from kvmops.facts.disk import open_disk
from kvmops.facts.imagefs import gather
from kvmops.facts.mount import image_root
from kvmops.hostfacts import HostFacts
from kvmops.images.disk import Disk
from kvmops.images.imagefs import Wants
from kvmops.images.mount import RootFs
from kvmops.images.tweaks import Look
from kvmops.runners.base import Runner


def look(runner: Runner, facts: HostFacts, tweaks: Sequence[Wants], *, image: str | None = None,
         lv: str | None = None) -> Look:
    """Map the disk and mount its root read-only (transient), read what the tweaks want;
    unmounted and unmapped again on every path out."""
    with open_disk(runner, facts, image=image, lv=lv) as disk, image_root(runner, disk) as root:
        return looked(runner, root, tweaks)


def looked(runner: Runner, root: RootFs, tweaks: Sequence[Wants]) -> Look:
    img = gather(runner, root.mountpoint, tweaks)
    return Look(f"{root.device} ({root.fstype})", os_name(root), img)


def reader(tweaks: Sequence[Wants]) -> Callable[[Runner, Disk, RootFs | None], Look]:
    """The read of a tweak phase's hold: the content, from the read-write mount."""
    def read(runner: Runner, _disk: Disk, root: RootFs | None) -> Look:
        assert root is not None, "a tweak phase holds the disk with its root mounted"
        return looked(runner, root, tweaks)

    return read


def os_name(root: RootFs) -> str:
    return root.os_release.get("PRETTY_NAME") or root.os_release.get("ID", "unknown")
