"""NetworkManager inside a network namespace the test makes, and a runner that runs there.

``nm_in_netns(tmp)`` creates a namespace, starts a private ``dbus-daemon`` (socket in ``tmp``)
and ``NetworkManager --no-daemon`` with a private configuration (dns=none,
rc-manager=unmanaged, keyfiles in ``tmp``, no-auto-default=*), and yields a :class:`NetnsNM`
whose :meth:`~NetnsNM.runner` executes kvmops commands as
``ip netns exec NS env DBUS_SYSTEM_BUS_ADDRESS=... ARGV``.

NetworkManager also writes to ``/run/NetworkManager`` and ``/var/lib/NetworkManager``; it runs
in a private mount namespace where both are replaced by folders under ``tmp``, so the machine's
own files are never touched. Everything (NM, dbus, the namespace) is gone on every exit path.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from kvmops.cmd import Cmd, Result
from kvmops.runners.base import LineSink
from kvmops.runners.local import LocalRunner, popen_result

BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="root"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
  </policy>
</busconfig>
"""

NM_CONF = """[main]
plugins=keyfile
dns=none
rc-manager=unmanaged
no-auto-default=*
auth-polkit=false

[keyfile]
path={keyfiles}

[logging]
level=INFO
"""


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=60)


class NetnsRunner(LocalRunner):
    """A LocalRunner whose commands run inside a namespace, talking to a private bus.

    ``nmcli -t ...`` becomes ``ip netns exec NS env DBUS_SYSTEM_BUS_ADDRESS=ADDR nmcli -t ...``.
    """

    def __init__(self, netns: str, bus: str) -> None:
        super().__init__(host=f"netns:{netns}")
        self.prefix = ("ip", "netns", "exec", netns, "env", f"DBUS_SYSTEM_BUS_ADDRESS={bus}")

    def _execute(self, cmd: Cmd, on_line: LineSink | None) -> Result:
        return popen_result(self.host, cmd, [*self.prefix, *cmd.argv], on_line)


@dataclass
class NetnsNM:
    """A running NetworkManager in namespace ``netns``; ``timings`` holds setup seconds."""

    netns: str
    bus: str
    keyfiles: Path
    log: Path
    timings: dict[str, float] = field(default_factory=dict)

    def runner(self) -> NetnsRunner:
        return NetnsRunner(self.netns, self.bus)

    def ns(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a test-side command (``ip ...``) inside the namespace."""
        return sh("ip", "netns", "exec", self.netns, *argv, check=check)

    def nmcli(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.ns("env", f"DBUS_SYSTEM_BUS_ADDRESS={self.bus}", "nmcli", *argv, check=check)


@contextlib.contextmanager
def netns(prefix: str = "kvt") -> Iterator[str]:
    """A fresh network namespace (loopback up), deleted with everything in it afterwards."""
    name = f"{prefix}{secrets.token_hex(4)}"
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        yield name
    finally:
        sh("ip", "netns", "delete", name, check=False)


@contextlib.contextmanager
def nm_in_netns(tmp: Path) -> Iterator[NetnsNM]:
    """Namespace + private dbus-daemon + NetworkManager; all stopped and removed afterwards."""
    t0 = time.monotonic()
    for sub in ("keyfiles", "conf.d", "sysconf.d", "run", "varlib"):
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    socket = tmp / "bus.sock"
    (tmp / "bus.conf").write_text(BUS_CONF.format(socket=socket))
    (tmp / "nm.conf").write_text(NM_CONF.format(keyfiles=tmp / "keyfiles"))
    with netns() as name:
        t_ns = time.monotonic()
        dbus = _start_dbus(name, tmp / "bus.conf")
        try:
            bus = f"unix:path={socket}"
            t_bus = time.monotonic()
            nm = _start_nm(name, tmp, bus)
            try:
                handle = NetnsNM(name, bus, tmp / "keyfiles", tmp / "nm.log")
                _wait_running(handle, nm)
                t_nm = time.monotonic()
                handle.timings = {
                    "netns": round(t_ns - t0, 3),
                    "dbus": round(t_bus - t_ns, 3),
                    "networkmanager": round(t_nm - t_bus, 3),
                    "total": round(t_nm - t0, 3),
                }
                yield handle
            finally:
                _stop(nm)
        finally:
            _stop_pid(dbus)


def _start_dbus(netns_name: str, conf: Path) -> int:
    """``dbus-daemon --config-file=CONF --fork --print-pid=1``: returns the daemon's pid."""
    out = sh("ip", "netns", "exec", netns_name, "dbus-daemon", f"--config-file={conf}",
             "--fork", "--print-pid=1").stdout
    return int(out.split()[0])


def _start_nm(netns_name: str, tmp: Path, bus: str) -> subprocess.Popen[bytes]:
    argv = [
        "NetworkManager", "--no-daemon",
        f"--config={tmp / 'nm.conf'}", f"--config-dir={tmp / 'conf.d'}",
        f"--system-config-dir={tmp / 'sysconf.d'}", f"--intern-config={tmp / 'intern.conf'}",
        f"--state-file={tmp / 'nm.state'}", f"--pid-file={tmp / 'run' / 'nm.pid'}",
        "--debug", "--log-level=INFO",
    ]
    log = (tmp / "nm.log").open("wb")
    try:
        return subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, netns_name, str(tmp), *argv],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": bus},
        )
    finally:
        log.close()


# A fresh single-threaded process (no preexec_fn in a test process that may run threads):
# join the netns, then a private mount namespace where NetworkManager's state folders
# (/run/NetworkManager, /var/lib/NetworkManager) are folders under TMP and /sys shows the
# namespace's interfaces (as `ip netns exec` does); then exec NetworkManager.
LAUNCHER = r"""
import ctypes, os, sys
netns, tmp, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    if getattr(libc, name)(*args) != 0:
        err = ctypes.get_errno()
        sys.exit(f"netns launcher: {name}: {os.strerror(err)}")
fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
call("setns", fd, 0x40000000)                              # CLONE_NEWNET
os.close(fd)
call("unshare", 0x00020000)                                # CLONE_NEWNS
call("mount", b"none", b"/", None, 16384 | (1 << 18), None)  # MS_REC | MS_PRIVATE
for target, source in (("/run", "run"), ("/var/lib/NetworkManager", "varlib")):
    if os.path.isdir(target):
        call("mount", os.path.join(tmp, source).encode(), target.encode(), None, 4096, None)  # MS_BIND
call("umount2", b"/sys", 2)                                # MNT_DETACH
call("mount", b"sysfs", b"/sys", b"sysfs", 0, None)
os.execvp(argv[0], argv)
"""


def _wait_running(handle: NetnsNM, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"NetworkManager exited {proc.returncode}:\n{handle.log.read_text()}")
        if handle.nmcli("-t", "-f", "RUNNING", "general", check=False).stdout.strip() == "running":
            return
        time.sleep(0.05)
    raise RuntimeError(f"NetworkManager not running after {timeout} s:\n{handle.log.read_text()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stop_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 15)
    for _ in range(100):
        if not _alive(pid):
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 9)


FIXTURES = Path(__file__).parent.parent / "fixtures" / "net"


class FixtureRunner(LocalRunner):
    """Answers kvmops' network fact commands with real captured outputs (``tests/fixtures/net``).

    ``outputs`` maps a command's first words to a fixture file; an unknown read-only command
    fails the test; mutating commands are recorded and "succeed" (rc 0, no output).
    """

    GUIDE: ClassVar[dict[tuple[str, ...], str]] = {
        ("ip", "-j", "-d", "address", "show"): "ip-addr-guide.out",
        ("bridge", "-j", "vlan", "show"): "bridge-vlan-nofilter.out",
        ("nmcli", "-t", "-e", "yes", "-f", "NAME,UUID,TYPE,DEVICE"): "nmcli-list-guide.out",
        ("nmcli", "-t", "-e", "yes", "-f", "DEVICE,TYPE,STATE,CONNECTION"): "nmcli-devices-guide.out",
        ("nmcli", "-t", "-e", "yes", "-f", "connection.id,"): "nmcli-details-guide.out",
    }

    LAB: ClassVar[dict[tuple[str, ...], str]] = {
        ("ip", "-j", "-d", "address", "show"): "lab-ip-addr-vlan.out",
        ("bridge", "-j", "vlan", "show"): "lab-bridge-vlan.out",
        ("nmcli", "-t", "-e", "yes", "-f", "NAME,UUID,TYPE,DEVICE"): "lab-nmcli-list.out",
        ("nmcli", "-t", "-e", "yes", "-f", "DEVICE,TYPE,STATE,CONNECTION"): "lab-nmcli-devices.out",
        ("nmcli", "-t", "-e", "yes", "-f", "connection.id,"): "lab-nmcli-details.out",
    }

    def __init__(self, outputs: dict[tuple[str, ...], str] | None = None, host: str = "fixtures") -> None:
        super().__init__(host)
        self.outputs = dict(self.GUIDE if outputs is None else outputs)

    def _execute(self, cmd: Cmd, on_line: LineSink | None) -> Result:
        if cmd.mutates:
            return Result(cmd, self.host, 0, "", "", 0.0)
        for prefix, name in self.outputs.items():
            if _starts(cmd.argv, prefix):
                return Result(cmd, self.host, 0, (FIXTURES / name).read_text(), "", 0.0)
        raise AssertionError(f"no fixture for {cmd.display()}")


def _starts(argv: tuple[str, ...], prefix: tuple[str, ...]) -> bool:
    if len(argv) < len(prefix):
        return False
    *head, last = prefix
    return tuple(argv[: len(head)]) == tuple(head) and argv[len(head)].startswith(last)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped by PID 1) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
