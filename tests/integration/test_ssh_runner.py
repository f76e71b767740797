"""The SSH runner against a real sshd on 127.0.0.1: quoting once, stdin, strict host keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kvmops.cmd import change, read
from kvmops.errors import CommandFailed
from kvmops.runners import SSHRunner
from kvmops.sshtarget import SSHTarget
from tests.conftest import need_tools
from tests.support.sshd import Sshd, private_sshd

pytestmark = pytest.mark.integration


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    need_tools("ssh", "ssh-keygen", "/usr/sbin/sshd")
    with private_sshd(tmp_path) as server:
        yield server


def runner(s: Sshd, known_hosts: Path | None = None) -> SSHRunner:
    target = SSHTarget("root@127.0.0.1", s.port, str(s.identity), str(known_hosts or s.known_hosts))
    return SSHRunner(target)


def test_argv_arrives_exactly_once_quoted(sshd: Sshd, tmp_path: Path) -> None:
    r = runner(sshd)
    try:
        tricky = ["a b", "$(touch /tmp/kvmops-pwned)", "semi;colon", "'quote'", '"dq"', "*"]
        res = r.run(read("printf", "%s\\n", *tricky))
        assert res.stdout.splitlines() == tricky
        assert not Path("/tmp/kvmops-pwned").exists()
        out = tmp_path / "stdin-copy"
        r.run(change("tee", str(out), stdin="line1\nline2\n"))
        assert out.read_text() == "line1\nline2\n"
        assert r.run(read("sh", "-c", 'echo "$LVM_SUPPRESS_FD_WARNINGS"')).stdout == "1\n"
        with pytest.raises(CommandFailed) as err:
            r.run(read("ls", "/nonexistent-kvmops"))
        assert err.value.returncode == 2 and err.value.host == "127.0.0.1"
    finally:
        r.close()


def test_unknown_host_key_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong_known_hosts"
    other_key = "AAAAC3NzaC1lZDI1NTE5AAAAIDTcy5Bx0Pz9K2AKJiaQOmXQ6Vx4D4gK1C7tWm2yXxYt"
    wrong.write_text(f"[127.0.0.1]:{sshd.port} ssh-ed25519 {other_key}\n")
    r = runner(sshd, wrong)
    try:
        with pytest.raises(CommandFailed) as err:
            r.run(read("true"))
        assert err.value.returncode == 255
        assert "HOST IDENTIFICATION HAS CHANGED" in err.value.stderr or "verification failed" in err.value.stderr
    finally:
        r.close()


def test_unix_socket_forwarded_over_the_shared_connection(sshd: Sshd, tmp_path: Path) -> None:
    """How kvmops reaches a remote libvirtd: its socket forwarded through the same SSH
    connection (strict host keys), so libvirt never opens its own unverified one."""
    import socket
    import threading

    remote = tmp_path / "remote.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(remote))
    server.listen(1)

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"hello " + conn.recv(64))

    t = threading.Thread(target=answer, daemon=True)
    t.start()
    r = runner(sshd)
    try:
        local = r.forward_unix(str(remote))
        with socket.socket(socket.AF_UNIX) as c:
            c.connect(local)
            c.sendall(b"libvirt")
            assert c.recv(64) == b"hello libvirt"
    finally:
        r.close()
        server.close()
        t.join(timeout=5)
    assert not Path(local).exists()


def test_a_host_that_stops_answering_ends_the_command(sshd: Sshd, tmp_path: Path) -> None:
    """The host's sshd for this connection frozen mid-command (as a hung host's would be): ssh's
    keepalives go unanswered and the command fails, instead of waiting for ever."""
    import os
    import signal
    import threading
    import time

    r = runner(sshd)
    r.ALIVE_INTERVAL, r.ALIVE_COUNT = 1, 2  # the product waits 15 s x 8
    pid_file = tmp_path / "session-pid"
    outcome: list[BaseException | None] = []

    def long_command() -> None:
        try:
            r.run(read("sh", "-c", f"echo $PPID > {pid_file}; exec sleep 120"))
            outcome.append(None)
        except CommandFailed as exc:
            outcome.append(exc)

    worker = threading.Thread(target=long_command, daemon=True)
    worker.start()
    frozen: list[int] = []
    try:
        deadline = time.monotonic() + 20
        while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        session = int(pid_file.read_text())
        monitor = int(Path(f"/proc/{session}/stat").read_text().rsplit(")", 1)[1].split()[1])
        for pid in (session, monitor):  # the session and its privileged monitor: nothing answers
            os.kill(pid, signal.SIGSTOP)
            frozen.append(pid)
        worker.join(timeout=60)  # the command itself would run 120 s
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
        r.close()
    assert not worker.is_alive(), "the command still waits on a host that does not answer"
    err = outcome[0]
    assert isinstance(err, CommandFailed) and err.returncode == 255, outcome
    assert "the host stopped answering (2 keepalives 1 s apart went unanswered)" in err.stderr, err.stderr
