"""Image files on the host: ``qemu-img info`` and a partition table, read through the runner."""

from __future__ import annotations

from kvmops.cmd import read
from kvmops.errors import CommandFailed, InvalidInput, NotFound
from kvmops.images.probe import FORMATS, ImageInfo, parse_qemu_img_info, qemu_img_info
from kvmops.runners.base import Runner


def probe(runner: Runner, path: str) -> ImageInfo:
    """Read the image's facts; a missing file, an unknown format or a damaged image is refused.

    Raw images must carry a partition table (see :func:`has_partition_table`).
    """
    if not path or path.startswith("-"):
        raise InvalidInput(f"bad image path {path!r}: give the path of a raw or qcow2 image file")
    try:
        out = runner.run(qemu_img_info(path)).stdout
    except CommandFailed as exc:
        if "No such file" in exc.stderr:
            known = exc.stderr.rpartition("(recorded images:")[2].rstrip().rstrip(")")
            hint = f" (recorded; its images: {known.strip()})" if "(recorded images:" in exc.stderr else ""
            raise NotFound(f"image {path} does not exist on {exc.host}{hint}: check the path") from None
        raise InvalidInput(f"{path} is not an image qemu-img can read: {exc.stderr.strip()}") from None
    info = parse_qemu_img_info(out)
    _usable(info, path)
    if info.format == "raw" and not has_partition_table(runner, path):
        raise InvalidInput(
            f"{path} is not a disk image: qemu-img calls any file 'raw', and this one holds no "
            "partition table (sfdisk finds none). Give a cloud image (raw or qcow2)"
        )
    return info


def _usable(info: ImageInfo, path: str) -> None:
    if info.format not in FORMATS:
        raise InvalidInput(f"{path} is a {info.format} image: kvmops copies {' and '.join(FORMATS)} only; "
                           f"convert it first (qemu-img convert -O qcow2)")
    if info.encrypted:
        raise InvalidInput(f"{path} is encrypted: decrypt it first (qemu-img convert with --object secret)")
    if info.corrupt:
        raise InvalidInput(f"{path} is marked corrupt by qemu-img: run qemu-img check -r all on a copy")
    if info.virtual_size <= 0:
        raise InvalidInput(f"{path} has a virtual size of {info.virtual_size}: not a disk image")


def has_partition_table(runner: Runner, device: str) -> bool:
    """True when ``sfdisk -J DEVICE`` finds a partition table (works on files and devices)."""
    return runner.run(read("sfdisk", "-J", device, ok=(0, 1))).returncode == 0
