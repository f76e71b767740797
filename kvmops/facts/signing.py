"""Checking a signed text where kvmops runs (:mod:`kvmops.transfer.signing`): ``ssh-keygen -Y
verify`` against the allowed signers file the site names, through a local runner (so the check
is in the run's command record). The signature goes to ssh-keygen in a private temporary file,
removed at once; the text on stdin."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from kvmops.cmd import Cmd, Kind
from kvmops.errors import CommandFailed
from kvmops.runners import LocalRunner
from kvmops.transfer import signing
from kvmops.transfer.signing import Trust


def verify_text(text: str, signature: str, allowed_signers: str, principal: str, *,
                site: str = "", namespace: str = signing.NAMESPACE) -> Trust:
    """Whether ``signature`` is a good signature of ``text`` by an allowed key of ``principal``."""
    if not signature:
        return signing.unsigned()
    if not allowed_signers:
        return signing.unchecked(site or "(this)")
    if not Path(allowed_signers).is_file():
        return Trust(signing.UNCHECKED, f"the allowed signers file {allowed_signers} (site {site}) does not exist, "
                                        "so no signature can be checked")
    problem = signing.signature_problem(signature)
    if problem:
        return Trust(signing.BAD, problem)
    folder = tempfile.mkdtemp(prefix="kvmops-verify-")
    try:
        sig = Path(folder) / "manifest.sig"
        fd = os.open(sig, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(signature)
        argv = signing.verify_argv(allowed_signers, principal, str(sig), namespace)
        cmd = Cmd(argv, Kind.READ, stdin=text, ok=(0, 255), timeout=60)
        try:
            res = LocalRunner("localhost").run(cmd)
        except CommandFailed as exc:  # not installed, or an exit code ssh-keygen does not use
            return Trust(signing.BAD, f"cannot check its signature: {exc}")
        return signing.judged(res.returncode, res.stdout, res.stderr, principal)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
