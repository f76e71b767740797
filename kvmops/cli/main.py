"""``kvmops``: entry point. Errors print as one clear message and exit 2 (1 for failed runs)."""

from __future__ import annotations

import argparse
import importlib
import sys

from kvmops import __version__
from kvmops.cli.common import CLI_DEFAULT_SITE, setup_logging
from kvmops.errors import KvmopsError
from kvmops.site import SITE_ENV

# Command groups, each a module with a ``register(subparsers)``: the runtime's own, then the
# tools around it (the lab and the manual's build), which a runtime-only install may lack.
GROUPS = tuple(f"kvmops.cli.{g}" for g in ("lv", "guest", "inventory", "runbooks", "net", "image", "fleet",
                                              "notebook"))
TOOL_GROUPS = ("kvmops_lab.cli", "kvmops_lab.demo", "kvmops_manual.cli")


def parser() -> argparse.ArgumentParser:
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
    for name in GROUPS:
        importlib.import_module(name).register(sub)
    for name in TOOL_GROUPS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise
            continue  # a tool not installed here: its commands are simply absent
        module.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
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
