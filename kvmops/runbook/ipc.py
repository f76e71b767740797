"""Kernels over IPC: jupyter_client's local provisioner with the kernel's sockets as files.

Named by the ``kvmops`` kernel spec (``metadata.kernel_provisioner``), registered as entry
point ``kvmops-ipc`` in ``jupyter_client.kernel_provisioners``. A kernel over TCP listens on
five loopback ports that any local user can reach, and ipykernel says so on stderr at every
start ("Kernel is running over TCP without encryption"). Over IPC its sockets are files in a
folder of its own (mode 0700, removed with the kernel), in the temporary folder because a
socket's path must stay short (about 107 bytes).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from jupyter_client.provisioning.local_provisioner import LocalProvisioner

NAME = "kvmops-ipc"


class IpcProvisioner(LocalProvisioner):
    """:class:`LocalProvisioner` whose kernel manager connects over ``ipc://``."""

    _folder: Path | None = None

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        km = self.parent
        if km is not None:
            if self._folder is None:  # kept across restarts, as the connection file is
                self._folder = Path(tempfile.mkdtemp(prefix="kvmops-kernel-"))
            km.transport = "ipc"
            km.ip = str(self._folder / "kernel")
        result: dict[str, Any] = await super().pre_launch(**kwargs)
        return result

    async def cleanup(self, restart: bool = False) -> None:
        await super().cleanup(restart=restart)
        if not restart and self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
