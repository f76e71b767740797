"""Copy a cloud image (raw or qcow2) onto a guest LV (guide 3.2 step 1, 3.1).

The method is chosen by measurement (``bench/image_copy.py``, 512 MiB images onto a loop
device, written through, ``sync`` included; best of 3; 2 shared cores, so +-20 % noise):

===================== =========================== ===================== =====================
image                 qemu-img convert -n -t none dd bs=4M oflag=direct kvmops auto
===================== =========================== ===================== =====================
dense                 597 MiB/s                   859 MiB/s             976 MiB/s (dd)
75 % data, 25 % holes 963 MiB/s                   1036 MiB/s            677 MiB/s (qemu-img)
90 % holes            3781 MiB/s                  732 MiB/s             3340 MiB/s (qemu-img)
90 % zeros, written   1943 MiB/s                  678 MiB/s             1604 MiB/s (qemu-img)
===================== =========================== ===================== =====================

Neither wins everywhere, so the default method ``auto`` chooses per image
(:func:`kvmops.images.density.choose`, numbers from :func:`~kvmops.images.density.measure`):

- qcow2 (or any non-raw image): ``qemu-img convert -n -p -t none -f FMT -O raw IMG DEV``;
  only qemu-img reads it.
- raw with at least :data:`~kvmops.images.density.DENSE` (80 %) non-zero data (allocation from
  ``qemu-img map``, zero content from sampled reads): ``dd bs=4M oflag=direct conv=fsync
  status=progress``, 1.4-1.6x qemu-img's throughput on dense data (two runs). The two are even
  at 75 % data (within the noise); 80 % leaves room for the sampling error, and on thick LVs,
  where zeroing costs real writes, dd's lead grows. The measuring (``qemu-img map`` plus 64
  sampled 64 KiB reads) costs about 0.03 s.
- raw below that, or not measured: qemu-img, 3-5x dd on mostly-empty images (it finds the zeros
  and zeroes the target range instead of copying blocks).

``-p`` / ``status=progress`` give progress, ``-t none`` / ``oflag=direct`` keep the host's page
cache clean. ``--target-is-zero`` and ``conv=sparse`` are never used: a reused LV holds old data,
so zero ranges must really be zeroed.
Verification: ``qemu-img compare`` of the image with the first *virtual-size* bytes of the LV
(the LV may be larger; its tail is not part of the image).
"""

from __future__ import annotations

import re

from kvmops import guards
from kvmops.cmd import Cmd, change, read
from kvmops.errors import InvalidInput
from kvmops.facts import HostFacts
from kvmops.images.density import Choice, Density, choose
from kvmops.images.probe import ImageInfo
from kvmops.plan import Plan, Progress
from kvmops.units import human

METHODS = ("auto", "qemu-img", "dd")
_PERCENT = re.compile(r"^\s*\((\d+(?:\.\d+)?)/100%\)\s*$")
_DD_BYTES = re.compile(r"^(\d+) bytes")


def convert_cmd(image: ImageInfo, device: str) -> Cmd:
    """``qemu-img convert -n -p -t none -f qcow2 -O raw IMG /dev/rl_build/vmtest1``."""
    return change("qemu-img", "convert", "-n", "-p", "-t", "none", "-f", image.format, "-O", "raw",
                  image.path, device)


def dd_cmd(image: ImageInfo, device: str) -> Cmd:
    """``dd if=IMG of=DEV bs=4M oflag=direct conv=fsync status=progress`` (raw only)."""
    if image.format != "raw":
        raise InvalidInput(f"dd copies raw images only; {image.path} is {image.format}: use method qemu-img")
    return change("dd", f"if={image.path}", f"of={device}", "bs=4M", "oflag=direct", "conv=fsync",
                  "status=progress")


def compare_cmd(image: ImageInfo, device: str) -> Cmd:
    """``qemu-img compare -p --image-opts driver=FMT,file.filename=IMG driver=raw,size=N,...DEV``."""
    return read(
        "qemu-img", "compare", "-p", "--image-opts",
        f"driver={image.format},file.driver=file,file.filename={_opt(image.path)}",
        f"driver=raw,size={image.virtual_size},file.driver=host_device,file.filename={_opt(device)}",
    )


def _opt(value: str) -> str:
    """qemu's option syntax doubles commas inside a value."""
    return value.replace(",", ",,")


def check_fits(image: ImageInfo, target: str, target_size: int) -> None:
    if image.virtual_size > target_size:
        raise InvalidInput(
            f"{image.path} needs {human(image.virtual_size)} ({image.virtual_size} bytes, its virtual "
            f"size) but {target} has only {human(target_size)}: grow the LV first "
            f"(kvmops lv resize ... {human(image.virtual_size)})"
        )


def pick(image: ImageInfo, method: str = "auto", density: Density | None = None) -> Choice:
    """The method to use and why: ``auto`` asks :func:`~kvmops.images.density.choose`."""
    if method not in METHODS:
        raise InvalidInput(f"copy method {method!r}: use one of {', '.join(METHODS)}")
    if method == "auto":
        return choose(image, density)
    return Choice(method, f"method {method} asked for")


def copy_to_device(image: ImageInfo, device: str, device_size: int, *, target: str,
                   verify: bool = True, method: str = "auto", density: Density | None = None) -> Plan:
    """The copy steps onto any block device of ``device_size`` bytes; ``target`` is the confirm.

    ``density`` (from :func:`kvmops.images.density.measure`) lets ``auto`` choose dd for a dense
    raw image; without it ``auto`` uses qemu-img.
    """
    choice = pick(image, method, density)
    check_fits(image, target, device_size)
    plan = Plan(f"copy {image.path} ({image.format}, {human(image.virtual_size)}) onto {target}")
    cmd = convert_cmd(image, device) if choice.method == "qemu-img" else dd_cmd(image, device)
    plan.add(f"OVERWRITE {target} with {image.path} ({choice.method}: {choice.reason})", cmd, target=target)
    if verify:
        plan.add(f"verify: the first {human(image.virtual_size)} of {target} equal the image",
                 compare_cmd(image, device))
    if device_size > image.virtual_size:
        plan.notes.append(
            f"{target} is {human(device_size - image.virtual_size)} larger than the image: grow the root "
            "partition and filesystem afterwards (kvmops image grow)"
        )
    if image.backing:
        plan.notes.append(f"the qcow2 has a backing file ({image.backing}): the copy flattens the chain")
    return plan


def copy_plan(facts: HostFacts, lv: str, image: ImageInfo, *, verify: bool = True, method: str = "auto",
              density: Density | None = None) -> Plan:
    """Copy ``image`` onto the guest LV ``lv`` of the site's VG; refused on an LV in use.

    ``method``: ``auto`` (by ``density``, see :func:`copy_to_device`), ``qemu-img`` or ``dd``.
    """
    guards.not_host_lv(lv, facts.site.lv_prefix)
    have = facts.lvm.need(lv)
    guards.lv_free(facts, have, "copying an image")
    if have.is_snapshot:
        raise InvalidInput(f"{have.path} is a snapshot: copy onto its origin LV")
    return copy_to_device(image, f"/dev/{have.vg}/{have.name}", have.size, target=have.path,
                          verify=verify, method=method, density=density)


def progress_filter(say: Progress, every: float = 10.0) -> Progress:
    """Pass qemu-img's ``(12.34/100%)`` lines only every ``every`` percent (and dd's lines
    at most each 10th); other lines unchanged. For ``plan.apply(progress=...)``."""
    state = {"next": 0.0, "dd": 0}

    def filtered(line: str) -> None:
        m = _PERCENT.match(line)
        if m:
            pct = float(m.group(1))
            if pct >= state["next"]:
                say(f"{int(pct)}%")
                state["next"] = (pct // every + 1) * every
            return
        if _DD_BYTES.match(line.strip()):
            state["dd"] += 1
            if state["dd"] % 10 != 1:
                return
        say(line)

    return filtered
