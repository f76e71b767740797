"""How much of a raw image is real data: the numbers behind the ``auto`` copy method.

Two cheap reads, both read-only:

1. ``qemu-img map --output=json -U -f raw IMG``: the allocated extents (holes show as
   ``"zero": true, "data": false``). It only sees holes: zeros *written* into a raw file
   (a raw image downloaded with curl) show as data.
2. So the data extents are sampled: :data:`SAMPLES` chunks of :data:`CHUNK` bytes spread
   evenly over them are read and checked for all-zero (``python3 -I -S -c SAMPLER IMG CHUNK OFF...``,
   4 MiB read in all; prints one ``0``/``1`` per chunk). Without python3 on the host the
   zero content is left unmeasured and only the allocation counts.

``data fraction = allocated data / virtual size x non-zero samples / samples``.
:func:`choose` picks ``dd`` at :data:`DENSE` or more, else ``qemu-img`` (see
:mod:`kvmops.images.copy` for the measurements).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from kvmops.cmd import Cmd, read
from kvmops.errors import InvalidInput, KvmopsError
from kvmops.images.probe import ImageInfo
from kvmops.runners.base import Runner

DENSE = 0.80
"""From this data fraction on, ``dd bs=4M oflag=direct`` beats ``qemu-img convert -n`` (bench)."""
SAMPLES = 64
CHUNK = 64 << 10
SAMPLER = (
    "import sys\n"
    "f = open(sys.argv[1], 'rb')\n"
    "n = int(sys.argv[2])\n"
    "for o in sys.argv[3:]:\n"
    "    f.seek(int(o))\n"
    "    b = f.read(n)\n"
    "    print('0' if b.count(0) == len(b) else '1', end='')\n"
)


@dataclass(frozen=True)
class Extent:
    """One run of ``qemu-img map``: ``data`` false or ``zero`` true means it reads as zeros."""

    start: int
    length: int
    data: bool
    zero: bool

    @property
    def holds_data(self) -> bool:
        return self.data and not self.zero


@dataclass(frozen=True)
class Density:
    """A raw image's measured content: virtual ``size``, allocated ``data`` bytes, samples."""

    size: int
    data: int
    samples: int = 0
    zero_samples: int = 0

    @property
    def allocated(self) -> float:
        """Share of the image in data extents (0..1)."""
        return self.data / self.size if self.size else 0.0

    @property
    def fraction(self) -> float:
        """Share of the image estimated to hold non-zero bytes (0..1)."""
        nonzero = 1 - self.zero_samples / self.samples if self.samples else 1.0
        return self.allocated * nonzero

    def describe(self) -> str:
        """``97% data: 100% allocated, 2/64 samples zero``."""
        sampled = (f"{self.zero_samples}/{self.samples} samples zero" if self.samples
                   else "zero content not sampled")
        return f"{self.fraction:.0%} data: {self.allocated:.0%} allocated, {sampled}"


@dataclass(frozen=True)
class Choice:
    """The copy method for an image and the one-line reason, with the numbers."""

    method: str
    reason: str


def map_cmd(path: str) -> Cmd:
    """``qemu-img map --output=json -U -f raw IMG``."""
    return read("qemu-img", "map", "--output=json", "-U", "-f", "raw", path)


def parse_map(text: str) -> tuple[Extent, ...]:
    """The extents of ``qemu-img map --output=json`` (a JSON list of objects)."""
    try:
        rows = json.loads(text)
        return tuple(Extent(int(r["start"]), int(r["length"]), bool(r["data"]), bool(r["zero"]))
                     for r in rows)
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"qemu-img map gave output kvmops cannot read ({exc}): {text[:200]!r}") from None


def data_bytes(extents: tuple[Extent, ...]) -> int:
    return sum(e.length for e in extents if e.holds_data)


def sample_offsets(extents: tuple[Extent, ...], samples: int = SAMPLES, chunk: int = CHUNK) -> tuple[int, ...]:
    """``samples`` offsets spread evenly over the data extents, 4 KiB aligned, chunk inside."""
    data = [e for e in extents if e.holds_data]
    total = sum(e.length for e in data)
    if not total:
        return ()
    out = []
    for k in range(samples):
        pos = (2 * k + 1) * total // (2 * samples)
        for e in data:
            if pos < e.length:
                off = e.start + pos // 4096 * 4096
                out.append(max(e.start, min(off, e.start + e.length - chunk)))
                break
            pos -= e.length
    return tuple(out)


def sample_cmd(path: str, offsets: tuple[int, ...], chunk: int = CHUNK) -> Cmd:
    """``python3 -I -S -c SAMPLER IMG 65536 OFF1 ...``: prints ``0`` (all zero) or ``1`` per chunk."""
    return read("python3", "-I", "-S", "-c", SAMPLER, path, str(chunk), *map(str, offsets))


def parse_samples(text: str, expected: int) -> int:
    """The number of all-zero chunks in the sampler's ``0110...`` output."""
    flags = text.strip()
    if len(flags) != expected or set(flags) - {"0", "1"}:
        raise InvalidInput(f"the zero sampler printed {flags[:80]!r}, expected {expected} digits 0/1")
    return flags.count("0")


def density_of(extents: tuple[Extent, ...], size: int, samples: int = 0, zero_samples: int = 0) -> Density:
    return Density(size, data_bytes(extents), samples, zero_samples)


def measure(runner: Runner, image: ImageInfo) -> Density | None:
    """Map and sample a raw image; None for other formats or when the host cannot tell."""
    if image.format != "raw":
        return None
    try:
        extents = parse_map(runner.run(map_cmd(image.path)).stdout)
    except KvmopsError:
        return None
    offsets = sample_offsets(extents)
    if not offsets:
        return density_of(extents, image.virtual_size)
    try:
        zeros = parse_samples(runner.run(sample_cmd(image.path, offsets)).stdout, len(offsets))
    except KvmopsError:
        return density_of(extents, image.virtual_size)
    return density_of(extents, image.virtual_size, len(offsets), zeros)


def choose(image: ImageInfo, density: Density | None, threshold: float = DENSE) -> Choice:
    """``dd`` for a dense raw image, ``qemu-img`` for everything else; the reason names the numbers."""
    if image.format != "raw":
        return Choice("qemu-img", f"{image.format} image: only qemu-img reads {image.format}")
    if density is None:
        return Choice("qemu-img", "raw image, content not measured: qemu-img is right for any image")
    if density.fraction >= threshold:
        return Choice("dd", f"dense raw image ({density.describe()}; dense from {threshold:.0%}): "
                            "dd bs=4M is faster on dense data (bench/image_copy.py)")
    return Choice("qemu-img", f"mostly-empty raw image ({density.describe()}; dense from {threshold:.0%}): "
                              "qemu-img zeroes empty ranges instead of copying them (bench/image_copy.py)")
