"""A guest made from the realistic image without kvmops' runbooks: to prove the image and the
boot harness by themselves (bench/guest_boot.py; the lab tier boots what the runbooks made).

The image file is copied onto a lab LV (``qemu-img convert``, as a runbook does). Then one of:

- ``offline``: a small offline step of this module's own (kpartx, mount, files, ``chpasswd``
  in a chroot; NOT kvmops.images): root's authorized key and password, a user ``proof`` with
  the key and passwordless sudo, a NetworkManager keyfile for eth0 with the static address;
- ``nocloud``: nothing written into the image; a NoCloud seed ISO (``genisoimage`` in the
  lab, in the site's xml_dir) for the domain's SATA CD-ROM: cloud-init makes the image's
  default user (centos) with the key, sets root's password and the static address.

Then a domain like the guide's template is defined (not started). :func:`remove` undoes all.
"""

from __future__ import annotations

import contextlib
import json
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kvmops.cmd import change, read
from kvmops.host import Host
from kvmops_lab.errors import LabError
from kvmops_lab.guestboot import SshLogin
from kvmops_lab.prepare import CLOUD_IMAGE_FILE

DNS = "132.230.200.200"
MAC = "52:54:00:4b:0a:51"
SUDO_USER = "proof"


@dataclass(frozen=True)
class ProofGuest:
    """A defined, not started, guest on a copy of the cloud image."""

    name: str
    setup: str
    vlan: int
    address: str
    disk: str
    lv: str
    seed: str | None
    login: SshLogin  # root (offline) or the image's default user (nocloud)
    sudo_login: SshLogin  # a user with passwordless sudo


def domain_xml(name: str, disk: str, bridge: str | None, seed: str | None, memory_mib: int = 1024, *,
               domain_type: str = "qemu", serial_log: str | None = None) -> str:
    """A domain like the guide's template (reference/guest-template.md); no NIC without a
    bridge; ``serial_log``: libvirt also writes the serial console to that file."""
    source = f"<source file='{seed}'/>" if seed else ""
    kib = memory_mib * 1024
    nic = (f"<interface type='bridge'><mac address='{MAC}'/><source bridge='{bridge}'/><model type='virtio'/>"
           "</interface>") if bridge else ""
    log = f"<log file='{serial_log}' append='off'/>" if serial_log else ""
    return f"""<domain type='{domain_type}'>
  <name>{name}</name>
  <memory unit='KiB'>{kib}</memory><currentMemory unit='KiB'>{kib}</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><boot dev='hd'/></os>
  <features><acpi/><apic/></features>
  <cpu mode='host-model' check='partial'/>
  <clock offset='utc'><timer name='rtc' tickpolicy='catchup'/><timer name='pit' tickpolicy='delay'/>
    <timer name='hpet' present='no'/></clock>
  <devices>
    <disk type='block' device='disk'><driver name='qemu' type='raw' cache='none' io='native'/>
      <source dev='{disk}'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><driver name='qemu' type='raw'/>{source}
      <target dev='sda' bus='sata'/><readonly/></disk>
    {nic}
    <serial type='pty'>{log}<target type='isa-serial' port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
  </devices>
</domain>
"""


def nm_keyfile(address: str, gateway: str, dns: str = DNS) -> str:
    return ("[connection]\nid=eth0\ntype=ethernet\ninterface-name=eth0\nautoconnect=true\n\n"
            f"[ipv4]\nmethod=manual\naddress1={address}/24,{gateway}\ndns={dns};\nmay-fail=false\n\n"
            "[ipv6]\nmethod=disabled\n")


def seed_files(name: str, pub: str, address: str, gateway: str, password: str) -> dict[str, str]:
    """user-data, meta-data, network-config (v2; the default route as ``0.0.0.0/0``: the
    ``to: default`` form fails in cloud-init 22.4, Debian bookworm's)."""
    user_data = "#cloud-config\n" + json.dumps({
        "users": ["default"], "ssh_authorized_keys": [pub.strip()],
        "chpasswd": {"list": f"root:{password}\n", "expire": False}, "ssh_pwauth": False}) + "\n"
    meta = json.dumps({"instance-id": f"iid-{name}", "local-hostname": name}) + "\n"
    net = json.dumps({"version": 2, "ethernets": {"eth0": {
        "match": {"macaddress": MAC}, "set-name": "eth0", "addresses": [f"{address}/24"],
        "routes": [{"to": "0.0.0.0/0", "via": gateway}], "nameservers": {"addresses": [DNS]}}}}) + "\n"
    return {"user-data": user_data, "meta-data": meta, "network-config": net}


def _write(host: Host, path: str, text: str, mode: str, secret: bool = False) -> None:
    q = shlex.quote(path)
    host.run(change("sh", "-c", f"umask 077; cat > {q} && chmod {mode} {q}", stdin=text, stdin_secret=secret))


def _mapper(host: Host, lv: str) -> str:
    return f"/dev/mapper/{host.site.vg.replace('-', '--')}-{lv.replace('-', '--')}"


@contextlib.contextmanager
def mounted_root(host: Host, device: str, mnt: str, *, readonly: bool) -> Iterator[str]:
    """Partition 1 of ``device`` mapped with kpartx and mounted; always unmounted and unmapped."""
    host.run(change("kpartx", "-a", *(("-r",) if readonly else ()), "-p", "p", device))
    try:
        host.run(change("mkdir", "-p", mnt))
        host.run(change("mount", *(("-o", "ro,norecovery") if readonly else ()),
                        f"/dev/mapper/{device.rsplit('/', 1)[1]}p1", mnt))
        try:
            yield mnt
        finally:
            host.run(change("umount", mnt))
    finally:
        host.run(change("kpartx", "-d", "-p", "p", device), check=False)


def offline_setup(host: Host, lv: str, pub: str, address: str, gateway: str, password: str) -> None:
    with mounted_root(host, _mapper(host, lv), "/mnt/kvmops-proof", readonly=False) as mnt:
        host.run(change("install", "-d", "-m", "700", f"{mnt}/root/.ssh"))
        _write(host, f"{mnt}/root/.ssh/authorized_keys", pub, "600")
        host.run(change("chroot", mnt, "chpasswd", stdin=f"root:{password}\n", stdin_secret=True))
        host.run(change("chroot", mnt, "useradd", "-m", "-s", "/bin/bash", "-G", "wheel", SUDO_USER))
        uid = host.run(read("chroot", mnt, "id", "-u", SUDO_USER)).stdout.strip()
        home = f"{mnt}/home/{SUDO_USER}"
        host.run(change("install", "-d", "-m", "700", "-o", uid, "-g", uid, f"{home}/.ssh"))
        _write(host, f"{home}/.ssh/authorized_keys", pub, "600")
        host.run(change("chown", f"{uid}:{uid}", f"{home}/.ssh/authorized_keys"))
        _write(host, f"{mnt}/etc/sudoers.d/{SUDO_USER}", f"{SUDO_USER} ALL=(ALL) NOPASSWD: ALL\n", "440")
        _write(host, f"{mnt}/etc/NetworkManager/system-connections/eth0.nmconnection",
               nm_keyfile(address, gateway), "600")


def nocloud_seed(host: Host, path: str, files: dict[str, str]) -> None:
    """``genisoimage -volid cidata -joliet -rock`` in the lab (user-data is masked: a password)."""
    d = f"/tmp/kvmops-seed-{Path(path).stem}"
    host.run(change("mkdir", "-p", d))
    try:
        for fname, text in files.items():
            _write(host, f"{d}/{fname}", text, "600", secret=fname == "user-data")
        host.run(change("genisoimage", "-quiet", "-output", path, "-volid", "cidata", "-joliet", "-rock",
                        *(f"{d}/{f}" for f in files)))
        host.run(change("chmod", "600", path))
    finally:
        host.run(change("rm", "-rf", d), check=False)


def create(host: Host, name: str, setup: str, *, vlan: int, address: str, key: Path, password: str,
           image: str = CLOUD_IMAGE_FILE, size: str = "2g") -> ProofGuest:
    """LV, image copy, the setup, the domain defined; :func:`remove` first (a leftover)."""
    if setup not in ("offline", "nocloud"):
        raise ValueError(f"setup must be offline or nocloud, got {setup!r}")
    if host.run(read("test", "-f", image, ok=(0, 1))).returncode != 0:
        raise LabError(f"{image} is not in the lab: it was started without the cloud image "
                       "(`kvmops lab up --no-cloud-image`, or by `kvmops demo`); `kvmops lab destroy`, then "
                       "`kvmops lab up`")
    lv = host.site.guest_lv(name)
    xml_dir = host.site.xml_dir.rstrip("/")
    seed = f"{xml_dir}/{name}-seed.iso" if setup == "nocloud" else None
    login = SshLogin("root", key) if setup == "offline" else SshLogin(host.site.login_user, key)
    guest = ProofGuest(name, setup, vlan, address, f"/dev/{host.site.vg}/{lv}", lv, seed, login,
                       SshLogin(SUDO_USER, key) if setup == "offline" else login)
    remove(host, guest)
    host.run(change("lvcreate", "--name", lv, "--size", size, "--wipesignatures", "y", "--yes", host.site.vg))
    host.run(change("qemu-img", "convert", "-n", "-O", "raw", "-f", "raw", image, guest.disk, timeout=900))
    pub = Path(f"{key}.pub").read_text()
    net = host.site.network(vlan)
    host.run(change("mkdir", "-p", xml_dir))  # a fresh lab has no xml_dir yet
    if setup == "offline":
        offline_setup(host, lv, pub, address, str(net.gateway), password)
    else:
        assert seed is not None
        nocloud_seed(host, seed, seed_files(name, pub, address, str(net.gateway), password))
    _write(host, f"{xml_dir}/{name}.xml", domain_xml(name, guest.disk, net.bridge, seed), "600")
    host.run(change("virsh", "define", f"{xml_dir}/{name}.xml"))
    return guest


def drop_domain_and_lvs(host: Host, name: str) -> None:
    """Guest ``name`` destroyed and undefined, its LV and the LVs named after it (snapshots,
    copies) removed: whatever an earlier run left; a missing one is no error."""
    vg, lv = host.site.vg, host.site.guest_lv(name)
    host.run(change("virsh", "destroy", name), check=False)
    host.run(change("virsh", "undefine", name), check=False)
    out = host.run(read("lvs", "--reportformat", "json", "-o", "lv_name", vg)).stdout
    for row in json.loads(out)["report"][0]["lv"]:
        if row["lv_name"] == lv or row["lv_name"].startswith(f"{lv}-"):
            host.run(change("lvremove", "-f", f"{vg}/{row['lv_name']}"), check=False)


def remove(host: Host, guest: ProofGuest) -> None:
    """Domain undefined (destroyed first), LV removed (exactly VG/LV), XML and seed removed."""
    host.run(change("virsh", "destroy", guest.name), check=False)
    host.run(change("virsh", "undefine", guest.name), check=False)
    host.run(change("kpartx", "-d", "-p", "p", _mapper(host, guest.lv)), check=False)
    host.run(change("lvremove", f"{host.site.vg}/{guest.lv}", stdin="y\n"), check=False)
    xml_dir = host.site.xml_dir.rstrip("/")
    host.run(change("rm", "-f", f"{xml_dir}/{guest.name}.xml", f"{xml_dir}/{guest.name}-seed.iso"), check=False)


def journal_files(host: Host, guest: ProofGuest, machine_id: str) -> list[str]:
    """The guest's journal files on its LV (mapped and mounted read-only, then undone)."""
    with mounted_root(host, _mapper(host, guest.lv), "/mnt/kvmops-proof-ro", readonly=True) as mnt:
        out = host.run(read("ls", f"{mnt}/var/log/journal/{machine_id}", ok=(0, 2))).stdout
    return out.split()
