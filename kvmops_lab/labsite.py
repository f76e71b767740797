"""The lab's site file (same schema as ``kvmops/sites/guide.toml``), rendered from a state."""

from __future__ import annotations

import json
from pathlib import Path

from kvmops_lab.recipe import UPLINK
from kvmops_lab.state import LabState

EMULATOR = "/usr/bin/qemu-system-x86_64"  # Debian's path (the guide's Rocky host: qemu-kvm)
NETWORKS = ((2368, "10.5.68.0/24"), (2367, "10.5.67.0/24"), (223, "132.230.223.0/24"))


def _q(text: str) -> str:
    """A TOML basic string (JSON's escaping is a subset TOML accepts)."""
    return json.dumps(text)


def render_site(state: LabState, domain_type: str = "qemu", host_name: str = "kvmlab") -> str:
    """The TOML that points kvmops at the lab over SSH, host keys checked strictly.

    ``domain_type`` is ``kvm`` when a KVM guest boots inside the lab (see
    :mod:`kvmops_lab.guest_accel`), as the guide's template has it; ``qemu`` (TCG) otherwise.
    ``host_name``: the host's name (a named lab's name, so two labs tell apart in a fleet).
    """
    if domain_type not in ("kvm", "qemu"):
        raise ValueError(f"domain type must be kvm or qemu, got {domain_type!r}")
    lines = [
        "# The kvmops lab VM (written by `kvmops lab up`; do not edit: it is rewritten).",
        "[host]",
        f"name = {_q(host_name)}",
        'ssh = "root@127.0.0.1"',
        f"ssh_port = {state.port}",
        f"ssh_identity = {_q(state.key)}",
        f"ssh_known_hosts = {_q(state.known_hosts)}",
        "",
        "[storage]",
        'vg = "rl_build"',
        'lv_prefix = "vm"',
        'snapshot_size = "256m"',
        "snapshot_extend_at = 80",
        'snapshot_extend_by = "128m"',
        "",
        "[libvirt]",
        'uri = "qemu:///system"',
        f"domain_type = {_q(domain_type)}",
        f"emulator = {_q(EMULATOR)}",
        'xml_dir = "/root/kvm"',
        "",
        "[backup]",
        f"allowed_signers = {_q(allowed_signers_path(state))}",
        "",
        "[images]",
        'login_user = "centos"',
        "",
        "[network]",
        f"uplink = {_q(UPLINK)}",
        'dns = ["132.230.200.200"]',
    ]
    for vlan, cidr in NETWORKS:
        lines += ["", "[[network.vlan]]", f"id = {vlan}", f'cidr = "{cidr}"']
    return "\n".join(lines) + "\n"


def known_hosts_text(port: int, host_keys: str) -> str:
    """``[127.0.0.1]:PORT ssh-ed25519 AAAA...`` for each host key of the image."""
    out = []
    for line in host_keys.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out.append(f"[127.0.0.1]:{port} {parts[0]} {parts[1]}")
    return "\n".join(out) + "\n"


def allowed_signers_path(state: LabState) -> str:
    """The lab's allowed signers of backups, beside its known_hosts."""
    return str(Path(state.known_hosts).with_name("allowed_signers"))


def allowed_signers_text(host_keys: str) -> str:
    """Every lab is booted from the one image, so all share its host keys: a backup's manifest
    signed by any lab (``kvm1``, ``kvm2``) verifies on any lab (principal ``*``)."""
    out = ["# the lab image's SSH host keys sign the labs' backups (kvmops.transfer.signing)"]
    for line in host_keys.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out.append(f"* {parts[0]} {parts[1]}")
    return "\n".join(out) + "\n"
