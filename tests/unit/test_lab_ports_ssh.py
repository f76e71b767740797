"""The SSH port (free, taken, taken under QEMU) and the lab's strict ssh argv."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from kvmops_lab.errors import LabError
from kvmops_lab.ports import check_port, free_port, port_free, port_taken_message
from kvmops_lab.ssh import ssh_argv
from kvmops_lab.state import LabState

FIXTURES = Path(__file__).parent.parent / "fixtures" / "lab"


@pytest.mark.parametrize("reuse", [0, 1])
def test_a_listening_port_is_taken(reuse: int) -> None:
    """Whether or not the listener set SO_REUSEADDR (QEMU's port forward does)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, reuse)
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert not port_free(port)
        with pytest.raises(LabError, match=f"SSH port {port} on 127.0.0.1 is already taken"):
            check_port(port)
    assert port_free(port)
    assert check_port(port) == port


def test_a_port_whose_listener_died_is_free_despite_time_wait() -> None:
    """A lab's QEMU killed (power cut): its closed connections stay in TIME_WAIT on the port."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            conn, _ = server.accept()
            conn.close()  # the server side closes first: TIME_WAIT on the server's port
            client.recv(1)
    assert port_free(port)
    assert check_port(port) == port


def test_free_port_is_bindable() -> None:
    port = free_port()
    assert 1024 <= port < 65536
    assert port_free(port)


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_not_a_port(port: int) -> None:
    with pytest.raises(LabError, match="not a port"):
        check_port(port)


def test_qemu_port_taken_message_is_recognised() -> None:
    real = (FIXTURES / "qemu-port-taken.stderr").read_text()
    assert port_taken_message(real)
    assert not port_taken_message("qemu-system-x86_64: -drive file=x: Could not open 'x'")


def test_ssh_argv_is_strict_and_uses_the_lab_key() -> None:
    st = LabState(pid=1, port=2222, accel="tcg", image_dir="/i", run_dir="/r", key="/i/id_ed25519",
                  known_hosts="/r/known_hosts", site="/r/site.toml", serial="/r/serial.log",
                  qmp="/r/qmp.sock", started="x")
    argv = ssh_argv(st, "lvs", "-a")
    assert argv[:5] == ["ssh", "-p", "2222", "-i", "/i/id_ed25519"]
    assert "StrictHostKeyChecking=yes" in argv and "UserKnownHostsFile=/r/known_hosts" in argv
    assert "BatchMode=yes" in argv and "IdentitiesOnly=yes" in argv
    assert argv[-4:] == ["root@127.0.0.1", "--", "lvs", "-a"]
    assert not any("StrictHostKeyChecking=no" in a for a in argv)
    interactive = ssh_argv(st, batch=False)
    assert interactive[-1] == "root@127.0.0.1" and "BatchMode=yes" not in interactive
