"""What an image file is: ``qemu-img info --output=json`` parsed into :class:`ImageInfo`.

Every file is a valid *raw* image to qemu-img (a text file is "raw" too), so a raw image is
only accepted as a disk image when it holds a partition table (``sfdisk -J`` reads it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from kvmops.cmd import Cmd, read
from kvmops.errors import CommandFailed, InvalidInput, NotFound
from kvmops.runners.base import Runner

FORMATS = ("raw", "qcow2")


@dataclass(frozen=True)
class ImageInfo:
    """An image file: format, virtual size (bytes the guest sees), size on disk, backing file."""

    path: str
    format: str
    virtual_size: int
    actual_size: int | None = None
    backing: str | None = None
    encrypted: bool = False
    corrupt: bool = False


def qemu_img_info(path: str) -> Cmd:
    """``qemu-img info --output=json PATH`` (read-only; ``-U`` shares a locked image)."""
    return read("qemu-img", "info", "--output=json", "-U", path)


def parse_qemu_img_info(text: str) -> ImageInfo:
    """Parse the JSON of ``qemu-img info --output=json``."""
    try:
        data = json.loads(text)
        fmt = str(data["format"])
        size = int(data["virtual-size"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"qemu-img info gave output kvmops cannot read ({exc}): {text[:200]!r}") from None
    specific = (data.get("format-specific") or {}).get("data") or {}
    return ImageInfo(
        path=str(data.get("filename", "")),
        format=fmt,
        virtual_size=size,
        actual_size=int(data["actual-size"]) if "actual-size" in data else None,
        backing=data.get("full-backing-filename") or data.get("backing-filename"),
        encrypted=bool(data.get("encrypted", False)),
        corrupt=bool(specific.get("corrupt", False)),
    )


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
            raise NotFound(f"image {path} does not exist on {exc.host}: check the path") from None
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
