"""``kvmops``: entry point. Errors print as one clear message and exit 2 (1 for failed runs)."""

from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType

from kvmops import __version__
from kvmops.cli.common import CLI_DEFAULT_SITE, setup_logging
from kvmops.errors import KvmopsError
from kvmops.site import SITE_ENV

# Every command and the module whose ``register(subparsers)`` adds it: the runtime's own, then
# the tools around it (the lab and the manual's build), which a runtime-only install may lack.
# A command imports only its own module (`kvmops lv list` loads no runbook machinery); help
# without a command, or an unknown command, loads them all.
COMMANDS = {
    "lv": "kvmops.cli.lv", "guest": "kvmops.cli.guest", "inventory": "kvmops.cli.inventory",
    "run": "kvmops.cli.runbooks", "plan": "kvmops.cli.runbooks", "list": "kvmops.cli.runbooks",
    "journal": "kvmops.cli.runbooks", "net": "kvmops.cli.net", "image": "kvmops.cli.image",
    "fleet": "kvmops.cli.fleet", "notebook": "kvmops.cli.notebook",
    "lab": "kvmops_lab.cli", "demo": "kvmops_lab.demo", "docs": "kvmops_manual.cli",
}
MODULES = tuple(dict.fromkeys(COMMANDS.values()))
GROUPS = tuple(m for m in MODULES if m.startswith("kvmops."))
TOOL_GROUPS = tuple(m for m in MODULES if not m.startswith("kvmops."))


def parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser: with ``command``, only the commands of its module (when installed)."""
    p = argparse.ArgumentParser(
        prog="kvmops",
        description="Executable runbooks for a plain KVM/libvirt host. "
        "Every changing command shows its plan first and acts only with --apply.",
        epilog=f"Which host: --site names a shipped site (guide, demo) or a site TOML file. "
        f"Commands act on ${SITE_ENV}, else on {CLI_DEFAULT_SITE} (this KVM host: local commands, "
        f"qemu:///system); runbooks (kvmops run/plan) default to demo, the recorded host that "
        f"only plans. Try: kvmops lv create vmweb3 --size 10g --site demo",
    )
    p.add_argument("--version", action="version", version=f"kvmops {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log every command executed")
    sub = p.add_subparsers(dest="command", required=True)
    only = _module(COMMANDS[command]) if command in COMMANDS else None
    for module in [only] if only is not None else [m for m in map(_module, MODULES) if m is not None]:
        module.register(sub)
    return p


def _module(name: str) -> ModuleType | None:
    """The command module ``name``; None for a tool that is not installed here."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if name in GROUPS or exc.name is None or not name.startswith(exc.name):
            raise
        return None  # a tool not installed here: its commands are simply absent


def command_of(argv: list[str]) -> str | None:
    """The command ``argv`` names: its first word that is not an option (the top-level options
    take no value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser(command_of(argv)).parse_args(argv)
    setup_logging(args.verbose)
    try:
        code: int = args.func(args)
        return code
    except KvmopsError as exc:
        print(f"kvmops: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kvmops: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
