"""The small guest's tiny initramfs (pure parts): module order, /init, a cpio the kernel reads."""

from __future__ import annotations

import gzip
import stat
from pathlib import Path

import pytest

from kvmops_lab import initramfs
from kvmops_lab.errors import LabError

# From the lab kernel's modules.dep (6.1.0-50-amd64), the lines that matter here.
DEP = """\
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko \
kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
kernel/crypto/crc32c_generic.ko:
kernel/lib/libcrc32c.ko:
kernel/fs/xfs/xfs.ko: kernel/lib/libcrc32c.ko
kernel/lib/crc16.ko:
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
"""


def test_modules_come_after_their_dependencies_each_once() -> None:
    order = initramfs.module_order(initramfs.ROOT_MODULES, initramfs.parse_modules_dep(DEP))
    names = [p.rsplit("/", 1)[1] for p in order]
    assert names[0] == "crc32c_generic.ko"
    assert len(names) == len(set(names)) == 11 and "xfs.ko" not in names
    for before, after in (("virtio.ko", "virtio_pci.ko"), ("virtio_ring.ko", "virtio_blk.ko"),
                          ("jbd2.ko", "ext4.ko"), ("crc16.ko", "ext4.ko"), ("mbcache.ko", "ext4.ko"),
                          ("virtio_pci_modern_dev.ko", "virtio_pci.ko")):
        assert names.index(before) < names.index(after)


def test_builtin_modules_are_skipped_and_unknown_ones_refused() -> None:
    deps = initramfs.parse_modules_dep(DEP)
    builtin = initramfs.builtin_names("kernel/crypto/crc32c_generic.ko\nkernel/fs/ext4/ext4.ko\n")
    del deps["crc32c_generic"]
    order = initramfs.module_order(("crc32c_generic", "xfs"), deps, builtin)
    assert [p.rsplit("/", 1)[1] for p in order] == ["libcrc32c.ko", "xfs.ko"]
    with pytest.raises(LabError, match="nvme is not in modules.dep"):
        initramfs.module_order(("nvme",), deps)


def test_init_mounts_the_root_and_switches_to_it() -> None:
    script = initramfs.init_script(["kernel/fs/xfs/xfs.ko"])
    assert script.startswith("#!/bin/busybox sh\n")
    assert "insmod $m" in script and "/lib/modules/xfs.ko" in script
    assert 'findfs "$root"' in script and "exec switch_root /newroot /sbin/init" in script
    assert "ALERT! root $root does not exist" in script  # what boot.classify calls root missing


def _members(archive: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    out = {}
    pos = 0
    while True:
        head = archive[pos:pos + 110]
        assert head[:6] == b"070701"
        f = [int(head[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        namesize, size = f[11], f[6]
        name = archive[pos + 110:pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        data = archive[pos:pos + size]
        pos += size + (-size % 4)
        if name == "TRAILER!!!":
            return out
        out[name] = (f[1], data, (f[9], f[10]))


def test_cpio_is_newc_deterministic_and_has_a_console(tmp_path: Path) -> None:
    entries = [initramfs.Entry("init", stat.S_IFREG | 0o755, b"#!/bin/sh\n"),
               initramfs.Entry("dev", stat.S_IFDIR | 0o755),
               initramfs.Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))]
    a = initramfs.cpio_newc(entries)
    assert a == initramfs.cpio_newc(list(reversed(entries)))
    m = _members(a)
    assert list(m) == ["dev", "dev/console", "init"]
    assert m["init"][1] == b"#!/bin/sh\n" and stat.S_ISREG(m["init"][0])
    assert stat.S_ISCHR(m["dev/console"][0]) and m["dev/console"][2] == (5, 1)


def test_build_from_a_module_folder(tmp_path: Path) -> None:
    root = tmp_path / "6.1.0-50-amd64"
    for line in DEP.replace("\\\n", "").splitlines():
        ko = root / line.split(":")[0]
        ko.parent.mkdir(parents=True, exist_ok=True)
        ko.write_bytes(b"\x7fELF " + ko.name.encode())
    (root / "modules.dep").write_text(DEP.replace("\\\n", ""))
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF busybox")
    blob = initramfs.build(root, busybox)
    assert blob == initramfs.build(root, busybox), "the same inputs give the same bytes"
    m = _members(gzip.decompress(blob))
    assert m["lib/modules/ext4.ko"][1] == b"\x7fELF ext4.ko" and "lib/modules/xfs.ko" not in m
    assert m["bin/busybox"][1] == b"\x7fELF busybox" and m["bin/sh"][1] == b"busybox"
    assert "exec switch_root" in m["init"][1].decode()
