"""Guest images (guide 3.1, 3.3, 4.3, "Increase root partition"), beyond the guide: qcow2 and
cloud-init NoCloud seeds.

- :mod:`~kvmops.images.probe`: ``qemu-img info`` -> :class:`ImageInfo` (raw/qcow2, virtual size).
- :mod:`~kvmops.images.copy`: copy an image onto a guest LV (``copy_plan``), verified.
- :mod:`~kvmops.images.partitions`: kpartx/partx/losetup builders, sfdisk/lsblk/blkid/kpartx parsers.
- :mod:`~kvmops.images.disk`: ``open_disk`` (loop + partx for files, kpartx for LVs), always undone.
- :mod:`~kvmops.images.mount`: ``image_root`` finds and mounts the root (read-only by default).
- :mod:`~kvmops.images.tweaks`: offline chroot tweaks, each idempotent: ``tweak_image``.
- :mod:`~kvmops.images.grow`: ``grow_offline`` / ``guest_grow_plan``.
- :mod:`~kvmops.images.nocloud`: the NoCloud seed ISO (``Seed``, ``seed_iso``, ``seed_plan``).
"""
