"""kvmops as an operator installs it: the wheel, built from this checkout, in a clean venv
outside the checkout, used from a folder that is not the checkout.

`kvmops list`, a plan, an applied run (lv-create on a scratch VG, libvirt test driver) and a
plain papermill run all come from the installed package; the runs land in the journal of an
installed kvmops ($XDG_STATE_HOME/kvmops/journal), and the LV is really made.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import need_tools
from tests.support.kernel_probe import PAPERMILL_SAYS
from tests.support.loop import scratch_vg

pytestmark = pytest.mark.integration
TOP = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "kvmops", "kvmops_lab", "kvmops_manual")
VG = "rbwheel"
M = 1024**2
SITE = f"""[host]
name = "scratch-wheel"

[storage]
vg = "{VG}"
lv_prefix = "vm"

[libvirt]
uri = "test://{{site_dir}}/node.xml"
domain_type = "qemu"

[network]
uplink = "ens802f1"
"""


@dataclass
class Installed:
    venv: Path
    home: Path
    seconds: dict[str, float]

    def env(self) -> dict[str, str]:
        """The machine's environment without this checkout's venv or kvmops settings."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("KVMOPS_", "JUPYTER", "PYTHON", "VIRTUAL_ENV"))}
        env.update(PATH=f"{self.venv / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin", HOME=str(self.home / "home"),
                   XDG_STATE_HOME=str(self.home / "state"))
        return env

    def run(self, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.venv / "bin" / argv[0]), *argv[1:]], cwd=cwd, env=self.env(),
                              capture_output=True, text=True, timeout=600)

    @property
    def journal(self) -> Path:
        return self.home / "state" / "kvmops" / "journal"


def _timed(seconds: dict[str, float], what: str, argv: list[str], cwd: Path) -> None:
    t0 = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=900)
    seconds[what] = round(time.monotonic() - t0, 1)
    assert proc.returncode == 0, f"{what} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Copy the sources out, build the wheel there, install it (the lock's versions) in a new venv."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        if (TOP / name).is_dir():
            shutil.copytree(TOP / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(TOP / name, src / name)
    seconds: dict[str, float] = {}
    pip = [sys.executable, "-m", "pip"]
    _timed(seconds, "wheel", [*pip, "wheel", "-q", "--no-deps", "-w", str(base / "dist"), str(src)], base)
    wheel = next((base / "dist").glob("kvmops-*.whl"))
    _timed(seconds, "venv", [_system_python(), "-m", "venv", str(base / "venv")], base)
    _timed(seconds, "install", [str(base / "venv/bin/pip"), "install", "-q", "-c", str(TOP / "constraints.txt"),
                                str(wheel)], base)
    (base / "home").mkdir()
    print(f"wheel test setup seconds: {json.dumps(seconds)}")
    return Installed(base / "venv", base, seconds)


def _system_python() -> str:
    """The Python this venv was made from (a venv's own python would nest venvs)."""
    return str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    need_tools("lvm", "losetup")
    (tmp_path / "node.xml").write_text("<node/>\n")
    (tmp_path / "site.toml").write_text(SITE)
    with scratch_vg(tmp_path, VG, "128M"):
        yield tmp_path / "site.toml"


def _lvs() -> dict[str, int]:
    out = subprocess.run(["lvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "lv_name,lv_size", VG],
                         capture_output=True, text=True, check=True).stdout
    return {n: int(s) for n, s in (ln.split() for ln in out.splitlines() if ln.strip())}


def test_the_installed_package_is_not_the_checkout(installed: Installed, tmp_path: Path) -> None:
    proc = installed.run("python", "-c", "import kvmops, sys; print(kvmops.__file__)", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    where = Path(proc.stdout.strip())
    assert where.is_relative_to(installed.venv) and not where.is_relative_to(TOP)


def test_list_plan_and_apply_from_the_installed_wheel(installed: Installed, site: Path, tmp_path: Path) -> None:
    listed = installed.run("kvmops", "list", "--names", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert {"lv-create", "lv-snapshot", "guest-create", "inventory"} <= set(listed.stdout.split())

    args = ("lv-create", "--site", str(site), "-p", "guest", "w1", "-p", "size", "16m", "-q")
    plan = installed.run("kvmops", "plan", *args, cwd=tmp_path)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "runbook lv-create: ok (plan only)" in plan.stdout
    assert _lvs() == {}

    applied = installed.run("kvmops", "run", *args, "--apply", cwd=tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert _lvs() == {"vmw1": 16 * M}  # the decisive signal: the LV is there, of that size

    records = sorted(installed.journal.glob("*-lv-create*/record.json"))[-2:]
    runs = [json.loads(p.read_text()) for p in records]
    assert [(r["status"], r["apply"]) for r in runs] == [("ok", False), ("ok", True)]
    assert [c["command"].split()[0] for c in runs[1]["commands"] if c["mutates"] and c["executed"]] == ["lvcreate"]
    assert not (tmp_path / "journal").exists()


def test_plain_papermill_from_the_installed_wheel(installed: Installed, tmp_path: Path) -> None:
    out = tmp_path / "out.ipynb"
    proc = installed.run("papermill", "kvmops://lv-create.ipynb", str(out), "-p", "guest", "w2",
                         "--no-progress-bar", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # only papermill's own lines: the wheel's `kvmops` kernel spec (over IPC) ran it quietly
    assert all(ln.startswith(PAPERMILL_SAYS) for ln in proc.stderr.splitlines()), proc.stderr
    assert "Executing notebook with kernel: kvmops" in proc.stderr
    printed = "".join("".join(o.get("text") or o.get("data", {}).get("text/plain", ""))
                      for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", []))
    assert "host demo (recorded facts, plan-only)" in printed and "lvcreate --name vmw2" in printed
