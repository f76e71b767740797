"""``kvmops notebook``: JupyterLab on 127.0.0.1 with the runbooks, for step-by-step work.

The runbooks are copied into a session folder (the shipped ones stay as they are; what the
operator edits and saves there is the record of the session) and open as notebooks through
jupytext. ``--site`` becomes ``$KVMOPS_SITE`` for the kernels, which is what a runbook's
``site = ""`` means; ``apply = False`` stays the default, so every cell run as it is only
plans, exactly as ``kvmops run``. The kernel is this Python (the environment that has kvmops).
Terminals are off; the lab listens on loopback with a random token: reach it from a laptop
through ``ssh -L``.

The session folder is data, never configuration: the lab's Jupyter config, data (kernel specs)
and runtime folders are a fresh private folder kvmops makes for each start (nothing in the
session folder, such as ``.jupyter/config/*.py``, and no ``$JUPYTER_CONFIG_PATH`` is read), and
a ``--dir`` must be the user's own and writable by nobody else. Every option is checked before
anything is made; folders are made 0700 and the runbooks copied 0600.
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
import stat
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kvmops.errors import ConfigError
from kvmops.runbook.discover import repo_top, runbooks_dir
from kvmops.runbook.journal import is_checkout, state_dir
from kvmops.runbook.secrets import without_secrets
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
    p.add_argument("--port", type=port_number,
                   help=f"port on 127.0.0.1, 1-65535 (default: the first free from {FIRST_PORT})")
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


def port_number(text: str) -> int:
    """``--port``: a TCP port 1-65535 (argparse says what is wrong, before anything is made)."""
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port: give 1-65535")
    return int(text)


def session_folder(given: Path | None, site_name: str) -> Path:
    """``given``, else a new ``<home>/<UTC time>-<site>`` folder (the site's name is a safe
    name, checked when the site loads; a folder outside the home is refused all the same)."""
    if given is not None:
        return given.expanduser().resolve()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    home = notebooks_home().resolve()
    folder = (home / f"{stamp}-{site_name}").resolve()
    if folder.parent != home:
        raise ConfigError(f"site name {site_name!r} would put the session folder outside {home}")
    return folder


def check_folder(folder: Path) -> None:
    """A session folder that exists must be a folder of this user that nobody else can write
    (its files are the session's record, and what the lab serves)."""
    try:
        st = folder.stat()
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{folder} is not a folder: give --dir a folder (a new one is made)")
    if st.st_uid != os.geteuid():
        raise ConfigError(f"{folder} belongs to user id {st.st_uid}, not to you: give --dir a folder of your own")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(f"{folder} is writable by others (mode {st.st_mode & 0o777:o}): anyone could put files "
                          f"into your session; chmod go-w {folder}, or give --dir another folder")


def make_folder(folder: Path) -> None:
    """The session folder, 0700 (its parents as the umask says; an existing one is left as it is)."""
    folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        check_folder(folder)  # made meanwhile by someone else?


def copy_runbooks(folder: Path) -> list[Path]:
    """The runbooks (and their README) copied into ``folder`` (0600); files already there are kept."""
    make_folder(folder)
    copied = []
    for src in sorted(runbooks_dir().iterdir()):
        if src.suffix not in (".py", ".md") or src.name.startswith(("_", ".")):
            continue
        dest = folder / src.name
        try:
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as out:
            out.write(src.read_bytes())
        copied.append(dest)
    return copied


def free_port(wanted: int | None) -> int:
    """``wanted`` if it is free on loopback (else an error), else the first free from 8888."""
    if wanted is not None and not 0 < wanted < 65536:
        raise ConfigError(f"port {wanted} is not a port: give --port 1-65535")
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


CONFIG_PREFIX = "kvmops-jupyter-"


def fresh_config() -> Path:
    """A new private folder (0700) for the lab's Jupyter config, data and runtime files; the
    ones of earlier labs that have ended are removed (their process id is in the name)."""
    top = Path(tempfile.gettempdir())
    for old in top.glob(f"{CONFIG_PREFIX}*-*"):
        pid = old.name.removeprefix(CONFIG_PREFIX).split("-")[0]
        if pid.isdigit() and old.is_dir() and not old.is_symlink() and old.stat().st_uid == os.geteuid() \
                and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{CONFIG_PREFIX}{os.getpid()}-"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lab_env(base: dict[str, str], config: Path, site: Path, token: str) -> dict[str, str]:
    """The lab's environment (inherited by its kernels): the site, the token, and the Jupyter
    folders in ``config`` (:func:`fresh_config`); no other Jupyter config path."""
    env = {k: v for k, v in without_secrets(base).items()
           if k not in ("JUPYTER_CONFIG_PATH", "JUPYTER_PATH", "JUPYTER_NO_CONFIG")}
    env.update({
        SITE_ENV: str(site),
        "JUPYTER_TOKEN": token,  # not on the command line, where `ps` would show it
        "JUPYTER_CONFIG_DIR": str(config / "config"),
        "JUPYTER_DATA_DIR": str(config / "data"),
        "JUPYTER_RUNTIME_DIR": str(config / "runtime"),  # its files name the token
        "JUPYTERLAB_SETTINGS_DIR": str(write_lab_settings(config / "config")),
        "JUPYTERLAB_WORKSPACES_DIR": str(config / "workspaces"),
    })
    return env


def lab_argv(folder: Path, port: int) -> list[str]:
    argv = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.ip={LOOPBACK}",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--ServerApp.root_dir={folder}",
            "--ServerApp.terminals_enabled=False", "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly",
            "--ContentsManager.allow_hidden=False"]  # jupytext reads no hidden config (.jupytext.py) there
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
    """Check every option (the site, the folder, the port), then make the session folder and
    the lab's private Jupyter folder: everything before the lab."""
    if importlib.util.find_spec("jupyterlab") is None:
        raise ConfigError("JupyterLab is not installed in this environment: pip install 'kvmops[notebook]' "
                          "(a checkout: scripts/bootstrap)")
    site_path = resolve_site(site)
    the_site = load_site(site_path)
    where = session_folder(folder, the_site.name)
    check_folder(where)
    chosen = free_port(port)
    copy_runbooks(where)
    token = secrets.token_hex(24)
    env = lab_env(dict(os.environ), fresh_config(), site_path, token)
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
