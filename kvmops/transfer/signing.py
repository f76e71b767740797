"""Signed texts (pure): a manifest signed with ``ssh-keygen -Y sign`` by the host that wrote it,
verified with ``ssh-keygen -Y verify`` against the allowed signers the site names.

Nothing here knows backup folders: any text kvmops writes for a later restore (today the
manifest of a backup at a place, later the one kept beside a BorgBackup or restic archive) is
signed and checked the same way. The signature is OpenSSH's own format (``-----BEGIN SSH
SIGNATURE-----``) over the exact bytes of the text, in the namespace :data:`NAMESPACE`, so a
signature made for something else (a git commit, a file of another tool) never verifies here.
Who signed is the principal the text claims (the manifest's ``source_site``): the allowed
signers file maps each host's name to its key (``kvm1 ssh-ed25519 AAAA...``).

Running the commands: :mod:`kvmops.facts.signing` (verify here, where kvmops runs);
signing is a read on the signing host (its key never leaves it: the text goes in on stdin,
the signature comes out on stdout).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kvmops.cmd import Cmd, Kind
from kvmops.errors import InvalidInput

NAMESPACE = "kvmops-backup"
SUFFIX = ".sig"  # the signature of FILE is FILE.sig
MAX_SIGNATURE = 16 << 10  # bytes: an SSH signature is ~300 (ed25519) to ~1,100 (RSA 4096)
DEFAULT_KEY = "/etc/ssh/ssh_host_ed25519_key"  # the host's own SSH host key
GOOD, UNSIGNED, BAD, UNCHECKED = "good", "unsigned", "bad", "unchecked"
_ARMOR = re.compile(r"-----BEGIN SSH SIGNATURE-----\n[A-Za-z0-9+/=\n]+-----END SSH SIGNATURE-----\n?")
_PRINCIPAL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,252}")


@dataclass(frozen=True)
class Trust:
    """What a text's signature says: ``good`` (by ``signer``, an allowed key), ``unsigned``,
    ``bad`` (altered, another key, a signer not allowed) or ``unchecked`` (no allowed signers to
    check against); ``detail`` says it for a person."""

    state: str
    detail: str
    signer: str = ""

    @property
    def good(self) -> bool:
        return self.state == GOOD


def sign_cmd(key: str, text: str, namespace: str = NAMESPACE) -> Cmd:
    """``ssh-keygen -Y sign -n NS -f KEY`` with ``text`` on stdin: the signature on stdout (no
    file is written: ssh-keygen writes ``FILE.sig`` only for a file named on its command line)."""
    _path(key, "signing key")
    return Cmd(("ssh-keygen", "-q", "-Y", "sign", "-n", namespace, "-f", key), Kind.READ, stdin=text, timeout=60)


def verify_argv(allowed_signers: str, principal: str, signature_file: str,
                namespace: str = NAMESPACE) -> tuple[str, ...]:
    """``ssh-keygen -Y verify``: the text on stdin, exit 0 only for a good signature by an
    allowed key of ``principal``."""
    _path(allowed_signers, "allowed signers file")
    if not _PRINCIPAL.fullmatch(principal):
        raise InvalidInput(f"signer {principal!r} is not a host name")
    return ("ssh-keygen", "-Y", "verify", "-f", allowed_signers, "-I", principal, "-n", namespace,
            "-s", signature_file)


def signature_problem(signature: str) -> str:
    """Why ``signature`` is not an SSH signature to give ``ssh-keygen`` at all ("" when it is one)."""
    if len(signature) > MAX_SIGNATURE:
        return f"its signature is larger than {MAX_SIGNATURE} bytes: not an SSH signature"
    if not _ARMOR.fullmatch(signature):
        return "its signature is not an SSH signature (-----BEGIN SSH SIGNATURE-----)"
    return ""


def judged(returncode: int, stdout: str, stderr: str, principal: str) -> Trust:
    """The verdict of ``ssh-keygen -Y verify`` (exit 0 and its ``Good "NS" signature for P``)."""
    said = (stdout + stderr).strip().splitlines()
    line = next((ln for ln in said if ln.startswith("Good ")), "")
    if returncode == 0 and line:
        return Trust(GOOD, f"signed by {principal}: {line}", principal)
    why = "; ".join(ln for ln in said if ln.strip())[:300] or f"ssh-keygen exited {returncode}"
    return Trust(BAD, f"its signature does NOT verify as {principal}'s ({why})")


def unsigned(detail: str = "it is not signed (no manifest.json.sig)") -> Trust:
    return Trust(UNSIGNED, detail)


def unchecked(site: str) -> Trust:
    return Trust(UNCHECKED, f"site {site} names no allowed signers ([backup] allowed_signers), so no "
                            "signature can be checked")


def _path(path: str, what: str) -> str:
    if not path.startswith("/") or any(c in path for c in "\0\n\r") or ".." in path.split("/"):
        raise InvalidInput(f"{what} {path!r}: give an absolute path")
    return path
