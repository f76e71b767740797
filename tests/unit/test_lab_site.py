"""The lab site file is a valid site (read back by kvmops.site.load_site) pointing at the lab."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from kvmops.host import connect, libvirt_uri_for
from kvmops.runners import PlanRunner, SSHRunner
from kvmops.site import load_site
from kvmops_lab.labsite import EMULATOR, allowed_signers_text, known_hosts_text, render_site
from kvmops_lab.state import LabState


def state(tmp: Path) -> LabState:
    return LabState(pid=1, port=40222, accel="tcg", image_dir=str(tmp), run_dir=str(tmp),
                    key=str(tmp / "id_ed25519"), known_hosts=str(tmp / "known hosts"),
                    site=str(tmp / "site.toml"), serial=str(tmp / "serial.log"),
                    qmp=str(tmp / "qmp.sock"), started="x")


def test_rendered_site_loads_with_the_lab_values(tmp_path: Path) -> None:
    st = state(tmp_path)
    path = tmp_path / "site.toml"
    path.write_text(render_site(st))
    site = load_site(path)
    assert site.ssh == "root@127.0.0.1" and site.ssh_port == 40222
    assert site.ssh_identity == st.key and site.ssh_known_hosts == st.known_hosts
    assert site.domain_type == "qemu" and site.emulator == EMULATOR
    assert site.vg == "rl_build" and site.uplink == "ens802f1" and site.login_user == "centos"
    net = site.network(2368)
    assert net.bridge == "virbr1.2368" and net.cidr == ipaddress.IPv4Network("10.5.68.0/24")
    assert str(net.gateway) == "10.5.68.254"
    assert site.allowed_signers == str(tmp_path / "allowed_signers")  # beside known_hosts
    assert site.signing_key == "/etc/ssh/ssh_host_ed25519_key"  # the lab's own host key signs its backups


def test_site_connects_over_ssh_with_strict_keys(tmp_path: Path) -> None:
    st = state(tmp_path)
    (tmp_path / "site.toml").write_text(render_site(st))
    site = load_site(tmp_path / "site.toml")
    host = connect(site, apply=True)
    try:
        assert isinstance(host.runner, SSHRunner) and host.apply
        argv = host.runner.ssh_argv()
        assert argv[argv.index("-p"):argv.index("-p") + 2] == ["-p", "40222"]
        assert f"UserKnownHostsFile={st.known_hosts}" in argv
        assert "StrictHostKeyChecking=yes" in argv
    finally:
        host.runner.close()
    assert isinstance(connect(site).runner, PlanRunner)
    uri = libvirt_uri_for(site)
    assert uri.startswith("qemu+ssh://root@127.0.0.1:40222/system?")
    assert f"keyfile={st.key}" in uri


def test_known_hosts_lines_carry_the_port() -> None:
    text = known_hosts_text(40222, "ssh-ed25519 AAAAC3Nz\nssh-rsa AAAAB3Nz\n\n")
    assert text.splitlines() == [
        "[127.0.0.1]:40222 ssh-ed25519 AAAAC3Nz",
        "[127.0.0.1]:40222 ssh-rsa AAAAB3Nz",
    ]


def test_every_lab_trusts_the_backups_signed_by_the_image_host_keys() -> None:
    text = allowed_signers_text("ssh-ed25519 AAAAC3Nz\nssh-rsa AAAAB3Nz\n\n")
    assert text.splitlines()[1:] == ["* ssh-ed25519 AAAAC3Nz", "* ssh-rsa AAAAB3Nz"]
