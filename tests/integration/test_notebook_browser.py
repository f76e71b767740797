"""``kvmops notebook`` in a real browser: headless Chromium opens a runbook in the JupyterLab it
starts, runs all its cells, sees the plan, and the scratch VG shows that nothing was made.

The site is a scratch one (VG on a loop device, libvirt test driver) given with ``--site``:
the runbook's ``site = ""`` reaches it through ``$KVMOPS_SITE``; its ``apply = False`` default
plans only, exactly as ``kvmops run`` does.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import need_tools
from tests.integration.test_docs_browser import browser  # noqa: F401 - the fixture
from tests.support.loop import scratch_vg

pytestmark = pytest.mark.integration
VG = "rbnb"
SITE = f"""[host]
name = "scratch-nb"

[storage]
vg = "{VG}"
lv_prefix = "vm"

[libvirt]
uri = "test://{{site_dir}}/node.xml"
domain_type = "qemu"

[network]
uplink = "ens802f1"
"""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    need_tools("lvm", "losetup")
    (tmp_path / "node.xml").write_text("<node/>\n")
    (tmp_path / "site.toml").write_text(SITE)
    with scratch_vg(tmp_path, VG, "16G"):  # sparse: room for lv-create's default 10g
        yield tmp_path / "site.toml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def lab(site: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``kvmops notebook --site SITE`` running; yields its URL and session folder."""
    with running_lab(str(site), tmp_path / "session", tmp_path) as url:
        yield url, tmp_path / "session"


@contextmanager
def running_lab(site: str, folder: Path, tmp_path: Path) -> Iterator[str]:
    """``kvmops notebook --site SITE --dir FOLDER`` until the block ends; yields its URL."""
    pytest.importorskip("jupyterlab")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kvmops.cli.main", "notebook", "--site", site,
                             "--dir", str(folder), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env={**os.environ, "TMPDIR": str(tmp_path)})  # the lab's Jupyter folder goes there
    try:
        assert proc.stdout is not None
        head = [proc.stdout.readline() for _ in range(5)]
        url = next(m.group(1) for ln in head if (m := re.search(r"open: (\S+)", ln)))
        assert any(f"ssh -N -L {port}:127.0.0.1:{port} " in ln for ln in head), head
        _wait_listening(port, proc)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the lab and the kernels it started
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_listening(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the lab exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after 120 s")


def _errors(notebook: object) -> list[object]:
    from selenium.webdriver.common.by import By

    return notebook.find_elements(By.CSS_SELECTOR, "[data-mime-type='application/vnd.jupyter.stderr']")  # type: ignore[attr-defined]


def _lvs() -> list[str]:
    out = subprocess.run(["lvs", "--noheadings", "-o", "lv_name", VG], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_a_runbook_runs_cell_by_cell_in_the_lab_and_only_plans(lab, browser, site: Path, tmp_path: Path) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    url, folder = lab
    driver = browser
    wait = WebDriverWait(driver, 180)
    assert (folder / "lv-create.py").is_file()
    driver.get(url.replace("/lab?", "/lab/tree/lv-create.py?"))
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")))  # a notebook, not text
    wait.until(lambda d: "| Idle" in d.find_element(By.ID, "jp-main-statusbar").text)
    run = [e for e in driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item") if e.text.strip() == "Run"]
    run[0].click()
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".lm-Menu-item[data-command='runmenu:run-all']"))).click()
    notebook = driver.find_element(By.CSS_SELECTOR, ".jp-Notebook")

    def outputs() -> str:  # all of them: JupyterLab does not lay out cells out of view
        return "\n".join(o.get_attribute("textContent") or ""
                         for o in notebook.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output"))

    wait.until(lambda d: "==> Verify the LV" in outputs() or _errors(notebook))
    text = outputs()
    driver.save_screenshot(str(tmp_path / "lab.png"))
    assert not _errors(notebook), text[-2000:]
    assert f"host scratch-nb from {site.resolve()}; plan only: nothing is changed" in text
    assert f"# Plan: create LV {VG}/vmtest2 of 10.00 GiB" in text, text
    assert re.search(rf"^lvcreate --name vmtest2 --size 10g .*{VG}$", text, re.MULTILINE), text
    assert "plan only: nothing was changed" in text
    assert _lvs() == []  # the decisive signal: no LV was made
    print(f"screenshot: {tmp_path / 'lab.png'}")


def test_a_session_folders_jupyter_config_is_never_run(tmp_path: Path) -> None:
    """Issue 22's probe for real: ``--dir EXISTING`` whose ``.jupyter/config`` turns the token
    off (and leaves a mark). The lab runs with its own fresh config: the mark is not made and
    the API refuses a request without the token."""
    import urllib.error
    import urllib.request

    existing = tmp_path / "existing"
    (existing / ".jupyter" / "config").mkdir(parents=True)
    mark = tmp_path / "config-ran"
    for name in ("jupyter_server_config.py", "jupyter_lab_config.py", "jupyter_config.py"):
        (existing / ".jupyter" / "config" / name).write_text(
            f"open({str(mark)!r}, 'w').close()\nc.IdentityProvider.token = ''\nc.ServerApp.token = ''\n")
    existing.chmod(0o700)
    with running_lab("demo", existing, tmp_path) as url:
        base = url.split("/lab?")[0]
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/api/status", timeout=10)
        assert refused.value.code == 403
        token = url.split("token=")[1]
        with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=10) as ok:
            assert ok.status == 200
    assert not mark.exists()
