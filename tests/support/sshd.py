"""A private sshd on 127.0.0.1 with its own host key, client key and known_hosts file."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.secrets import register_key


@dataclass(frozen=True)
class Sshd:
    port: int
    identity: Path
    known_hosts: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path, comment: str = "") -> None:
    """A throwaway ed25519 key pair at ``path`` (and ``path.pub``), registered with the secret scan."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True)
    register_key(path.read_text())  # the session's secret scan looks for it in every output


@contextmanager
def private_sshd(tmp: Path, extra: str = "") -> Iterator[Sshd]:
    """Start ``sshd -D`` on a free loopback port accepting only a fresh key; stop it after.

    ``extra``: more sshd_config lines (e.g. ``SetEnv LVM_SYSTEM_DIR=...`` for the sessions)."""
    host_key, client_key = tmp / "host_key", tmp / "client_key"
    keygen(host_key)
    keygen(client_key)
    auth = tmp / "authorized_keys"
    auth.write_text((tmp / "client_key.pub").read_text())
    auth.chmod(0o600)
    port = free_port()
    config = tmp / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nAuthorizedKeysFile {auth}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        f"PidFile {tmp / 'sshd.pid'}\nStrictModes no\nUsePAM no\n{extra}"
    )
    known = tmp / "known_hosts"
    pub = (tmp / "host_key.pub").read_text().split()
    known.write_text(f"[127.0.0.1]:{port} {pub[0]} {pub[1]}\n")
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_port(port, proc)
        yield Sshd(port, client_key, known)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("sshd did not listen within 10 s")
