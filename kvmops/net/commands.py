"""nmcli commands that change bridges (NetworkManager 1.42 words: ``master``/``slave-type``).

The newer ``controller``/``port-type`` words do not exist in 1.42
(``Error: invalid <setting>.<property> 'controller'.``), so kvmops uses the old ones,
which newer versions still accept.
"""

from __future__ import annotations

from kvmops.cmd import Cmd, change

NM_TIMEOUT = 120.0


def _nmcli(*argv: str) -> Cmd:
    return change("nmcli", *argv, timeout=NM_TIMEOUT)


def bridge_settings(stp: bool) -> tuple[str, ...]:
    """The guide's bridge settings (2.2): ageing time 0, IPv4 and IPv6 disabled; and STP."""
    return (
        "bridge.ageing-time", "0",
        "bridge.stp", "yes" if stp else "no",
        "ipv4.method", "disabled",
        "ipv6.method", "disabled",
    )


def add_bridge(bridge: str, *, stp: bool) -> Cmd:
    """``nmcli connection add type bridge ifname virbr1.2368 con-name virbr1.2368
    bridge.ageing-time 0 bridge.stp no ipv4.method disabled ipv6.method disabled``"""
    return _nmcli("connection", "add", "type", "bridge", "ifname", bridge, "con-name", bridge,
                  *bridge_settings(stp))


def add_vlan_port(ifname: str, uplink: str, vlan: int, bridge: str) -> Cmd:
    """``nmcli connection add type vlan ifname ens802f1.2368 con-name ens802f1.2368
    dev ens802f1 id 2368 master virbr1.2368 slave-type bridge``"""
    return _nmcli("connection", "add", "type", "vlan", "ifname", ifname, "con-name", ifname,
                  "dev", uplink, "id", str(vlan), "master", bridge, "slave-type", "bridge")


def modify(uuid: str, settings: tuple[str, ...]) -> Cmd:
    """``nmcli connection modify uuid UUID bridge.ageing-time 0 ...``"""
    if not settings or len(settings) % 2:
        raise ValueError(f"settings must be property/value pairs, got {settings!r}")
    return _nmcli("connection", "modify", "uuid", uuid, *settings)


def up(uuid: str) -> Cmd:
    """``nmcli connection up uuid UUID`` (activates; re-activating detaches guest ports!)"""
    return _nmcli("connection", "up", "uuid", uuid)


def up_named(name: str) -> Cmd:
    """``nmcli connection up id NAME`` (for a profile this plan adds: no UUID known yet)"""
    return _nmcli("connection", "up", "id", name)


def reapply(device: str) -> Cmd:
    """``nmcli device reapply virbr1.2368``: applies modified settings to the live bridge
    without re-activating it, so guest ports (vnet*) stay attached (measured on NM 1.42)."""
    return _nmcli("device", "reapply", device)


def delete(uuid: str) -> Cmd:
    """``nmcli connection delete uuid UUID`` (NM removes the interface it created)"""
    return _nmcli("connection", "delete", "uuid", uuid)
