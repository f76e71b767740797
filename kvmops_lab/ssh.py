"""SSH into the lab with its own key and known_hosts, host keys checked strictly (pure argv)."""

from __future__ import annotations

from kvmops_lab.state import LabState

DEST = "root@127.0.0.1"


def ssh_argv(state: LabState, *command: str, batch: bool = True, connect_timeout: int = 10) -> list[str]:
    """``ssh -p PORT -i KEY -o UserKnownHostsFile=KH -o StrictHostKeyChecking=yes root@127.0.0.1``."""
    argv = [
        "ssh", "-p", str(state.port), "-i", state.key,
        "-o", "IdentitiesOnly=yes",
        "-o", f"UserKnownHostsFile={state.known_hosts}",
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"ConnectTimeout={connect_timeout}",
        "-o", "LogLevel=ERROR",
    ]
    if batch:
        argv += ["-o", "BatchMode=yes"]
    argv.append(DEST)
    if command:
        argv += ["--", *command]
    return argv
