"""``kvmops notebook``: what it starts, before it starts it (the lab itself: the browser test
tests/integration/test_notebook_browser.py)."""

from __future__ import annotations

import json
import socket
import tempfile
from pathlib import Path

import pytest

from kvmops.cli import notebook
from kvmops.cli.main import main
from kvmops.errors import ConfigError
from kvmops.runbook.discover import shipped_runbooks
from kvmops.site import shipped_sites


def test_prepare_the_lab_of_a_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the lab's private Jupyter folder goes here
    launch = notebook.prepare("guide", tmp_path / "s", None)
    assert launch.folder == (tmp_path / "s").resolve()
    assert sorted(p.name for p in launch.folder.glob("*.py")) == sorted(p.name for p in shipped_runbooks().glob("*.py"))
    assert launch.env["KVMOPS_SITE"] == str(shipped_sites()["guide"])  # what the runbooks' site = "" means
    token = launch.env["JUPYTER_TOKEN"]
    assert len(token) == 48 and not any(token in a for a in launch.argv)  # never on the command line
    assert launch.url.startswith("http://127.0.0.1:") and launch.url.endswith(f"/lab?token={token}")
    assert "--ServerApp.ip=127.0.0.1" in launch.argv and "--ServerApp.terminals_enabled=False" in launch.argv
    port = launch.url.split(":")[2].split("/")[0]
    assert f"--ServerApp.port={port}" in launch.argv
    assert launch.tunnel.startswith(f"ssh -N -L {port}:127.0.0.1:{port} ")
    # the lab's own fresh Jupyter folders, outside the session folder: another python3 kernel of
    # the operator, or a config in the session folder, cannot take over
    config = Path(launch.env["JUPYTER_CONFIG_DIR"]).parent
    assert config.parent == tmp_path and config.name.startswith("kvmops-jupyter-")
    for key in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
        assert Path(launch.env[key]).is_relative_to(config) and not Path(launch.env[key]).is_relative_to(launch.folder)
    assert config.stat().st_mode & 0o777 == 0o700 and launch.folder.stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in launch.folder.iterdir()} == {0o600}
    viewer = Path(launch.env["JUPYTERLAB_SETTINGS_DIR"]) / "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings"
    assert json.loads(viewer.read_text())["defaultViewers"]["python"] == "Jupytext Notebook"


def test_an_edited_runbook_in_the_session_is_kept(tmp_path: Path) -> None:
    (tmp_path / "lv-create.py").write_text("# edited\n")
    copied = notebook.copy_runbooks(tmp_path)
    assert (tmp_path / "lv-create.py").read_text() == "# edited\n"
    assert tmp_path / "lv-create.py" not in copied and tmp_path / "lv-snapshot.py" in copied


def test_a_bad_site_is_refused_before_anything_is_made(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["notebook", "--site", str(tmp_path / "nope.toml"), "--dir", str(tmp_path / "s")]) == 2
    assert "site file" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_a_busy_port_is_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} on 127.0.0.1 is in use"):
            notebook.free_port(port)
        assert notebook.free_port(None) != port


def test_a_new_session_folder_per_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KVMOPS_NOTEBOOKS", str(tmp_path))
    folder = notebook.session_folder(None, "demo")
    assert folder.parent == tmp_path.resolve() and folder.name.endswith("Z-demo")
