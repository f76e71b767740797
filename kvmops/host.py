"""The Host: a runner, the libvirt URI and the site configuration, passed explicitly."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kvmops.cmd import Cmd, Result
from kvmops.runners import LocalRunner, PlanRunner, Runner, SSHRunner
from kvmops.runners.base import LineSink
from kvmops.site import Site
from kvmops.sshtarget import SSHTarget

if TYPE_CHECKING:
    from kvmops.virt import Virt


@dataclass
class Host:
    """One KVM host as kvmops sees it.

    ``runner`` executes commands; with a :class:`PlanRunner` nothing mutating runs and
    ``apply`` is False. ``libvirt_uri`` is where the libvirt adapter connects.
    """

    site: Site
    runner: Runner
    libvirt_uri: str
    _virt: Virt | None = field(default=None, repr=False)

    @property
    def apply(self) -> bool:
        return self.runner.executes_mutations

    @property
    def name(self) -> str:
        return self.site.name

    def run(self, cmd: Cmd, *, check: bool = True, on_line: LineSink | None = None) -> Result:
        return self.runner.run(cmd, check=check, on_line=on_line)

    @property
    def virt(self) -> Virt:
        """The libvirt adapter, connected on first use.

        For a host reached over SSH, libvirt's socket is forwarded through the runner's own
        SSH connection (strict host keys, the site's key and known_hosts), and libvirt
        connects to that local socket: ``qemu+unix:///system?socket=...``.
        """
        if self._virt is None:
            from kvmops.virt import Virt

            self._virt = Virt(self._connect_uri())
        return self._virt

    def _connect_uri(self) -> str:
        ssh = ssh_runner_of(self.runner)
        if ssh is None or not self.site.libvirt_uri.startswith("qemu:///") or not self.libvirt_uri.startswith("qemu"):
            return self.libvirt_uri  # local, or a URI the caller chose (the test driver)
        local = ssh.forward_unix(REMOTE_LIBVIRT_SOCKET)
        return f"qemu+unix:///{self.site.libvirt_uri.removeprefix('qemu:///')}?socket={local}"

    def close(self) -> None:
        if self._virt is not None:
            self._virt.close()
            self._virt = None
        self.runner.close()


REMOTE_LIBVIRT_SOCKET = "/run/libvirt/libvirt-sock"


def ssh_runner_of(runner: Runner) -> SSHRunner | None:
    """The SSH runner behind ``runner`` (itself, or the one a plan runner wraps)."""
    inner = runner.inner if isinstance(runner, PlanRunner) else runner
    return inner if isinstance(inner, SSHRunner) else None


def runner_for(site: Site) -> Runner:
    """Local on the host itself; SSH (strict host keys) when the site names a destination;
    on a recorded site (the demo) a runner that runs nothing (its facts are data)."""
    if site.recorded:
        from kvmops.runners.recorded import RecordedRunner

        return RecordedRunner(site.name, site.recorded)
    if not site.ssh:
        return LocalRunner(site.name)
    return SSHRunner(
        SSHTarget(site.ssh, site.ssh_port, site.ssh_identity, site.ssh_known_hosts)
    )


def libvirt_uri_for(site: Site) -> str:
    """``qemu:///system`` on the host; ``qemu+ssh://root@HOST/system`` from an admin's machine."""
    uri = site.libvirt_uri
    if not site.ssh or "://" not in uri or not uri.startswith("qemu:///"):
        return uri
    rest = uri.removeprefix("qemu:///")
    query = []
    if site.ssh_identity:
        query.append(f"keyfile={site.ssh_identity}")
    if site.ssh_known_hosts:
        query.append(f"known_hosts={site.ssh_known_hosts}")
    query.append("no_tty=1")
    port = f":{site.ssh_port}" if site.ssh_port else ""
    return f"qemu+ssh://{site.ssh}{port}/{rest}?" + "&".join(query)


def connect(site: Site, *, apply: bool = False, runner: Runner | None = None) -> Host:
    """A Host for ``site``; without ``apply`` mutating commands are only recorded.

    A recorded site (the demo) is plan-only: ``apply`` is refused, whatever runner is given.
    """
    if apply and site.recorded:
        from kvmops.runners.recorded import PlanOnly

        raise PlanOnly(
            f"site {site.name} ({site.path}) is recorded facts and plan-only: nothing can be applied "
            "there. Plan without apply, or give the site file of a real host"
        )
    real = runner or runner_for(site)
    return Host(site, real if apply else PlanRunner(real), libvirt_uri_for(site))
