"""The libvirt adapter: errors translated by code, the connection URI from the site."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import libvirt
import pytest

from kvmops import virt as virt_module
from kvmops.errors import LibvirtError, NotFound
from kvmops.host import connect, libvirt_uri_for
from kvmops.site import load_site
from kvmops.virt import Virt, translate
from tests.unit.test_guest_testbed import Bed, bed

__all__ = ["bed"]


def _error(code: int, message: str) -> libvirt.libvirtError:
    """A libvirtError carrying a captured code and message (libvirt 9.0, see captured-outputs)."""
    exc = libvirt.libvirtError(message)
    exc.err = (code, 10, message, 2, None, None, None, -1, -1)
    return exc


@pytest.mark.parametrize(("code", "message", "kind", "advice"), [
    (86, "Guest agent is not responding: QEMU guest agent is not connected", LibvirtError,
     "install and start qemu-guest-agent"),
    (3, "this function is not supported by the connection driver: virDomainGetGuestInfo", LibvirtError,
     "does not support"),
    (42, "Domain not found: no domain with matching name 'x'", NotFound, "kvmops guest list"),
    (55, "Requested operation is not valid: cannot delete inactive domain with 1 snapshots", LibvirtError,
     "not in a state"),
    (38, "Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory",
     LibvirtError, "is libvirtd running"),
])
def test_translate_by_error_code(code: int, message: str, kind: type, advice: str) -> None:
    err = translate(_error(code, message), "guest x")
    assert type(err) is kind
    assert str(err).startswith(f"guest x: {message}")
    assert advice in str(err)
    assert err.code == code  # type: ignore[attr-defined]


def test_translate_removes_polkit_noise_and_takes_hints() -> None:
    noise = ("Error registering authentication agent: GDBus.Error:org.freedesktop.PolicyKit1.Error.Failed: "
             "Cannot determine user of subject (polkit-error-quark, 0)\nDomain not found")
    err = translate(_error(42, noise), "guest x", {42: "look elsewhere"})
    assert "authentication agent" not in str(err)
    assert str(err) == "guest x: Domain not found (look elsewhere)"


def test_real_errors_from_the_test_driver_are_translated(bed: Bed) -> None:
    virt = bed.host().virt
    with pytest.raises(NotFound, match="no such guest"):
        virt.domain("nosuch")
    with pytest.raises(LibvirtError, match="missing domain type") as info:
        virt.define("<domain><name>x</name></domain>", "x")
    assert info.value.code == 1  # type: ignore[attr-defined]


def test_cannot_connect_says_so(tmp_path: Path) -> None:
    with pytest.raises(LibvirtError, match="cannot connect to libvirt at test:///"):
        _ = Virt(f"test://{tmp_path}/missing.xml").conn


def test_host_limits_from_the_node(bed: Bed) -> None:
    limits = bed.host().virt.limits("kvm")
    assert (limits.memory_kib, limits.cpus) == (8388608, 4)
    assert limits.max_vcpus >= 4


def _site(tmp: Path, host_lines: str, uri: str = "qemu:///system") -> Path:
    """The guide's site with other [host] ssh settings and libvirt URI."""
    lines = []
    for line in Path(load_site().path).read_text().splitlines():
        if line.startswith("ssh = "):
            line = host_lines
        elif line.startswith("uri = "):
            line = f'uri = "{uri}"'
        lines.append(line)
    src = "\n".join(lines) + "\n"
    f = tmp / "site.toml"
    f.write_text(src)
    return f


def test_uri_on_the_host_is_qemu_system() -> None:
    site = load_site()
    assert libvirt_uri_for(site) == "qemu:///system"
    host = connect(site)
    assert host.libvirt_uri == "qemu:///system"


def test_uri_from_an_admins_machine_goes_over_ssh(tmp_path: Path) -> None:
    f = _site(tmp_path, 'ssh = "root@build.galaxyproject.eu"\nssh_port = 2222\n'
                        'ssh_identity = "/home/a/.ssh/id_ed25519"\nssh_known_hosts = "/home/a/.ssh/kh"')
    assert libvirt_uri_for(load_site(f)) == (
        "qemu+ssh://root@build.galaxyproject.eu:2222/system"
        "?keyfile=/home/a/.ssh/id_ed25519&known_hosts=/home/a/.ssh/kh&no_tty=1")
    f = _site(tmp_path, 'ssh = "root@build.galaxyproject.eu"')
    assert libvirt_uri_for(load_site(f)) == "qemu+ssh://root@build.galaxyproject.eu/system?no_tty=1"


def test_other_uris_are_left_alone(tmp_path: Path) -> None:
    f = _site(tmp_path, 'ssh = "root@h"', uri="test:///default")
    assert libvirt_uri_for(load_site(f)) == "test:///default"


# -- error codes survive whatever ran before (issue 13) --------------------------------------


class _Regrowing:
    """Cyclic garbage that holds a libvirt domain and, once collected, leaves the next one:
    every run of the cycle collector frees a libvirt object, and ``virDomainFree`` (like any
    libvirt call) resets libvirt's last error of the thread."""

    on = False

    def __init__(self, conn: Any) -> None:
        self.me = self
        self.conn = conn
        self.dom = conn.lookupByName("web1")

    def __del__(self) -> None:
        if _Regrowing.on:
            _Regrowing(self.conn)


@contextmanager
def hostile_collector(conn: Any) -> Iterator[None]:
    """The cycle collector runs at nearly every allocation, always freeing a libvirt object."""
    old = gc.get_threshold()
    _Regrowing.on = True
    _Regrowing(conn)
    gc.set_threshold(1, 1, 1)
    try:
        yield
    finally:
        gc.set_threshold(*old)
        _Regrowing.on = False
        gc.collect()


def test_error_codes_survive_the_cycle_collector(bed: Bed) -> None:
    virt = bed.host().virt
    with hostile_collector(virt.conn):
        for _ in range(20):
            with pytest.raises(NotFound, match="no such guest"):
                virt.domain("nosuch")
            with pytest.raises(LibvirtError, match="virsh console web1") as info:
                virt.read_console("web1", 0.1)
            assert info.value.code == libvirt.VIR_ERR_NO_SUPPORT  # type: ignore[attr-defined]


def test_without_the_guard_the_collector_loses_the_code(bed: Bed) -> None:
    """The hostile collector above is real: without kvmops' guard libvirt's code is gone.

    In a fresh interpreter: whether a collection falls between a failed call and the reading of
    its error depends on what the process allocated and which threads run (libvirt's event
    loop), so in a shared process the outcome depended on the tests before it (found running
    the unit tier in random orders)."""
    script = (
        "import sys\n"
        "from contextlib import nullcontext\n"
        "import kvmops.virt as vm\n"
        "from kvmops.errors import LibvirtError, NotFound\n"
        "from tests.unit.test_guest_virt import hostile_collector\n"
        "vm._error_kept = nullcontext\n"
        "virt = vm.Virt(sys.argv[1])\n"
        "lost = []\n"
        "with hostile_collector(virt.conn):\n"
        "    for _ in range(20):\n"
        "        try:\n"
        "            virt.domain('nosuch')\n"
        "        except NotFound:\n"
        "            continue\n"
        "        except LibvirtError as exc:\n"
        "            lost.append(str(exc))\n"
        "print(len(lost), all('virDomainLookupByName() failed' in t for t in lost))\n"
    )
    root = Path(__file__).parent.parent.parent
    out = subprocess.run([sys.executable, "-c", script, bed.uri], capture_output=True, text=True, cwd=root,
                         timeout=60, check=True).stdout.split()
    assert int(out[0]) > 0 and out[1] == "True", out


def test_consoles_are_decided_by_the_driver(bed: Bed) -> None:
    virt = bed.host().virt
    assert virt.driver == "TEST" and virt.driver in virt_module.NO_CONSOLE_DRIVERS
