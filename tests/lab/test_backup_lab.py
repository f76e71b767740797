"""Backups into a BorgBackup repository, restores proven by booting (issue 25's "Done when").

One real guest in the lab (the small busybox image on an LV: MBR, ext4 root, extlinux; defined
without a NIC, shut off), a repository on the lab host made by its owner (``borg init``) and set
append-only (``borg config REPO append_only 1``: the host can add backups, a prune only hides
them), named by a site file's ``[backup]`` table. Everything goes through the runbooks, as an
operator runs them (``kvmops run NAME --site SITE --apply -p ...``). In order (each test needs
the ones before it; the first failure skips the rest):

1. ``lv-backup`` of the shut-off guest (the small image and 24 MiB of random data in its
   filesystem, its data: the disk is 64 MiB and borg's chunks ~2 MiB, so without it a few
   changed chunks would be half a backup): one archive, its sealed manifest naming the disk's sha256
   (read here on the LV itself), no snapshot left;
2. a change written into the guest's filesystem offline (a token file and 256 KiB of random
   data, through kvmops' own disk tools), then ``lv-backup`` again with ``keep=1`` (confirmed):
   the second archive's manifest names the changed disk's sha256; borg's prune took the first
   off the list, and the append-only repository kept its data (it did not shrink), grown by
   much less than the first backup (only the changed chunks);
3. ``lv-backup-restore`` of the newest (second) backup into a new LV, defined and started: the
   runbook's wait and the console read here show a login prompt; then, powered off, the token
   is in the restored LV's filesystem (mounted read-only with kvmops' disk tools), and the LV
   is tagged as restored from that backup (its sha256 checked against the manifest by the
   run);
4. ``lv-backup-verify`` on the good backup: passes; its verdict kept beside the backup (an
   archive ``<guest>-<stamp>.verified-<time>``, ok); no scratch guest or LV left;
5. one byte flipped on the place's disk in the repository's chunk holding the disk's first bytes
   (bit rot):
   ``lv-backup-verify`` fails, its error and the verdict kept beside the backup name why (the
   segment's checksum); no scratch guest, LV or partition mapping left.

Every check reads the lab itself (``lvs``, ``virsh``, ``sha256sum``, ``borg list``/``extract``,
the guest's serial console through libvirt), never the runbooks' output. Part of the lab tier
(``KVMOPS_LAB=1``; tests/lab/README.md has its time). Timings are printed at the end.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from kvmops.cmd import Cmd, Kind, change, read
from kvmops.facts import read_facts
from kvmops.facts.disk import open_disk
from kvmops.facts.mount import image_root
from kvmops.guests import boot
from kvmops.host import Host, connect
from kvmops.hostfacts import Wanted
from kvmops.runbook.journal import RunRecord
from kvmops.site import load_site
from kvmops.transfer import engine as en
from kvmops_lab.guest_image import IMAGE_MIB
from kvmops_lab.prepare import GUEST_IMAGE_FILE
from kvmops_lab.proofguest import domain_xml
from kvmops_lab.state import LabState
from tests.support.console import console_verdict
from tests.support.run import run_timed

pytestmark = pytest.mark.lab

GUEST, RESTORED = "bk1", "bk1r"
SCRATCH = f"{GUEST}-verify"  # lv-backup-verify's scratch guest
REPO_DIR = "/srv/kvmops-borg-lab"
PASSPHRASE = "/root/.config/kvmops/borg-lab-pass"
BORG_DIRS = ("/root/.config/borg", "/root/.cache/borg")  # borg's own folders on the lab host (keys' records, cache)
TOKEN_FILE = "/etc/kvmops-backup-proof"  # the change, in the guest's root filesystem
NOISE_FILE = "/root/kvmops-backup-noise"
DATA_FILE, DATA_MIB = "/root/kvmops-backup-data", 24  # the guest's data, written before the first backup
BOOT_SECONDS = 300.0  # the small guest boots in ~40-70 s inside a lab, also with the machine loaded

TIMES: dict[str, float] = {}
DONE: set[str] = set()
SEEN: dict[str, Any] = {}

# Bit rot on the place's disk: one byte flipped in the data of the chunk that holds the first
# bytes of the backup's disk (the boot sector and partition table: unique to this disk, so
# every backup of it shares it, and a restore reads it first). ``borg debug dump-archive-items``
# names the disk item's chunks; borg 1.x segments are b"BORG_SEG", then entries of crc32 (4),
# size (4, header included), tag (1; 0 = PUT), and for a PUT the chunk id (32) and its data.
FLIP = r"""
import glob, os, struct, subprocess, sys, tempfile
import msgpack
repo, archive, item = sys.argv[1:4]
with tempfile.TemporaryDirectory() as d:
    subprocess.run(["borg", "debug", "dump-archive-items", f"{repo}::{archive}"], cwd=d, check=True)
    first = None
    for name in sorted(os.listdir(d)):
        with open(os.path.join(d, name), "rb") as f:
            for it in msgpack.Unpacker(f, raw=True):
                if it.get(b"path") == item.encode():
                    first = it[b"chunks"][0][0]
assert first is not None, f"no item {item} in {archive}"
for seg in glob.glob(os.path.join(repo, "data", "*", "*")):
    if not os.path.basename(seg).isdigit():
        continue
    with open(seg, "rb") as f:
        b = f.read()
    o = 8 if b[:8] == b"BORG_SEG" else len(b)
    while o + 9 <= len(b):
        crc, size, tag = struct.unpack_from("<IIB", b, o)
        if size < 9 or o + size > len(b):
            break
        if tag == 0 and b[o + 9:o + 41] == first:
            pos = o + 41 + (size - 41) // 2
            with open(seg, "r+b") as f:
                f.seek(pos)
                c = f.read(1)
                f.seek(pos)
                f.write(bytes([c[0] ^ 0xFF]))
            print(seg, pos, size)
            sys.exit(0)
        o += size
sys.exit(f"chunk {first.hex()} not found in {repo}")
"""


# ----------------------------------------------------------------- the site, the repository, the guest
@pytest.fixture(scope="module")
def site_file(lab_state: LabState, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lab's site file with a ``[backup]`` repository on the lab host and its passphrase file."""
    text = Path(lab_state.site).read_text()
    assert "\n[backup]\n" in text
    text = text.replace("\n[backup]\n", f'\n[backup]\nrepository = "{REPO_DIR}"\npassphrase_file = "{PASSPHRASE}"\n')
    path = tmp_path_factory.mktemp("backup-lab") / "kvmlab-borg.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def host(site_file: Path) -> Iterator[Host]:
    """The lab as a Host; this module's guests, LVs, repository and borg folders cleared before
    and after."""
    t0 = time.monotonic()
    got = connect(load_site(str(site_file)), apply=True)
    try:
        _clear(got)
        yield got
    finally:
        _clear(got)
        got.close()
        TIMES["module"] = time.monotonic() - t0
        print("\nbackup lab timings: " + ", ".join(f"{k} {v:.0f}s" for k, v in TIMES.items()))


def _clear(host: Host) -> None:
    site = host.site
    for guest in (GUEST, RESTORED, SCRATCH):
        host.run(change("virsh", "destroy", guest), check=False)
        host.run(change("virsh", "undefine", guest), check=False)
        xml = f"{site.xml_dir.rstrip('/')}/{guest}"
        host.run(change("rm", "-rf", f"{xml}.xml", f"{xml}.xml.undefined", f"/run/kvmops/lock/{guest}"), check=False)
    prefix = site.guest_lv(GUEST)
    for name, _ in sorted(lvs(host).items(), key=lambda kv: not kv[1]["origin"]):  # snapshots first
        if name.startswith(prefix):
            host.run(change("kpartx", "-d", f"/dev/{site.vg}/{name}"), check=False)
            host.run(change("lvremove", "-f", f"{site.vg}/{name}"), check=False)
    host.run(change("rm", "-rf", REPO_DIR, PASSPHRASE, *BORG_DIRS), check=False)


def sh(host: Host, *argv: str, ok: tuple[int, ...] = (0,)) -> str:
    return host.run(read(*argv, ok=ok)).stdout


def lvs(host: Host) -> dict[str, dict[str, str]]:
    out = sh(host, "lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
             "lv_name,lv_size,origin,lv_tags", host.site.vg)
    return {r["lv_name"]: r for r in json.loads(out)["report"][0]["lv"]}


def guests(host: Host) -> dict[str, str]:
    names = sh(host, "virsh", "list", "--all", "--name").split()
    return {n: sh(host, "virsh", "domstate", n).strip() for n in names}


def sha256(host: Host, path: str) -> str:
    return sh(host, "sha256sum", "--", path).split()[0]


def device(host: Host, guest: str) -> str:
    return f"/dev/{host.site.vg}/{host.site.guest_lv(guest)}"


def repo(host: Host) -> en.Repo:
    return en.repo_of(host.site)


def borg(host: Host, *argv: str) -> str:
    """A reading borg command on the lab host (the passphrase read from its file by borg)."""
    return host.run(Cmd(("borg", *argv), Kind.READ, env=en.env(repo(host)), timeout=600)).stdout


def archives(host: Host) -> list[str]:
    return sorted(a["name"] for a in json.loads(borg(host, "list", "--json", REPO_DIR))["archives"])


def sealed_manifest(host: Host, archive: str) -> dict[str, Any]:
    """The manifest kept in a backup's archive (read with borg here, not with kvmops' reader)."""
    sealed = json.loads(borg(host, "extract", "--stdout", f"{REPO_DIR}::{archive}", en.MANIFEST_ITEM))
    assert sealed["signature"].startswith("-----BEGIN SSH SIGNATURE-----"), "the manifest is not signed"
    manifest: dict[str, Any] = json.loads(sealed["manifest"])
    return manifest


def verdicts(host: Host, stamp: str) -> list[dict[str, Any]]:
    """The verdicts kept beside backup ``stamp`` of the guest, oldest first."""
    names = [a for a in archives(host) if a.startswith(f"{GUEST}-{stamp}{en.VERIFIED}")]
    return [json.loads(borg(host, "extract", "--stdout", f"{REPO_DIR}::{a}", en.VERDICT_ITEM)) for a in names]


def repo_bytes(host: Host) -> int:
    return int(sh(host, "du", "-sb", f"{REPO_DIR}/data").split()[0])


def need(*steps: str) -> None:
    missing = [s for s in steps if s not in DONE]
    if missing:
        pytest.skip(f"needs the earlier step(s) {', '.join(missing)} to have passed")


def run(site_file: Path, name: str, key: str, confirm: str | None = None, *, ok: bool = True,
        **params: object) -> RunRecord:
    """``kvmops run NAME --site SITE --apply [--confirm X] -p ...``, timed as ``key``."""
    return run_timed(str(site_file), name, TIMES, key, confirm, ok=ok, **params)


def no_scratch_left(host: Host) -> None:
    """lv-backup-verify's scratch guest, its LVs and any partition mapping of them are gone."""
    assert SCRATCH not in guests(host)
    assert not [n for n in lvs(host) if n.startswith(host.site.guest_lv(SCRATCH))], lvs(host)
    dm = host.site.guest_lv(SCRATCH).replace("-", "--")
    assert dm not in sh(host, "dmsetup", "ls"), "a mapping of the scratch LV is left"


@contextmanager
def guest_root(host: Host) -> Iterator[str]:
    """The shut-off guest's root filesystem mounted read-write with kvmops' own disk tools."""
    lv = f"{host.site.vg}/{host.site.guest_lv(GUEST)}"
    with open_disk(host.runner, read_facts(host, Wanted()), lv=lv, write=True) as disk, \
            image_root(host.runner, disk, write=True) as root:
        yield root.mountpoint


# ----------------------------------------------------------------- 1. the first backup
def test_01_a_backup_of_the_shut_off_guest_is_one_signed_archive(host: Host, site_file: Path) -> None:
    site = host.site
    t0 = time.monotonic()
    host.run(change("install", "-d", "-m", "700", str(Path(PASSPHRASE).parent)))
    host.run(change("sh", "-c", f"umask 077; cat > {PASSPHRASE}", stdin=secrets.token_hex(24) + "\n",
                    stdin_secret=True))
    host.run(en.init(repo(host)))  # the place's owner makes the repository and sets it append-only
    host.run(Cmd(("borg", "config", REPO_DIR, "append_only", "1"), Kind.CHANGE, env=en.env(repo(host))))
    assert borg(host, "config", REPO_DIR, "append_only").strip() == "1"
    dev = device(host, GUEST)
    host.run(change("lvcreate", "--name", site.guest_lv(GUEST), "--size", f"{IMAGE_MIB}m", "--wipesignatures", "y",
                    "--yes", site.vg))
    host.run(change("qemu-img", "convert", "-n", "-O", "raw", "-f", "raw", GUEST_IMAGE_FILE, dev, timeout=600))
    with guest_root(host) as root:
        host.run(change("dd", "if=/dev/urandom", f"of={root}{DATA_FILE}", "bs=1M", f"count={DATA_MIB}",
                        "status=none"))
    xml = f"{site.xml_dir.rstrip('/')}/{GUEST}.xml"
    host.run(change("mkdir", "-p", site.xml_dir))
    host.run(change("sh", "-c", f"cat > {xml}", stdin=domain_xml(GUEST, dev, None, None, 256,
                                                                  domain_type=site.domain_type)))
    host.run(change("virsh", "define", xml))
    TIMES["repository and guest"] = time.monotonic() - t0
    SEEN["before"] = sha256(host, dev)

    run(site_file, "lv-backup", "lv-backup 1", guest=GUEST, keep=0)  # keep all: no prune yet
    (first,) = archives(host)
    assert re.fullmatch(rf"{GUEST}-\d{{8}}T\d{{6}}Z", first), first
    (disk,) = sealed_manifest(host, first)["disks"]
    assert disk["sha256"] == SEEN["before"] and disk["lv"] == site.guest_lv(GUEST), disk
    assert [n for n, r in lvs(host).items() if r["origin"]] == [], "a snapshot of the backup is left"
    assert guests(host)[GUEST] == "shut off"
    SEEN["first"], SEEN["first bytes"] = first, repo_bytes(host)
    DONE.add("first")


# ----------------------------------------------------------------- 2. a change, the second backup
def test_02_a_change_in_the_guest_then_a_second_backup_stores_little(host: Host, site_file: Path) -> None:
    need("first")
    dev = device(host, GUEST)
    token = secrets.token_hex(16)
    with guest_root(host) as root:
        host.run(change("dd", f"of={root}{TOKEN_FILE}", "status=none", stdin=token + "\n"))
        host.run(change("dd", "if=/dev/urandom", f"of={root}{NOISE_FILE}", "bs=64K", "count=4", "status=none"))
    SEEN["token"], SEEN["after"] = token, sha256(host, dev)
    assert SEEN["after"] != SEEN["before"]

    run(site_file, "lv-backup", "lv-backup 2 (keep=1)", GUEST, guest=GUEST, keep=1)
    (second,) = archives(host)  # borg's prune took the first one off the list
    assert second > SEEN["first"]
    (disk,) = sealed_manifest(host, second)["disks"]
    assert disk["sha256"] == SEEN["after"], "the second backup is not of the changed disk"
    grew = repo_bytes(host) - SEEN["first bytes"]
    print(f"repository: {SEEN['first bytes']} bytes after the first backup, +{grew} after the second and the prune")
    assert 0 <= grew < SEEN["first bytes"] // 2, "the second backup stored about a full copy again, or the " \
        "append-only repository gave back the pruned backup's space"
    assert [n for n, r in lvs(host).items() if r["origin"]] == [], "a snapshot of the backup is left"
    SEEN["second"] = second
    SEEN["stamp"] = second.removeprefix(f"{GUEST}-")
    DONE.add("second")


# ----------------------------------------------------------------- 3. the restore, booted
def read_token(host: Host, guest: str) -> str:
    """The change's file in ``guest``'s root filesystem, mounted read-only with kvmops' disk tools."""
    site = host.site
    with open_disk(host.runner, read_facts(host, Wanted()), lv=f"{site.vg}/{site.guest_lv(guest)}") as disk, \
            image_root(host.runner, disk) as root:
        assert not root.writable
        return sh(host, "cat", "--", f"{root.mountpoint}{TOKEN_FILE}").strip()


def test_03_the_second_backup_restores_into_a_new_lv_with_the_change_and_boots(host: Host, site_file: Path) -> None:
    need("second")
    site = host.site
    before = set(lvs(host))
    run(site_file, "lv-backup-restore", "lv-backup-restore (define, start, boot)", guest=GUEST, new_name=RESTORED,
        define=True, start=True, boot_seconds=BOOT_SECONDS)
    new, lv = device(host, RESTORED), site.guest_lv(RESTORED)
    assert set(lvs(host)) == before | {lv}
    assert guests(host)[RESTORED] == "running"
    verdict = console_verdict(host, RESTORED)
    print(f"{RESTORED}: {verdict.message}")
    assert verdict.booted and verdict.stage == boot.LOGIN and "kvmops-guest login:" in verdict.evidence, \
        verdict.message
    assert new in sh(host, "virsh", "domblklist", RESTORED)
    host.run(change("virsh", "destroy", RESTORED))
    tags = set(lvs(host)[lv]["lv_tags"].split(","))
    assert {"kvmops-restored", f"kvmops-restore-of:{GUEST}/{SEEN['stamp']}/{site.guest_lv(GUEST)}"} <= tags, tags
    assert read_token(host, RESTORED) == SEEN["token"], "the change is not in the restored disk"
    DONE.add("restored")


# ----------------------------------------------------------------- 4. verify: a good backup
def test_04_verify_passes_on_the_good_backup_and_keeps_its_verdict(host: Host, site_file: Path) -> None:
    need("second")
    run(site_file, "lv-backup-verify", "lv-backup-verify (good)", guest=GUEST, boot_seconds=BOOT_SECONDS)
    (kept,) = verdicts(host, SEEN["stamp"])
    print(json.dumps(kept))
    assert kept["ok"] is True and kept["archive"] == SEEN["second"], kept
    assert any("booted to a login prompt" in line for line in kept["lines"]), kept["lines"]
    no_scratch_left(host)
    DONE.add("verified")


# ----------------------------------------------------------------- 5. verify: a corrupted one
def test_05_verify_fails_on_a_corrupted_backup_naming_why_and_leaves_nothing(host: Host, site_file: Path) -> None:
    need("verified")
    (disk,) = sealed_manifest(host, SEEN["second"])["disks"]
    flipped = host.run(Cmd(("python3", "-c", FLIP, REPO_DIR, SEEN["second"], disk["file"]), Kind.CHANGE,
                           env=en.env(repo(host)), timeout=600)).stdout.strip()
    print(f"flipped one byte of the disk's first chunk: segment, offset, entry size = {flipped}")
    rec = run(site_file, "lv-backup-verify", "lv-backup-verify (corrupted)", guest=GUEST, ok=False,
              boot_seconds=BOOT_SECONDS)
    print(f"error: {rec.error}")
    assert rec.failed_step == "Record the verdict", rec.failed_step  # the run went through; its verdict failed
    assert "checksum" in (rec.error or "").lower(), rec.error
    good, bad = verdicts(host, SEEN["stamp"])
    assert good["ok"] is True and bad["ok"] is False, (good, bad)
    assert any("checksum" in line.lower() for line in bad["lines"]), bad["lines"]
    no_scratch_left(host)
    assert guests(host)[GUEST] == "shut off"
