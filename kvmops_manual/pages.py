"""Markdown generated at build time from the sources of truth (pure: data in, text out).

Pages carry markers such as ``<!-- kvmops:networks -->`` or ``<!-- kvmops:site vg -->``;
:func:`expand` replaces each with generated text. An unknown marker is an error, so a typo
cannot publish a page with a hole in it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

from kvmops import names
from kvmops.errors import ConfigError
from kvmops.site import Site
from kvmops.units import human
from kvmops_manual.published import Published

MARKER = re.compile(r"<!--\s*kvmops:([a-z-]+)(?:\s+([A-Za-z_]+))?\s*-->")
EXAMPLE_GUEST = "test1"
EXAMPLE_TIME = datetime(2024, 10, 6, 15, 18, tzinfo=UTC)


def table(header: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    """A markdown table; ``|`` inside cells is escaped."""
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines)


def networks_table(site: Site) -> str:
    """VLAN, bridge, CIDR, gateway, DHCP of every network of the site, by VLAN id."""
    rows = [
        (n.vlan, f"`{n.bridge}`", f"`{n.cidr}`", f"`{n.gateway}`",
         n.dhcp_text, f"`{site.uplink}.{n.vlan}`")
        for n in sorted(site.networks, key=lambda n: n.vlan)
    ]
    return table(("VLAN", "Bridge", "CIDR", "Gateway", "DHCP", "VLAN port"), rows)


def site_values(site: Site) -> dict[str, str]:
    """The values ``<!-- kvmops:site KEY -->`` can insert."""
    lv = site.guest_lv(EXAMPLE_GUEST)
    return {
        "name": site.name,
        "path": site.path,
        "vg": site.vg,
        "lv_prefix": site.lv_prefix,
        "example_lv": lv,
        "example_snapshot": names.snapshot_name(lv, EXAMPLE_TIME),
        "snapshot_size": human(site.snapshot_size),
        "snapshot_extend_by": human(site.snapshot_extend_by),
        "snapshot_extend_at": f"{site.snapshot_extend_at:g}",
        "uplink": site.uplink,
        "xml_dir": site.xml_dir,
        "domain_type": site.domain_type,
        "emulator": site.emulator,
        "libvirt_uri": site.libvirt_uri,
        "login_user": site.login_user,
        "dns": ", ".join(f"`{d}`" for d in site.dns) or "none",
        "ssh": site.ssh or "(none: kvmops runs on the host itself)",
    }


def site_facts(site: Site) -> str:
    """The site file as a table of facts."""
    v = site_values(site)
    rows = [
        ("Host", f"`{v['name']}`"),
        ("Reached over SSH as", v["ssh"] if not site.ssh else f"`{site.ssh}`"),
        ("Volume group", f"`{v['vg']}`"),
        ("Guest LV prefix", f"`{v['lv_prefix']}` (guest `{EXAMPLE_GUEST}` -> `{v['example_lv']}`)"),
        ("Snapshots", f"{v['snapshot_size']} each; grown by {v['snapshot_extend_by']} "
                      f"above {v['snapshot_extend_at']} % full"),
        ("libvirt", f"`{v['libvirt_uri']}`, domain type `{v['domain_type']}`"),
        ("Emulator", f"`{v['emulator']}`"),
        ("Domain XML files", f"`{v['xml_dir']}`"),
        ("Image login user", f"`{v['login_user']}`"),
        ("Guest uplink", f"`{v['uplink']}`"),
        ("DNS", v["dns"]),
        ("Networks", ", ".join(f"VLAN {n.vlan}" for n in site.networks) or "none"),
    ]
    return table(("Fact", "Value"), rows)


def runbooks_table(items: list[Published]) -> str:
    """The published runbooks with their provenance, linked to their pages."""
    if not items:
        return ("!!! warning \"No executed runbooks in this build\"\n"
                "    Build the manual with `kvmops docs` to run and publish them.")
    rows = [
        (f"[{p.title}](generated/{p.file})", f"`{p.name}`", p.summary,
         "applied (lab)" if p.mode == "applied" else f"plan ({p.site})")
        for p in items
    ]
    return table(("Runbook", "Name", "What it does", "Run shown"), rows)


STEP = "==> "


def output_markdown(pieces: list[tuple[str, str]]) -> str:
    """A notebook's outputs as a page: ``==> step`` lines become headings, printed text goes
    into text blocks, markdown results stay markdown."""
    blocks: list[str] = []
    text: list[str] = []

    def flush() -> None:
        if "".join(text).strip():
            blocks.append("```text\n" + "".join(text).rstrip("\n") + "\n```")
        text.clear()

    for kind, body in pieces:
        if kind == "markdown":
            flush()
            blocks.append(body.strip())
            continue
        for line in body.splitlines(keepends=True):
            if line.startswith(STEP):
                flush()
                blocks.append("## " + line[len(STEP):].strip())
            else:
                text.append(line if line.endswith("\n") else line + "\n")
    flush()
    return "\n\n".join(blocks) + "\n"


def expand(text: str, handlers: Mapping[str, Callable[[str | None], str]], where: str) -> str:
    """Replace every marker by its handler's text; unknown markers raise ConfigError."""

    def one(m: re.Match[str]) -> str:
        kind, arg = m.group(1), m.group(2)
        if kind not in handlers:
            raise ConfigError(f"{where}: unknown marker <!-- kvmops:{kind} --> (known: {', '.join(handlers)})")
        return handlers[kind](arg)

    return MARKER.sub(one, text)


def site_value(site: Site, key: str | None, where: str) -> str:
    values = site_values(site)
    if key not in values:
        raise ConfigError(f"{where}: <!-- kvmops:site {key} -->: no such site value (known: {', '.join(values)})")
    return values[key]


def safety_rules() -> str:
    """The rules of the safety gate, as the gate holds them (kvmops.safety.rules.RULES)."""
    from kvmops.safety.rules import RULES

    return "\n".join(f"{i}. **{r.title}** (`{r.id}`): {r.text}" for i, r in enumerate(RULES, 1))
