"""Run commands on the KVM host over the system ``ssh``: batch mode, shared connection,
host keys always verified. The remote argv is quoted exactly once, here."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
import weakref
from dataclasses import replace
from pathlib import Path

from kvmops.cmd import Cmd, Result
from kvmops.errors import CommandFailed, InvalidInput
from kvmops.runners.base import LineSink, Runner
from kvmops.runners.local import popen_result
from kvmops.sshtarget import SSHTarget

_FORBIDDEN_OPTIONS = ("stricthostkeychecking=no", "userknownhostsfile=/dev/null")


class SSHRunner(Runner):
    """``ssh -o BatchMode=yes -o StrictHostKeyChecking=yes ... DEST -- 'env K=V argv...'``."""

    # a host that stops answering (hung, cut off) ends the command after 15 s x 8 unanswered
    # keepalives, not never
    ALIVE_INTERVAL = 15
    ALIVE_COUNT = 8

    def __init__(self, target: SSHTarget, extra_options: tuple[str, ...] = ()) -> None:
        super().__init__()
        for opt in extra_options:
            if opt.replace(" ", "").lower() in _FORBIDDEN_OPTIONS:
                raise InvalidInput(f"ssh option {opt!r} switches host key checking off: refused")
        self.target = target
        self.host = target.destination.split("@")[-1]
        self._control_dir = tempfile.mkdtemp(prefix="kvmops-ssh-")
        self._extra = extra_options
        self._forwards: list[str] = []
        # closed on every path out: by close(), when the runner is dropped, or when the process
        # ends (a runbook that failed: its kernel exits without reaching host.close())
        self._closer = weakref.finalize(self, _shut, self._control_dir,
                                        [*self.ssh_argv(), "-O", "exit", self.target.destination])
        self._connected = False  # a command ran: the master connection is up (ControlPersist)

    def ssh_argv(self) -> list[str]:
        """The ssh prefix: batch mode, strict host keys, connection sharing."""
        t = self.target
        argv = [
            "ssh",
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "ControlMaster=auto",
            "-o", f"ControlPath={self._control_dir}/%C",
            "-o", "ControlPersist=120",
            "-o", "ConnectTimeout=15",
            "-o", f"ServerAliveInterval={self.ALIVE_INTERVAL}",
            "-o", f"ServerAliveCountMax={self.ALIVE_COUNT}",
        ]
        if t.port:
            argv += ["-p", str(t.port)]
        if t.identity:
            argv += ["-i", t.identity, "-o", "IdentitiesOnly=yes"]
        if t.known_hosts:
            argv += ["-o", f"UserKnownHostsFile={t.known_hosts}"]
        for opt in self._extra:
            argv += ["-o", opt]
        return argv

    def remote_command(self, cmd: Cmd) -> str:
        """The single string the remote shell parses: ``env LC_ALL=C K=V argv...``."""
        env = [f"{k}={v}" for k, v in (*cmd.env, ("LC_ALL", "C"))]
        return shlex.join(["env", *env, *cmd.argv])

    def _execute(self, cmd: Cmd, on_line: LineSink | None) -> Result:
        result = popen_result(self.host, cmd, self.stream_argv(cmd), on_line)
        self._connected = self._connected or result.returncode != 255  # 255: ssh itself failed
        if result.returncode == 255 and not result.stderr.strip():  # the shared connection ended
            result = replace(result, stderr=self._silent_end())
        return result

    def _silent_end(self) -> str:
        return (f"ssh to {self.host} ended without a message: the host stopped answering "
                f"({self.ALIVE_COUNT} keepalives {self.ALIVE_INTERVAL} s apart went unanswered) or the "
                "connection was cut (or the command itself exited 255). Check that the host is up "
                "(its console), then run again.")

    def stream_argv(self, cmd: Cmd) -> list[str]:
        return [*self.ssh_argv(), "--", self.target.destination, self.remote_command(cmd)]

    def forward_unix(self, remote: str) -> str:
        """Forward a unix socket of the host (e.g. libvirt's) to a local one over the shared
        connection: ``ssh -O forward -L LOCAL:REMOTE DEST``. Returns the local path."""
        local = f"{self._control_dir}/fwd-{len(self._forwards)}.sock"
        if not self._connected:
            self.run(Cmd(("true",)))  # the first command brings the master connection up
        res = self._forward(local, remote)
        if res.returncode != 0:  # the master had ended (idle longer than ControlPersist)
            self.run(Cmd(("true",)))
            res = self._forward(local, remote)
        if res.returncode != 0:
            raise CommandFailed(self.host, ("ssh", "-O", "forward", "-L", f"{local}:{remote}"),
                                res.returncode, res.stderr)
        self._forwards.append(local)
        return local

    def _forward(self, local: str, remote: str) -> subprocess.CompletedProcess[str]:
        """``ssh -O forward -L LOCAL:REMOTE DEST``: asks the master connection (fails without one)."""
        return subprocess.run(
            [*self.ssh_argv(), "-O", "forward", "-L", f"{local}:{remote}", self.target.destination],
            capture_output=True, text=True, check=False, timeout=30,
        )

    def close(self) -> None:
        """Stop the shared master connection and remove its socket folder (once)."""
        self._closer()


def _shut(control_dir: str, exit_argv: list[str]) -> None:
    """``ssh -O exit`` when a master connection was made, then the control folder goes."""
    try:
        if any(p.is_socket() for p in Path(control_dir).glob("*")):
            subprocess.run(exit_argv, capture_output=True, check=False, timeout=15)
    except (OSError, subprocess.SubprocessError):
        pass  # the master ends by itself (ControlPersist); the folder is removed all the same
    finally:
        shutil.rmtree(control_dir, ignore_errors=True)
