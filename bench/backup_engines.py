"""Benchmark: BorgBackup and restic against ``dd | zstd`` on a 2 GiB image of a realistic guest disk.

Run as root: ``.venv/bin/python bench/backup_engines.py [--image RAW] [--work DIR]``
(Debian packages ``borgbackup``, ``restic``, ``zstd``; ~10 min on a loaded 2-core machine).

The disk: the lab's realistic cloud image (``cloud.raw``: 2 GiB, MBR, an xfs root with a
Debian system, GRUB, cloud-init; built once and cached under ``~/.cache/kvmops/lab``), copied
sparse into the work folder. Side by side, in one run, each engine with its own repository on
this machine (encrypted, compressed: borg ``repokey-blake2`` + ``zstd,3``, its default chunker;
restic repository format 2, ``--compression auto``, its default chunker), fed the disk on
stdin as kvmops feeds it (``--stdin-name`` / ``--stdin-filename``):

- a full backup, against ``dd bs=4M | zstd -T2 -3`` into a file: seconds and bytes stored;
- a second backup after 5 % of the disk changed: bytes it added to the repository (goal: at
  most 10 % of the full), seconds against the full;
- ten backups with 1 % changed before each: the repository against ten full ``.zst`` copies;
- the restore of the last backup into a file (``dd conv=fsync``), against ``zstd -d | dd``:
  MiB/s, the restored data's sha256 checked against the disk's;
- what each needs on the backup place's host (measured: the installed package's size).

A change writes new data in extents of 256 KiB to 4 MiB at 4 KiB-aligned offsets anywhere on
the disk (a filesystem writing files, free space included) until the share is reached: each
extent is a piece of the disk's own data XORed with a random byte, so it compresses like the
guest's data but no engine has seen any chunk of it (random bytes would be the worst case for
compression, zeros the best). The generator is seeded: every run changes the same bytes.
Results: ``bench/backup_engines-results.json`` (read by the manual's benchmarks page).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from machine import write_results

MiB = 1 << 20
PASSPHRASE = "bench-only-passphrase"  # a throwaway repository's, never a real one


def sh(*argv: str, env: dict[str, str] | None = None, stdin: Any = None) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, env=env, stdin=stdin).stdout


def cloud_image() -> Path:
    """The cached realistic image (built when missing: the lab's cloud image recipe)."""
    from kvmops_lab.cloud_image import ensure_cloud_image

    return ensure_cloud_image().raw


def du(path: Path) -> int:
    """Bytes a folder or file takes on disk (``du -sb``: apparent sizes, as a copy elsewhere holds them)."""
    return int(sh("du", "-sb", str(path)).split()[0])


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(4 * MiB):
            h.update(chunk)
    return h.hexdigest()


def change(disk: Path, share: float, rng: random.Random) -> int:
    """Rewrite ``share`` of the disk in file-sized extents with new data as compressible as the
    disk's own: an extent of its data (mostly non-zero) XORed with a fresh byte, so no chunk
    of it was seen before. Bytes written."""
    size = disk.stat().st_size
    goal, done = int(size * share), 0
    with disk.open("r+b") as f:
        while done < goal:
            length = min(rng.randrange(64, 1025) * 4096, goal - done)
            data = b""
            while data.count(0) * 2 >= len(data):  # data, not zeros (the image is 2/3 empty)
                f.seek(rng.randrange(0, (size - length) // 4096) * 4096)
                data = f.read(length)
            key = rng.randrange(1, 256)
            new = bytes(b ^ key for b in data) if length <= (1 << 16) else _xor(data, key)
            f.seek(rng.randrange(0, (size - length) // 4096) * 4096)
            f.write(new)
            done += length
        f.flush()
        os.fsync(f.fileno())
    return done


def _xor(data: bytes, key: int) -> bytes:
    return (int.from_bytes(data, "little") ^ int.from_bytes(bytes([key]) * len(data), "little")).to_bytes(
        len(data), "little")


class Engine:
    """One engine's repository and its commands (argv; the passphrase in the environment)."""

    name = ""
    package = ""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.n = 0

    def env(self) -> dict[str, str]:
        raise NotImplementedError

    def init(self) -> None:
        raise NotImplementedError

    def backup_argv(self, name: str) -> list[str]:
        raise NotImplementedError

    def restore_argv(self, name: str) -> list[str]:
        raise NotImplementedError

    def backup(self, disk: Path) -> tuple[float, int]:
        """Seconds, and the bytes the backup added to the repository."""
        self.n += 1
        before = du(self.repo)
        t0 = time.monotonic()
        with disk.open("rb") as f:
            sh(*self.backup_argv(f"b{self.n}"), env=self.env(), stdin=f)
        return time.monotonic() - t0, du(self.repo) - before

    def restore(self, out: Path) -> float:
        return pipe_seconds(self.restore_argv(f"b{self.n}"), ["dd", f"of={out}", "bs=4M", "conv=fsync",
                                                              "status=none"], self.env())


class Borg(Engine):
    name, package = "borg", "borgbackup"

    def env(self) -> dict[str, str]:
        return {**os.environ, "BORG_PASSPHRASE": PASSPHRASE, "BORG_REPO": str(self.repo),
                "BORG_BASE_DIR": str(self.repo.parent / "borg-base"), "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes"}

    def init(self) -> None:
        sh("borg", "init", "--encryption=repokey-blake2", str(self.repo), env=self.env())

    def backup_argv(self, name: str) -> list[str]:
        return ["borg", "create", "--compression", "zstd,3", "--stdin-name", "vda.raw", f"::{name}", "-"]

    def restore_argv(self, name: str) -> list[str]:
        return ["borg", "extract", "--stdout", f"::{name}", "vda.raw"]


class Restic(Engine):
    name, package = "restic", "restic"

    def env(self) -> dict[str, str]:
        return {**os.environ, "RESTIC_PASSWORD": PASSPHRASE, "RESTIC_REPOSITORY": str(self.repo),
                "RESTIC_CACHE_DIR": str(self.repo.parent / "restic-cache")}

    def init(self) -> None:
        sh("restic", "init", "--repository-version", "2", env=self.env())

    def backup_argv(self, name: str) -> list[str]:
        return ["restic", "backup", "--quiet", "--compression", "auto", "--stdin", "--stdin-filename", "vda.raw",
                "--tag", name]

    def restore_argv(self, name: str) -> list[str]:
        return ["restic", "dump", "--tag", name, "latest", "/vda.raw"]


def pipe_seconds(first: list[str], second: list[str], env: dict[str, str] | None = None,
                 stdin: Any = None) -> float:
    """``first | second`` (no shell): seconds until both exited 0."""
    t0 = time.monotonic()
    a = subprocess.Popen(first, stdin=stdin, stdout=subprocess.PIPE, env=env)
    b = subprocess.Popen(second, stdin=a.stdout, env=env)
    assert a.stdout is not None
    a.stdout.close()
    if b.wait() != 0 or a.wait() != 0:
        raise RuntimeError(f"{first[0]} | {second[0]} failed ({a.returncode}, {b.returncode})")
    return time.monotonic() - t0


def zstd_full(disk: Path, out: Path) -> tuple[float, int]:
    seconds = pipe_seconds(["dd", f"if={disk}", "bs=4M", "status=none"],
                           ["zstd", "-q", "-3", "-T2", "-f", "-o", str(out)])
    return seconds, out.stat().st_size


def package_size(name: str) -> int:
    """The installed size of a Debian package, bytes."""
    return int(sh("dpkg-query", "-W", "-f", "${Installed-Size}", name)) * 1024


PLACE_NEEDS = {
    "borg": "borg itself on the place (`borg serve` over SSH, same major version as the hosts'): Debian "
            "`borgbackup`; an SSH forced command `borg serve --append-only --restrict-to-path DIR` makes a "
            "host's key unable to delete",
    "restic": "only SFTP (any sshd) for a repository over SSH; append-only needs restic's rest-server "
              "`--append-only`, which Debian bookworm does not package (a Go build, or a container)",
    "dd | zstd": "a folder and `zstd` (kvmops tests each file there); every backup a full copy",
}


def run(image: Path, work: Path) -> dict[str, Any]:
    disk = work / "disk.raw"
    say(f"copying {image} (sparse) to {disk}")
    sh("cp", "--sparse=always", str(image), str(disk))
    size = disk.stat().st_size
    rng = random.Random(25)
    engines: list[Engine] = [Borg(work / "borg-repo"), Restic(work / "restic-repo")]
    for e in engines:
        e.init()
    out: dict[str, Any] = {"image": str(image), "disk_bytes": size, "disk_data_bytes": disk.stat().st_blocks * 512,
                           "engines": {}}
    rows: dict[str, dict[str, Any]] = {e.name: {"version": sh(e.name, "version" if e.name == "restic" else
                                                                "--version").strip(),
                                                "package_bytes": package_size(e.package)} for e in engines}
    say("full backups")
    z_s, z_bytes = zstd_full(disk, work / "full.raw.zst")
    rows["dd | zstd"] = {"full_s": z_s, "full_bytes": z_bytes, "package_bytes": package_size("zstd")}
    for e in engines:
        rows[e.name]["full_s"], rows[e.name]["full_bytes"] = e.backup(disk)
        say(f"  {e.name}: {rows[e.name]['full_s']:.1f} s, {rows[e.name]['full_bytes'] / MiB:.0f} MiB")
    say(f"  dd | zstd: {z_s:.1f} s, {z_bytes / MiB:.0f} MiB")
    out["changed_5pct_bytes"] = change(disk, 0.05, rng)
    say("second backup after a 5 % change")
    for e in engines:
        s, b = e.backup(disk)
        r = rows[e.name]
        r.update(second_s=s, second_bytes=b, second_pct_of_full=100 * b / r["full_bytes"],
                 second_time_pct_of_full=100 * s / r["full_s"])
        say(f"  {e.name}: {s:.1f} s, {b / MiB:.1f} MiB ({r['second_pct_of_full']:.1f} % of the full)")
    say("ten backups, 1 % changed before each")
    start = {e.name: du(e.repo) for e in engines}
    for i in range(10):
        change(disk, 0.01, rng)
        for e in engines:
            e.backup(disk)
        say(f"  {i + 1}/10")
    for e in engines:
        r = rows[e.name]
        r.update(ten_added_bytes=du(e.repo) - start[e.name], repo_bytes=du(e.repo), backups=e.n)
    rows["dd | zstd"]["ten_full_copies_bytes"] = 10 * z_bytes
    say("restores of the last backup")
    want = sha256_of(disk)
    zst, restored = work / "last.raw.zst", work / "restored.raw"
    zstd_full(disk, zst)
    s = pipe_seconds(["zstd", "-d", "-q", "-c", str(zst)], ["dd", f"of={restored}", "bs=4M", "conv=fsync",
                                                             "status=none"])
    rows["dd | zstd"].update(restore_s=s, restore_mib_s=size / MiB / s, restore_sha256_ok=sha256_of(restored) == want)
    for e in engines:
        restored.unlink()
        s = e.restore(restored)
        rows[e.name].update(restore_s=s, restore_mib_s=size / MiB / s, restore_sha256_ok=sha256_of(restored) == want)
        say(f"  {e.name}: {size / MiB / s:.0f} MiB/s")
    say(f"  dd | zstd: {rows['dd | zstd']['restore_mib_s']:.0f} MiB/s")
    for name, r in rows.items():
        r["place_needs"] = PLACE_NEEDS[name]
    out["engines"] = rows
    out["load_average"] = os.getloadavg()
    return out


def say(text: str) -> None:
    print(text, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", type=Path, help="a raw disk image (default: the lab's cached cloud image)")
    ap.add_argument("--work", type=Path, default=Path("/var/tmp"), help="where the scratch folder goes")
    args = ap.parse_args()
    for tool in ("borg", "restic", "zstd"):
        if shutil.which(tool) is None:
            print(f"backup_engines: {tool} is not installed (apt-get install borgbackup restic zstd)", file=sys.stderr)
            return 2
    image = args.image or cloud_image()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kvmops-bench-engines-", dir=args.work) as tmp:
        data = run(image, Path(tmp))
    data["total_s"] = time.monotonic() - t0
    write_results("backup_engines", data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
