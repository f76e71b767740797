"""Guests made BY THE RUNBOOKS from the realistic cloud image in the lab, and what a boot of
their disk shows from outside (issue 12, items 2-4; tests/lab/test_runbook_guests.py).

:func:`create` runs ``guest-create --apply`` in the lab exactly as an operator would (the cloud
image in the lab, ``setup=tweaks`` or ``nocloud``, a key for the login user, root's password,
a static address) with ``console_seconds=0``: under the lab's nested virtualisation a systemd
guest needs minutes to boot, so the runbook is told not to wait, and it says so itself: the
run FAILS at "Verify the guest" with "boot NOT verified: console_seconds=0 skipped" (it never
claims a boot it did not see). The guest it started is then destroyed with ``guest-lifecycle``
(a few seconds after its start: still in its boot loader or kernel, nothing written), so
:func:`kvmops_lab.guestboot.boot_from_lab` can boot the disk and seed the runbook wrote with
one level of QEMU here. That boot is the guest's first: cloud-init and the offline tweaks are
seen working there, not in the lab.

:func:`observe` collects from the booted guest what an operator relies on (login prompt, SSH
with the key at the static address, route, DNS, sudo, root's password on the console, the
filesystem size); the test asserts it. :func:`remove` clears a guest whatever state it is in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kvmops.cmd import change
from kvmops.host import Host
from kvmops.images import nocloud
from kvmops.runbook.execute import run_runbook
from kvmops.runbook.journal import RunRecord
from kvmops_lab import guestboot as gb
from kvmops_lab.errors import LabError
from kvmops_lab.guestboot import BootedGuest, LoginFailed, SshLogin
from kvmops_lab.prepare import CLOUD_IMAGE_FILE
from kvmops_lab.proofguest import drop_domain_and_lvs

Say = Callable[[str], None]
SKIPPED = "console_seconds=0 skipped the console check"


@dataclass(frozen=True)
class RunbookGuest:
    """A guest that guest-create made in the lab; defined there, shut off."""

    name: str
    setup: str
    vlan: int
    address: str
    login: SshLogin  # the site's login user with the key given to guest-create
    lv: str  # VG/LV
    created: RunRecord


def runbook(site_file: str, name: str, params: dict[str, object], *, confirm: str | None = None,
            say: Say = print) -> RunRecord:
    """``kvmops run NAME --apply`` against the lab; raises naming the step when it failed."""
    rec = run_runbook(name, params, site=site_file, apply=True, confirm=confirm, progress=say)
    if not rec.ok:
        raise LabError(f"{name} failed at {rec.failed_step!r}: {rec.error} (journal {rec.id})")
    return rec


def create(host: Host, site_file: str, name: str, setup: str, *, vlan: int, address: str, key: Path,
           root_password: str, size: str = "2g", image: str = CLOUD_IMAGE_FILE, more: tuple[tuple[int, str], ...] = (),
           gateway_vlan: int = 0, say: Say = print) -> RunbookGuest:
    """guest-create --apply (boot not waited for: see the module doc), then guest-lifecycle destroy.
    ``more``: (VLAN, static address) of the next NICs; ``gateway_vlan``: the default route's (0: the first)."""
    params: dict[str, object] = {
        "guest": name, "vlans": ",".join(str(v) for v in (vlan, *(m[0] for m in more))), "memory": "1g",
        "vcpus": 1, "size": size, "image": image, "setup": setup, "address": address,
        "addresses": ",".join(f"{v}={ip}" for v, ip in more), "gateway_vlan": gateway_vlan,
        "keys": Path(f"{key}.pub").read_text().strip(),
        "root_password": root_password, "sudo": True, "autostart": True, "console_seconds": 0.0}
    rec = run_runbook("guest-create", params, site=site_file, apply=True, progress=say)
    if rec.ok or rec.failed_step != "Verify the guest" or SKIPPED not in (rec.error or ""):
        raise LabError(f"guest-create {setup}: expected to stop only at the unverified boot, got "
                       f"{rec.status} at {rec.failed_step!r}: {rec.error} (journal {rec.id})")
    runbook(site_file, "guest-lifecycle", {"guest": name, "action": "destroy"}, confirm=name, say=say)
    lv = f"{host.site.vg}/{host.site.guest_lv(name)}"
    return RunbookGuest(name, setup, vlan, address, SshLogin(host.site.login_user, key), lv, rec)


def remove(host: Host, name: str) -> None:
    """The guest, its LV and snapshots, its kept XML and seed: gone, whatever was left."""
    drop_domain_and_lvs(host, name)
    xml_dir = host.site.xml_dir.rstrip("/")
    host.run(change("rm", "-f", f"{xml_dir}/{name}.xml", f"{xml_dir}/{name}.xml.undefined",
                    nocloud.seed_path(host.site, name)), check=False)
    host.run(change("rm", "-rf", f"/run/kvmops/lock/{name}"), check=False)


@dataclass(frozen=True)
class Observed:
    """What the booted guest showed from outside (console and SSH)."""

    ssh_seconds: float
    cloud_init: str  # `cloud-init status --long` ("" with setup=tweaks)
    addresses: list[str]
    gateway: str | None
    dns_nm: tuple[str, ...]
    dns_resolv: tuple[str, ...]
    sudo: bool
    root_uid_on_console: str
    wrong_password_refused: bool
    passwd_line: str  # the login user's /etc/passwd line
    groups: tuple[str, ...]
    root_fs_bytes: int


def observe(g: BootedGuest, guest: RunbookGuest, root_password: str, ssh_timeout: float = 300.0, *,
            nic: str = "eth0", route_nic: str = "eth0") -> Observed:
    """Everything an operator relies on, read from the booted guest (after its login prompt):
    ``nic``'s addresses (the first NIC's name in the guest), DNS on ``route_nic``."""
    login = guest.login
    ssh_s = g.wait_for_ssh(login, ssh_timeout)
    status = gb.cloud_init_status(g, login) if guest.setup == "nocloud" else ""
    dns = gb.dns_servers(g, login, route_nic)
    passwd = g.ssh(login, "getent", "passwd", login.user).stdout.strip()
    groups = tuple(g.ssh(login, "id", "-nG").stdout.split())
    uid = g.console_run("root", root_password, "id -u").strip().splitlines()[-1]
    try:
        g.console_run("root", root_password + "-wrong", "true", timeout=60)
        refused = False
    except LoginFailed:
        refused = True
    return Observed(ssh_s, status, gb.addresses(g, login, nic), gb.default_gateway(g, login), dns.nm, dns.resolv_conf,
                    gb.sudo_works(g, login), uid, refused, passwd, groups, gb.root_fs_bytes(g, login))


def write_file(g: BootedGuest, login: SshLogin, path: str, text: str) -> None:
    """``sudo tee PATH`` and ``sync``: a change inside the running guest."""
    res = g.ssh(login, "sudo", "-n", "sh", "-c", f"printf %s '{text}' > {path} && sync")
    if res.returncode != 0:
        raise LabError(f"writing {path} in {g.name} failed: {res.stderr.strip()[-300:]}")


def file_or_none(g: BootedGuest, login: SshLogin, path: str) -> str | None:
    res = g.ssh(login, "sudo", "-n", "cat", path)
    return res.stdout if res.returncode == 0 else None


def boot_journal(g: BootedGuest, login: SshLogin) -> str:
    return gb.journal(g, login, 50)
