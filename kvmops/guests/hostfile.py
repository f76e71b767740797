"""The guests' domain XML files kept on the host (``/root/kvm/<name>.xml``, guide 3.2).

Read and written through the host's runner, so the same code works locally and over SSH.
"""

from __future__ import annotations

from kvmops import names
from kvmops.cmd import Cmd, change, read
from kvmops.site import Site

UNDEFINED_SUFFIX = ".undefined"


def xml_path(site: Site, guest: str) -> str:
    """``<xml_dir>/<name>.xml``, e.g. ``/root/kvm/test1.xml``."""
    return f"{site.xml_dir.rstrip('/')}/{names.guest_name(guest)}.xml"


def cat_cmd(path: str) -> Cmd:
    """``cat -- PATH`` (read-only; exit 1 when the file is missing)."""
    return read("cat", "--", path, ok=(0, 1))


def write_cmd(path: str, text: str) -> Cmd:
    """``install -D -m 0600 /dev/stdin PATH`` with the text on stdin (creates the folder)."""
    return change("install", "-D", "-m", "0600", "/dev/stdin", path, stdin=text)


def exists_cmd(path: str) -> Cmd:
    """``test -e PATH`` (read-only; exit 1 when missing)."""
    return read("test", "-e", path, ok=(0, 1))


def retire_cmd(path: str) -> Cmd:
    """``mv --backup=numbered -- PATH PATH.undefined``: kept for reference, never deleted."""
    return change("mv", "--backup=numbered", "--", path, path + UNDEFINED_SUFFIX)
