"""Reading an Ansible inventory as data: ansible-core's own library, with only the file-format
inventory plugins (YAML, INI, TOML, a host list), in a process of its own with limits.

Before Ansible sees a file, every file it would read (the source, a folder's files, the
``group_vars``/``host_vars`` beside it) is bounded here: its size, and for YAML and JSON its
nesting and its size once aliases are expanded (:mod:`kvmops.bounded`). A script, an inventory
plugin's configuration (``plugin: ...``: constructed, generator and the like run templates and
lookups, which run commands) and anything that is not a file format are refused, unless the
operator allows Ansible's configured plugins (``plugins=True``: their own Ansible config, and
whatever it runs). The child process (:mod:`kvmops.facts.ansible_child`) runs with a config
kvmops controls (none of the operator's ``ansible.cfg``), a memory and a time limit; it prints
the JSON of ``ansible-inventory --list``, read by :func:`kvmops.fleet.ansible.read_list_json`.

Without ansible-core only that JSON is read (``ansible-inventory -i INV --list``, made elsewhere).
"""

from __future__ import annotations

import importlib.util
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from kvmops.bounded import TooLarge, check_size, check_yaml
from kvmops.errors import ConfigError, InvalidInput
from kvmops.fleet.ansible import MAX_INVENTORY, Inventory, is_list_json, read_list_json

FILE_FORMATS = ("ansible.builtin.yaml", "ansible.builtin.ini", "ansible.builtin.toml", "ansible.builtin.host_list")
MAX_FILES = 1000  # files Ansible would read for one source (a folder, group_vars, host_vars)
MAX_TOTAL = 32 << 20  # their bytes together
MEMORY = 1 << 30  # the child's address space
SECONDS = 120  # the child's time
_YAML = (".yml", ".yaml", ".json", "")
_SKIP = (".md", ".txt", ".rst", ".orig", ".cfg", ".retry", ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".ini.j2")
_ENV_KEEP = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "TZ")  # the child imports the kvmops this process runs


def read_inventory(path: Path, *, plugins: bool = False) -> Inventory:
    """An inventory: the JSON of ``ansible-inventory --list``, or a file or folder Ansible reads
    (see the module doc); ConfigError names the file and what is wrong."""
    files = _files(path)
    if path.is_file():
        text = _text(path)
        if is_list_json(text):
            return read_list_json(text, str(path))
    if not ansible_installed():
        raise ConfigError(f"{path}: ansible-core is not installed here, and kvmops reads YAML, INI and TOML "
                          "inventories with Ansible's own library: install it (pip install ansible-core), or give "
                          "kvmops the JSON of `ansible-inventory -i INVENTORY --list` made where Ansible is")
    for f in files:
        _check_file(f, plugins)
    return read_list_json(_child(path, plugins), str(path))


def ansible_installed() -> bool:
    return importlib.util.find_spec("ansible") is not None


def _files(path: Path) -> list[Path]:
    """Every file Ansible reads for ``path`` (bounded in number and bytes), before any is read."""
    if not path.exists():
        raise ConfigError(f"inventory {path} does not exist: give an inventory file or folder, or the JSON of "
                          "`ansible-inventory --list`")
    top = path if path.is_dir() else path.parent
    roots = [path, *(top / d for d in ("group_vars", "host_vars") if (top / d).is_dir())]
    found: list[Path] = []
    for root in roots:
        for f in ([root] if root.is_file() else sorted(root.rglob("*"))):
            if f.is_file() and not f.name.startswith(".") and not f.name.endswith(_SKIP):
                found.append(f)
            if len(found) > MAX_FILES:
                raise ConfigError(f"inventory {path}: more than {MAX_FILES} files to read: refused")
    for f in found:
        if f.stat().st_size > MAX_INVENTORY:
            raise ConfigError(f"{f}: {f.stat().st_size} bytes, larger than {MAX_INVENTORY}: refused (an inventory "
                              "that large is not read)")
    total = sum(f.stat().st_size for f in found)
    if total > MAX_TOTAL:
        raise ConfigError(f"inventory {path}: {total} bytes in its files, more than {MAX_TOTAL}: refused")
    return found


def _text(f: Path) -> str:
    if f.stat().st_size > MAX_INVENTORY:
        raise ConfigError(f"{f}: {f.stat().st_size} bytes, larger than {MAX_INVENTORY}: refused (an inventory "
                          "that large is not read)")
    try:
        with f.open("rb") as fh:
            raw = fh.read(MAX_INVENTORY + 1)
        check_size(raw, MAX_INVENTORY, str(f))
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{f}: not UTF-8 text: not an inventory") from None
    except TooLarge as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        raise ConfigError(f"{f}: {exc.strerror}") from None


def _check_file(f: Path, plugins: bool) -> None:
    """One file Ansible would read: not a script, not a plugin's configuration, bounded."""
    text = _text(f)
    if not plugins and (os.access(f, os.X_OK) or text.startswith("#!")):
        raise ConfigError(f"{f} is a script (an executable inventory): kvmops does not run it. Run it yourself "
                          "and give kvmops its JSON (`ansible-inventory -i SCRIPT --list > inv.json`), or allow "
                          "Ansible's plugins and scripts explicitly (--inventory-plugins)")
    if f.suffix.lower() not in _YAML:
        return  # INI and TOML: bounded by size; Ansible parses their values as literals, never as code
    try:
        check_yaml(text, str(f), max_bytes=MAX_INVENTORY)
    except TooLarge as exc:
        raise ConfigError(str(exc)) from None
    except InvalidInput as exc:
        if f.suffix:  # a file without a suffix may be INI: Ansible tries both
            raise ConfigError(str(exc)) from None
    if not plugins and _plugin_config(text):
        raise ConfigError(f"{f} configures an inventory plugin (plugin: ...): plugins such as constructed or "
                          "generator run templates and lookups, which can run commands. kvmops reads inventories "
                          "as data (YAML, INI, TOML); allow Ansible's plugins explicitly with --inventory-plugins")


def _plugin_config(text: str) -> bool:
    import yaml

    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
    except yaml.YAMLError:
        return False  # Ansible says what is wrong with it
    return isinstance(data, dict) and "plugin" in data


def _child(path: Path, plugins: bool) -> str:
    """``python -m kvmops.facts.ansible_child PATH`` with kvmops' Ansible config and limits."""
    home = tempfile.mkdtemp(prefix="kvmops-ansible-")
    try:
        env = _env(home, plugins)
        try:
            done = subprocess.run([sys.executable, "-m", "kvmops.facts.ansible_child", str(path.resolve())],
                                  capture_output=True, text=True, errors="replace", env=env, cwd=home,
                                  timeout=SECONDS, check=False, preexec_fn=_limits)
        except subprocess.TimeoutExpired:
            raise ConfigError(f"{path}: Ansible took more than {SECONDS} s to read it: refused") from None
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if done.returncode != 0:
        raise ConfigError(f"{path}: {_why(done)}")
    check_size(done.stdout, MAX_INVENTORY * 4, f"{path} as Ansible read it")
    return done.stdout


def _why(done: subprocess.CompletedProcess[str]) -> str:
    err = done.stderr.strip()
    if "MemoryError" in err or done.returncode == -9:
        return f"reading it needed more than {MEMORY >> 20} MiB: refused"
    last = [ln for ln in err.splitlines() if ln.strip()][-3:]
    return "Ansible could not read it: " + (" ".join(" ".join(last).split())[:1500] or f"exit {done.returncode}")


def _env(home: str, plugins: bool) -> dict[str, str]:
    """Only the file-format plugins, Ansible's defaults for everything else (not the operator's
    config: it could enable scripts or load plugins from anywhere), a private home and temp."""
    env = {k: v for k, v in os.environ.items() if k in _ENV_KEEP}
    env.update({"HOME": home, "ANSIBLE_HOME": home, "ANSIBLE_LOCAL_TEMP": home, "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_DEPRECATION_WARNINGS": "False", "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
                "PYTHONDONTWRITEBYTECODE": "1"})
    if plugins:  # the operator's own Ansible setup, as ansible-inventory would use it
        return {**os.environ, "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True", "ANSIBLE_NOCOLOR": "1"}
    cfg = Path(home, "ansible.cfg")
    cfg.write_text("")
    env.update({"ANSIBLE_CONFIG": str(cfg), "ANSIBLE_INVENTORY_ENABLED": ",".join(FILE_FORMATS),
                "ANSIBLE_VARS_ENABLED": "ansible.builtin.host_group_vars", "ANSIBLE_COLLECTIONS_PATH": home})
    return env


def _limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
    resource.setrlimit(resource.RLIMIT_CPU, (SECONDS, SECONDS))
