"""Guest images (guide 3.1, 3.3, 4.3, "Increase root partition"), beyond the guide: qcow2 and
cloud-init NoCloud seeds.

- :mod:`~kvmops.images.probe`: ``qemu-img info`` -> :class:`ImageInfo` (raw/qcow2, virtual size).
- :mod:`~kvmops.images.copy`: copy an image onto a guest LV (``copy_plan``), verified.
- :mod:`~kvmops.images.partitions`: kpartx/partx/losetup builders, sfdisk/lsblk/blkid/kpartx parsers.
- :mod:`~kvmops.images.disk`: ``open_disk`` (loop + partx for files, kpartx for LVs), always undone.
- :mod:`~kvmops.images.mount`: ``image_root`` finds and mounts the root (read-only by default).
- :mod:`~kvmops.images.imagefs`: an image's content read once (``ImageFacts``), the chroot writes.
- :mod:`~kvmops.images.tweaks`: offline chroot tweaks, each idempotent: ``look``, ``plan_all``, ``apply``;
  the account tweaks in :mod:`~kvmops.images.accounts`, the static address in :mod:`~kvmops.images.address`.
- :mod:`~kvmops.images.nmprofiles`: the image's NetworkManager profiles, changed in place.
- :mod:`~kvmops.images.grow`: partition, then filesystem, as phases (``look``, ``preview``, ``grow``);
  ``guest_grow_plan`` for inside the guest.
- :mod:`~kvmops.images.inspect`: what a disk holds, read-only (``read_report``, ``preview``).
- :mod:`~kvmops.images.nocloud`: the NoCloud seed ISO (``Seed``, ``seed_iso``, ``seed_plan``).
"""
