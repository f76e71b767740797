"""Copy a cloud image (raw or qcow2) onto a guest LV (guide 3.2 step 1, 3.1).

The method is chosen by measurement (``bench/image_copy.py``, 512 MiB images onto a loop
device, written through, ``sync`` included; the methods take turns, 9 rounds; median
(best) MiB/s; 2 shared cores under other work, so +-25 % noise even on the medians):

===================== =============== ================== =============== ================
image                 convert -t none convert -t none -W dd oflag=direct kvmops auto (-W)
===================== =============== ================== =============== ================
dense                 548 (881)       486 (683)          474 (773)       512 (860)
75 % data, 25 % holes 739 (1149)      1037 (1172)        706 (868)       824 (985)
90 % holes            5859 (6783)     5161 (8084)        763 (1096)      5565 (6961)
90 % zeros, written   1935 (3031)     2150 (3521)        889 (1152)      2032 (4248)
===================== =============== ================== =============== ================

(``-W`` and ``auto`` run the same command: their spread is the noise.) Three earlier runs
this session agree: on written zeros ``-W`` 1499/1537 vs 658/1128 MiB/s without it (medians),
on dense data qemu-img and dd within the noise of each other (716 vs 605, 804 vs 885, 842 vs
760 with 15 rounds), as the issue measured (429 vs 433).

``qemu-img convert -n -p -t none -W`` is at least even with dd on dense data and ahead on
images with holes or written zeros (it finds the zeros and zeroes the target range instead of
copying blocks), so ``auto`` uses it for every image, raw or qcow2 (only qemu-img reads qcow2).
``-W`` lets it write out of order with its parallel requests: safe onto a block device of its
own (an LV), and the copy is verified afterwards. ``dd bs=4M oflag=direct conv=fsync`` stays
available (``method=dd``, raw images only); it reports bytes, not percentages.

``-p`` / ``status=progress`` give progress (shown by :mod:`kvmops.progress`), ``-t none`` /
``oflag=direct`` keep the host's page cache clean. ``--target-is-zero`` and ``conv=sparse`` are
never used: a reused LV holds old data, so zero ranges must really be zeroed.
Verification: ``qemu-img compare`` of the image with the first *virtual-size* bytes of the LV
(the LV may be larger; its tail is not part of the image).
"""

from __future__ import annotations

from kvmops import guards
from kvmops.cmd import Cmd, change, read
from kvmops.errors import InvalidInput
from kvmops.hostfacts import HostFacts, lv_free
from kvmops.images.probe import ImageInfo
from kvmops.plan import Plan
from kvmops.units import human

METHODS = ("auto", "qemu-img", "dd")
AUTO = "qemu-img"
AUTO_REASON = ("auto: qemu-img -W is even with dd on dense data and ahead on holes and zeros "
               "(bench/image_copy.py)")


def convert_cmd(image: ImageInfo, device: str) -> Cmd:
    """``qemu-img convert -n -p -t none -W -f qcow2 -O raw IMG /dev/rl_build/vmtest1``.

    ``-W``: out-of-order writes, safe onto a block device of its own (an LV; the copy is
    verified afterwards) and faster (``bench/image_copy.py``).
    """
    return change("qemu-img", "convert", "-n", "-p", "-t", "none", "-W", "-f", image.format, "-O", "raw",
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


def pick(method: str = "auto") -> tuple[str, str]:
    """The method to use and why (``auto``: qemu-img, see the module's measurements)."""
    if method not in METHODS:
        raise InvalidInput(f"copy method {method!r}: use one of {', '.join(METHODS)}")
    if method == "auto":
        return AUTO, AUTO_REASON
    return method, f"method {method} asked for"


def copy_to_device(image: ImageInfo, device: str, device_size: int, *, target: str,
                   verify: bool = True, method: str = "auto") -> Plan:
    """The copy steps onto any block device of ``device_size`` bytes; ``target`` is the confirm."""
    chosen, why = pick(method)
    check_fits(image, target, device_size)
    plan = Plan(f"copy {image.path} ({image.format}, {human(image.virtual_size)}) onto {target}")
    cmd = convert_cmd(image, device) if chosen == "qemu-img" else dd_cmd(image, device)
    plan.add(f"OVERWRITE {target} with {image.path} ({chosen}: {why})", cmd, target=target)
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


def copy_plan(facts: HostFacts, lv: str, image: ImageInfo, *, verify: bool = True, method: str = "auto") -> Plan:
    """Copy ``image`` onto the guest LV ``lv`` of the site's VG; refused on an LV in use.

    ``method``: ``auto`` (qemu-img, see the module's measurements), ``qemu-img`` or ``dd``.
    """
    guards.not_host_lv(lv, facts.site.lv_prefix)
    have = facts.lvm.need(lv)
    lv_free(facts, have, "copying an image")
    if have.is_snapshot:
        raise InvalidInput(f"{have.path} is a snapshot: copy onto its origin LV")
    return copy_to_device(image, f"/dev/{have.vg}/{have.name}", have.size, target=have.path,
                          verify=verify, method=method)
