"""What a guest is made of: :class:`GuestSpec`, validated when it is built (pure, no I/O).

``guest_spec(site, "test1", memory="2g", vcpus=2, vlans=(2368,))`` resolves VLANs to the
site's bridges and checks every value before any XML or command exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kvmops import names
from kvmops.errors import InvalidInput
from kvmops.guests import macs as mac_addresses
from kvmops.net.validate import vlan_id
from kvmops.site import Site
from kvmops.units import parse_size

KIB = 1024


def memory_kib(value: str | int) -> int:
    """KiB from ``2g``, ``2048m``, ``2GiB``, ``512MiB``; a bare number is MiB (as virt-install)."""
    try:
        nbytes = parse_size(value, default_unit="m")
    except InvalidInput as exc:
        raise InvalidInput(f"memory: {exc}") from None
    if nbytes % KIB:
        raise InvalidInput(f"memory {value!r} is not a whole number of KiB: use e.g. 2g or 2048m")
    return nbytes // KIB


@dataclass(frozen=True)
class GuestSpec:
    """One guest as the guide's template describes it.

    ``disk_lv`` is the system disk's LV in the site's VG (None: the site's ``vm<name>``);
    ``disk_path`` overrides the whole source path (a raw file or loop device, for tests).
    ``data_lvs`` are extra disks (vdb, vdc, ...); ``cdrom`` an ISO file (the NoCloud seed).
    ``kernel``/``initrd``/``cmdline`` select direct kernel boot. ``serial_log`` keeps the
    serial console output in a file on the host. A guest needs at least one bridge unless
    ``allow_no_network`` is given (tests only). ``macs``: one MAC per bridge, in order
    (:mod:`kvmops.guests.macs`), or none (then :func:`kvmops.guests.lifecycle.define` chooses
    them from the host's facts).
    """

    name: str
    memory_kib: int
    vcpus: int
    bridges: tuple[str, ...]
    disk_lv: str | None = None
    disk_path: str | None = None
    data_lvs: tuple[str, ...] = ()
    cdrom: str | None = None
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None
    serial_log: str | None = None
    allow_no_network: bool = False
    macs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names.guest_name(self.name)
        if isinstance(self.memory_kib, bool) or not isinstance(self.memory_kib, int) or self.memory_kib <= 0:
            raise InvalidInput(f"memory of guest {self.name} must be > 0 KiB, got {self.memory_kib!r}")
        if isinstance(self.vcpus, bool) or not isinstance(self.vcpus, int) or self.vcpus <= 0:
            raise InvalidInput(f"vCPUs of guest {self.name} must be 1 or more, got {self.vcpus!r}")
        self._check_bridges()
        for lv in (self.disk_lv, *self.data_lvs):
            if lv is not None:
                names.lv_name(lv)
        if len(set(self.data_lvs)) != len(self.data_lvs) or (self.disk_lv and self.disk_lv in self.data_lvs):
            raise InvalidInput(f"guest {self.name}: a disk LV is listed twice")
        for label, path in (("disk_path", self.disk_path), ("cdrom", self.cdrom), ("kernel", self.kernel),
                            ("initrd", self.initrd), ("serial_log", self.serial_log)):
            if path is not None:
                _abs_path(label, path)
        if (self.initrd or self.cmdline) and not self.kernel:
            raise InvalidInput("initrd and cmdline need a kernel (direct kernel boot)")

    def _check_bridges(self) -> None:
        if not isinstance(self.bridges, tuple):
            raise InvalidInput(f"bridges must be a tuple of names, got {self.bridges!r}")
        if not self.bridges and not self.allow_no_network:
            raise InvalidInput(
                f"guest {self.name} needs at least one bridge: give a VLAN (e.g. 2368) or a bridge "
                "(e.g. virbr1.2368)"
            )
        for b in self.bridges:
            names.ifname(b)
        if len(set(self.bridges)) != len(self.bridges):
            raise InvalidInput(f"guest {self.name}: bridge listed twice in {list(self.bridges)}")
        if not isinstance(self.macs, tuple):
            raise InvalidInput(f"macs must be a tuple of MAC addresses, got {self.macs!r}")
        if self.macs and len(self.macs) != len(self.bridges):
            raise InvalidInput(f"guest {self.name}: {len(self.macs)} MAC address(es) for {len(self.bridges)} NIC(s): "
                               "give one per bridge, or none")
        normal = tuple(mac_addresses.normal(m) for m in self.macs)
        if len(set(normal)) != len(normal):
            raise InvalidInput(f"guest {self.name}: a MAC address is given twice ({', '.join(normal)})")
        object.__setattr__(self, "macs", normal)

    def system_lv(self, site: Site) -> str:
        """The system disk's LV name: ``disk_lv`` or the site's convention (``vm`` + name)."""
        return self.disk_lv or site.guest_lv(self.name)

    def disk_lvs(self, site: Site) -> tuple[str, ...]:
        """Every LV of this guest that must exist in the site's VG (system disk first)."""
        system = () if self.disk_path else (self.system_lv(site),)
        return (*system, *self.data_lvs)


def _abs_path(label: str, path: str) -> str:
    if not path.startswith("/") or "\0" in path or "\n" in path:
        raise InvalidInput(f"{label} {path!r} must be an absolute path on the host")
    return path


def guest_spec(
    site: Site,
    name: str,
    *,
    memory: str | int = "2g",
    vcpus: int = 2,
    vlans: Sequence[int] = (),
    bridges: Sequence[str] = (),
    data_lvs: Sequence[str] = (),
    **extra: object,
) -> GuestSpec:
    """A spec whose bridges all belong to the site: VLAN ids and bridge names both accepted."""
    resolved = [site.network(vlan_id(v)).bridge for v in vlans]
    for b in bridges:
        resolved.append(site.network_by_bridge(b).bridge)
    if len(set(resolved)) != len(resolved):
        raise InvalidInput(f"guest {name}: the same network is given twice ({', '.join(resolved)})")
    return GuestSpec(
        name=name,
        memory_kib=memory_kib(memory),
        vcpus=vcpus,
        bridges=tuple(resolved),
        data_lvs=tuple(data_lvs),
        **extra,  # type: ignore[arg-type]
    )


def check_site(site: Site, spec: GuestSpec) -> None:
    """Every bridge of ``spec`` is a network of the site (NotFound names the known ones)."""
    for b in spec.bridges:
        site.network_by_bridge(b)
