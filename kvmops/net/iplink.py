"""Kernel facts: ``ip -j -d address show`` and ``bridge -j vlan show``, parsed (pure).

``ip -j -d address show`` is ``ip -j -d link show`` plus each interface's ``addr_info``.
Bridge times are in centiseconds there (``ageing_time 30000`` = 300 s); ``nmcli`` shows
``bridge.ageing-time`` in seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kvmops.cmd import Cmd, read
from kvmops.errors import KvmopsError


class IpJsonError(KvmopsError):
    """``ip``/``bridge`` printed something that is not the JSON kvmops asked for."""


@dataclass(frozen=True)
class Link:
    """One interface as the kernel sees it."""

    name: str
    ifindex: int
    kind: str = ""  # linkinfo.info_kind: bridge, vlan, tun, veth, ... ("" for a plain NIC)
    slave_kind: str = ""  # linkinfo.info_slave_kind: "bridge" for a bridge port
    master: str = ""  # the bridge it is a port of
    parent: str = ""  # the "link" field: a VLAN's uplink, a veth's peer
    operstate: str = ""
    up: bool = False
    ageing_cs: int | None = None  # bridge ageing time, centiseconds
    stp_state: int | None = None
    vlan_filtering: int | None = None
    vlan_id: int | None = None
    vlan_protocol: str = ""
    addresses: tuple[str, ...] = ()  # "10.99.0.1/24", "fe80::1/64"

    @property
    def is_bridge(self) -> bool:
        return self.kind == "bridge"

    @property
    def is_vlan(self) -> bool:
        return self.kind == "vlan"

    @property
    def ageing_seconds(self) -> float | None:
        return None if self.ageing_cs is None else self.ageing_cs / 100


def addresses_cmd() -> Cmd:
    """``ip -j -d address show``"""
    return read("ip", "-j", "-d", "address", "show")


def link_cmd(name: str) -> Cmd:
    """``ip -j link show dev NAME`` (exit 1 when there is no such interface)"""
    return read("ip", "-j", "link", "show", "dev", name, ok=(0, 1))


def bridge_vlans_cmd() -> Cmd:
    """``bridge -j vlan show``"""
    return read("bridge", "-j", "vlan", "show")


def _load(text: str, what: str) -> Any:
    try:
        return json.loads(text or "[]")
    except json.JSONDecodeError as exc:
        raise IpJsonError(f"{what} did not print JSON ({exc}): {text[:120]!r}") from None


def parse_links(text: str) -> tuple[Link, ...]:
    """Parse ``ip -j [-d] link show`` or ``ip -j [-d] address show``."""
    data = _load(text, "ip -j")
    if not isinstance(data, list):
        raise IpJsonError(f"ip -j printed {type(data).__name__}, expected a list of interfaces")
    return tuple(_link(item) for item in data if isinstance(item, dict) and "ifname" in item)


def _link(d: dict[str, Any]) -> Link:
    info = d.get("linkinfo") or {}
    data = info.get("info_data") or {}
    kind = str(info.get("info_kind", ""))
    return Link(
        name=str(d["ifname"]),
        ifindex=int(d.get("ifindex", 0)),
        kind=kind,
        slave_kind=str(info.get("info_slave_kind", "")),
        master=str(d.get("master", "")),
        parent=str(d.get("link", "") or ""),
        operstate=str(d.get("operstate", "")),
        up="UP" in d.get("flags", []),
        ageing_cs=_opt_int(data, "ageing_time") if kind == "bridge" else None,
        stp_state=_opt_int(data, "stp_state") if kind == "bridge" else None,
        vlan_filtering=_opt_int(data, "vlan_filtering") if kind == "bridge" else None,
        vlan_id=_opt_int(data, "id") if kind == "vlan" else None,
        vlan_protocol=str(data.get("protocol", "")) if kind == "vlan" else "",
        addresses=tuple(
            f"{a['local']}/{a['prefixlen']}" for a in d.get("addr_info", []) if "local" in a
        ),
    )


def _opt_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    return None if value is None else int(value)


def parse_bridge_vlans(text: str) -> dict[str, tuple[int, ...]]:
    """Parse ``bridge -j vlan show`` into port -> VLAN ids.

    iproute2 >= 5.x prints ``[{"ifname": "p", "vlans": [{"vlan": 1, "flags": [...]}]}]``; older
    versions printed ``{"p": [{"vlan": 1}]}``. A kernel without bridge VLAN filtering: ``[]``.
    """
    data = _load(text, "bridge -j vlan")
    items: list[tuple[str, list[dict[str, Any]]]]
    if isinstance(data, dict):
        items = [(str(k), list(v)) for k, v in data.items()]
    elif isinstance(data, list):
        items = [(str(e["ifname"]), list(e.get("vlans", []))) for e in data if isinstance(e, dict)]
    else:
        raise IpJsonError(f"bridge -j vlan printed {type(data).__name__}, expected a list")
    out: dict[str, tuple[int, ...]] = {}
    for port, vlans in items:
        ids: list[int] = []
        for v in vlans:
            first = int(v["vlan"])
            ids.extend(range(first, int(v.get("vlanEnd", first)) + 1))
        out[port] = tuple(ids)
    return out
