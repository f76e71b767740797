"""TODO docstring."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from kvmops import guards
from kvmops.cmd import Cmd, Result
from kvmops.errors import CommandFailed, InvalidInput, SafetyError
from kvmops.hostfacts import HostFacts, lv_free
from kvmops.images import partitions as pt
from kvmops.images.disk import Disk
from kvmops.runners.base import Runner


def read_table(runner: Runner, device: str, source: str) -> pt.PartitionTable:
    """The partition table of ``device``; none is a clear error."""
    res = runner.run(pt.sfdisk_json(device))
    if res.returncode != 0 or not res.stdout.strip():
        raise InvalidInput(
            f"{source} has no partition table ({res.stderr.strip() or 'sfdisk found none'}): "
            "a guest disk holds a partitioned cloud image; copy one in first (kvmops image copy)"
        )
    table = pt.parse_sfdisk(res.stdout)
    if not table.partitions:
        raise InvalidInput(f"{source} has a {table.label} partition table without partitions")
    return table


@contextmanager
def attached_image(runner: Runner, image: str, *, write: bool = False) -> Iterator[Disk]:
    """A raw image file on a loop device with its partitions added; detached afterwards."""
    loop = _attach(runner, image, write)
    if not loop.startswith("/dev/loop"):
        raise InvalidInput(f"losetup did not name a loop device for {image}: {loop!r}")
    try:
        table = read_table(runner, loop, image)
        if not runner.run(pt.partx_add(loop), check=False).ok:
            # stale partitions of an earlier user of this loop number: resynchronise
            runner.run(pt.partx_update_all(loop))
        parts = tuple(replace(p, node=pt.loop_partition_path(loop, p.number)) for p in table.partitions)
        yield Disk(loop, image, parts, write)
    finally:
        _undo(runner, [pt.partx_delete(loop), pt.losetup_detach(loop)])


def _attach(runner: Runner, image: str, write: bool) -> str:
    """``losetup --find --show``; an attach that failed after it took a loop device (killed,
    timed out) gives back the device it took, found as the new loop backed by ``image``."""
    before = _loops_backing(runner, image)
    try:
        return runner.run(pt.losetup_attach(image, write=write)).stdout.strip()
    except CommandFailed:
        for loop in sorted(_loops_backing(runner, image) - before):
            runner.run(pt.losetup_detach(loop), check=False)
        raise


def _loops_backing(runner: Runner, image: str) -> set[str]:
    """The loop devices whose backing file is ``image`` (``losetup --associated``)."""
    res = runner.run(pt.losetup_backing(image), check=False)
    return {line.strip() for line in res.stdout.splitlines() if line.strip().startswith("/dev/loop")}


@contextmanager
def mapped_lv(runner: Runner, facts: HostFacts, vg: str, lv: str, *, write: bool = False) -> Iterator[Disk]:
    """The partitions of a guest LV mapped with kpartx under /dev/mapper; unmapped afterwards.

    Refused on an LV in use (``facts``: read just before): a running guest's disk, or open.
    """
    path = f"{vg}/{lv}"
    if vg != facts.site.vg:
        raise InvalidInput(f"{path} is not in the site's VG {facts.site.vg}")
    guards.not_host_lv(lv, facts.site.lv_prefix)
    lv_free(facts, facts.lvm.need(lv), "partition mapping (kpartx)")
    dev = pt.lv_mapper_path(vg, lv)
    table = read_table(runner, dev, path)
    try:  # kpartx -d also after an add that failed once it had mapped something
        added = runner.run(pt.kpartx_add(dev, write=write))
        mapped = {m.number: m for m in pt.parse_kpartx(added.stdout)}
        parts = tuple(
            replace(p, node=mapped[p.number].path if p.number in mapped
                    else pt.lv_partition_path(vg, lv, p.number))
            for p in table.partitions
        )
        yield Disk(dev, path, parts, write)
    finally:
        _undo(runner, [pt.kpartx_delete(dev)])


@contextmanager
def open_disk(runner: Runner, facts: HostFacts, *, image: str | None = None, lv: str | None = None,
              write: bool = False) -> Iterator[Disk]:
    """Attach either an image file (``image=PATH``) or a guest LV (``lv="VG/LV"``); refused
    when a running guest uses it (``facts``: read just before)."""
    if (image is None) == (lv is None):
        raise InvalidInput("give exactly one of image=PATH (an image file) or lv='VG/LV' (a guest disk)")
    if image is not None:
        users = facts.running_guests_with_file(image)
        if users:
            raise SafetyError(f"{image} is a disk of the running guest(s) {', '.join(users)}: shut them "
                              "down first; nothing was changed")
        with attached_image(runner, image, write=write) as disk:
            yield disk
        return
    vg, sep, name = (lv or "").partition("/")
    if not sep:
        raise InvalidInput(f"lv must be 'VG/LV' (e.g. rl_build/vmtest1), got {lv!r}")
    with mapped_lv(runner, facts, vg, name, write=write) as disk:
        yield disk


BUSY = ("is in use", "Device or resource busy")  # kpartx -d / partx -d, losetup -d


BUSY_RETRIES = 3


def _run_settled(runner: Runner, cmd: Cmd) -> Result:
    """Run an undo command; when the device is busy, let udev finish first and try again.

    Closing a partition written to (``umount`` after ``xfs_growfs``) makes udev probe it
    (``blkid``) for a moment: ``kpartx -d`` then says "is in use" although nobody uses it.
    ``udevadm settle`` waits for those probes; a device still busy after the retries fails."""
    res = runner.run(cmd, check=False)
    for attempt in range(BUSY_RETRIES):
        if res.ok or not any(b in res.stderr + res.stdout for b in BUSY):
            break
        runner.run(pt.udev_settle(), check=False)
        time.sleep(0.5 * (attempt + 1))
        res = runner.run(cmd, check=False)
    return res


def _undo(runner: Runner, cmds: list[Cmd]) -> None:
    """Run every undo command even when one fails; raise the first failure afterwards.

    Called on the way out of a ``finally``: when an error is already on its way out (the
    step that failed), that error stays the one reported and the undo failure is added to
    it as a note (a ``umount`` of what never got mounted must not hide why).
    """
    failed: CommandFailed | None = None
    for cmd in cmds:
        res = _run_settled(runner, cmd)
        if not res.ok and failed is None:
            failed = CommandFailed(res.host, cmd.masked_argv(), res.returncode, res.stderr, res.stdout)
    if failed is None:
        return
    pending = sys.exc_info()[1]
    if pending is not None:
        pending.add_note(f"while cleaning up after it: {failed}")
        return
    raise failed
