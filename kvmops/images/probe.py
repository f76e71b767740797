"""What an image file is: ``qemu-img info --output=json`` parsed into :class:`ImageInfo`.

Every file is a valid *raw* image to qemu-img (a text file is "raw" too), so a raw image is
only accepted as a disk image when it holds a partition table (``sfdisk -J`` reads it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from kvmops.cmd import Cmd, read
from kvmops.errors import InvalidInput

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


