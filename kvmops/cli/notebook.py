"""``kvmops notebook``: JupyterLab on 127.0.0.1 with the runbooks, for step-by-step work.

The runbooks are copied into a session folder (the shipped ones stay as they are; what the
operator edits and saves there is the record of the session) and open as notebooks through
jupytext. ``--site`` becomes ``$KVMOPS_SITE`` for the kernels, which is what a runbook's
``site = ""`` means; ``apply = False`` stays the default, so every cell run as it is only
plans, exactly as ``kvmops run``. The kernel is this Python (the environment that has kvmops):
the lab gets its own Jupyter config and data folders, so an operator's own Jupyter setup
(another ``python3`` kernel, lab settings) cannot take its place. Terminals are off; the lab
listens on loopback with a random token: reach it from a laptop through ``ssh -L``.
"""

from __future__ import annotations

import argparse
import getpass
import importlib.util
import json
import os
import secrets
import shutil
import socket
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kvmops.errors import ConfigError
from kvmops.runbook.discover import repo_top, runbooks_dir
from kvmops.runbook.journal import is_checkout, state_dir
from kvmops.site import SITE_ENV, load_site, resolve_site

LOOPBACK = "127.0.0.1"
FIRST_PORT = 8888
NOTEBOOKS_ENV = "KVMOPS_NOTEBOOKS"
# JupyterLab settings of the session: .py files open as notebooks (jupytext), no news fetched.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin": {"defaultViewers": {"python": "Jupytext Notebook"}},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "notebook",
        help="JupyterLab with the runbooks as notebooks, on 127.0.0.1 with a token (plan only by default)",
        description="Copy the runbooks into a session folder and start JupyterLab there (jupytext: the "
        "runbooks open and save as notebooks; kernel: this environment). Prints the URL and the "
        "`ssh -L` line to reach it from a laptop. Runbooks plan only unless you set apply = True.",
    )
    p.add_argument("--site", help="site TOML file or shipped site name the runbooks' site = \"\" means "
                                  "(sets $KVMOPS_SITE for the kernels; default: $KVMOPS_SITE, else demo)")
    p.add_argument("--dir", type=Path, metavar="DIR",
                   help=f"session folder (default: a new one under ${NOTEBOOKS_ENV}, else notebooks/ in a "
                        "checkout, else kvmops' state folder); runbooks already there are kept")
    p.add_argument("--port", type=int, help=f"port on 127.0.0.1 (default: the first free from {FIRST_PORT})")
    p.set_defaults(func=cmd_notebook)


@dataclass(frozen=True)
class Launch:
    """What ``kvmops notebook`` starts: the command, its environment, and how to reach it."""

    argv: list[str]
    env: dict[str, str]
    folder: Path
    site: Path
    url: str
    tunnel: str


def notebooks_home() -> Path:
    """``$KVMOPS_NOTEBOOKS``, else ``notebooks/`` of a checkout, else kvmops' state folder."""
    if os.environ.get(NOTEBOOKS_ENV):
        return Path(os.environ[NOTEBOOKS_ENV])
    if is_checkout(repo_top()):
        return repo_top() / "notebooks"
    return state_dir(os.environ, os.geteuid(), Path.home()) / "notebooks"


def session_folder(given: Path | None, site_name: str) -> Path:
    """``given``, else a new ``<home>/<UTC time>-<site>`` folder."""
    if given is not None:
        return given.expanduser().resolve()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return notebooks_home().resolve() / f"{stamp}-{site_name}"


def copy_runbooks(folder: Path) -> list[Path]:
    """The runbooks (and their README) copied into ``folder``; files already there are kept."""
    folder.mkdir(parents=True, exist_ok=True)
    copied = []
    for src in sorted(runbooks_dir().iterdir()):
        if src.suffix not in (".py", ".md") or src.name.startswith(("_", ".")):
            continue
        dest = folder / src.name
        if not dest.exists():
            shutil.copyfile(src, dest)
            copied.append(dest)
    return copied


def free_port(wanted: int | None) -> int:
    """``wanted`` if it is free on loopback (else an error), else the first free from 8888."""
    for port in [wanted] if wanted is not None else range(FIRST_PORT, FIRST_PORT + 50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((LOOPBACK, port))
            except OSError:
                continue
            return port
    if wanted is not None:
        raise ConfigError(f"port {wanted} on {LOOPBACK} is in use: give another --port")
    raise ConfigError(f"no free port on {LOOPBACK} from {FIRST_PORT}: give --port")


def write_lab_settings(config: Path) -> Path:
    """The session's JupyterLab user settings (see :data:`LAB_SETTINGS`)."""
    settings = config / "lab" / "user-settings"
    for plugin, values in LAB_SETTINGS.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values, indent=2) + "\n")
    return settings


def lab_env(base: dict[str, str], folder: Path, site: Path, token: str) -> dict[str, str]:
    """The lab's environment (inherited by its kernels): the site, the token, and private
    Jupyter folders inside the session folder."""
    jupyter = folder / ".jupyter"
    jupyter.mkdir(mode=0o700, parents=True, exist_ok=True)  # its runtime files name the token
    env = dict(base)
    env.update({
        SITE_ENV: str(site),
        "JUPYTER_TOKEN": token,  # not on the command line, where `ps` would show it
        "JUPYTER_CONFIG_DIR": str(jupyter / "config"),
        "JUPYTER_DATA_DIR": str(jupyter / "data"),
        "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(write_lab_settings(jupyter / "config")),
        "JUPYTERLAB_WORKSPACES_DIR": str(jupyter / "workspaces"),
    })
    return env


def lab_argv(folder: Path, port: int) -> list[str]:
    argv = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.ip={LOOPBACK}",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--ServerApp.root_dir={folder}",
            "--ServerApp.terminals_enabled=False", "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly"]
    if os.geteuid() == 0:
        argv.append("--ServerApp.allow_root=True")  # kvmops on a KVM host often runs as root
    return argv


def tunnel_line(port: int) -> str:
    """The command that reaches the lab from a laptop."""
    user = os.environ.get("SUDO_USER") or getpass.getuser()
    name = socket.getfqdn()
    if name.startswith("localhost"):
        name = socket.gethostname()
    return f"ssh -N -L {port}:{LOOPBACK}:{port} {user}@{name}"


def prepare(site: str | None, folder: Path | None, port: int | None) -> Launch:
    """Check the site, make the session folder, pick the port: everything before the lab."""
    if importlib.util.find_spec("jupyterlab") is None:
        raise ConfigError("JupyterLab is not installed in this environment: pip install 'kvmops[notebook]' "
                          "(a checkout: scripts/bootstrap)")
    site_path = resolve_site(site)
    the_site = load_site(site_path)
    where = session_folder(folder, the_site.name)
    copy_runbooks(where)
    chosen = free_port(port)
    token = secrets.token_hex(24)
    env = lab_env(dict(os.environ), where, site_path, token)
    return Launch(lab_argv(where, chosen), env, where, site_path,
                  f"http://{LOOPBACK}:{chosen}/lab?token={token}", tunnel_line(chosen))


def cmd_notebook(args: argparse.Namespace) -> int:
    launch = prepare(args.site, args.dir, args.port)
    site = load_site(launch.site)
    kind = "recorded facts, plan only" if site.replay else "plan only unless a runbook sets apply = True"
    print(f"kvmops notebook: runbooks in {launch.folder}\n"
          f"  site: {site.name} ({launch.site}; {kind})\n"
          f"  open: {launch.url}\n"
          f"  from a laptop: {launch.tunnel}\n"
          f"  then open the URL above there. Ctrl-C twice stops the lab.", flush=True)
    os.execve(launch.argv[0], launch.argv, launch.env)  # the lab replaces this process  # noqa: S606
