"""mkdocs hooks (``hooks:`` in mkdocs.yml): pages generated from their sources at build time.

- ``on_config``: each executed runbook in ``docs/runbooks/generated/`` gets a page under
  *Runbooks*; a notebook that holds an error fails the build (mkdocs-jupyter would render it).
- ``on_config`` also adds a page per host and per guest under *Journal* from the latest
  inventory in the journal (:mod:`~kvmops_manual.hosts`); ``on_files`` makes those pages.
- ``on_page_markdown``: ``<!-- kvmops:... -->`` markers become the site facts and networks
  table (from the site file), the runbook list, the journal (filterable by guest), the
  inventory, the benchmark results (``bench/*-results.json``) and each guest's last verified
  restore (:mod:`~kvmops_manual.restores`, ages from the build's time).

Paths come from ``extra.kvmops`` in mkdocs.yml, relative to that file; ``$KVMOPS_JOURNAL``
overrides the journal folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

from kvmops.errors import KvmopsError
from kvmops.runbook.discover import repo_top
from kvmops.runbook.journal import RunRecord
from kvmops.runbook.verdict_data import stamp_in
from kvmops.site import Site, load_site
from kvmops_manual import benchmarks, fleet, hosts, notebooks, pages, restores
from kvmops_manual.journal import journal_table, newest_first
from kvmops_manual.published import GENERATED, Published, read_manifest

INVENTORY = "inventory"


def _top(config: MkDocsConfig) -> Path:
    return Path(config.config_file_path).resolve().parent


def _extra(config: MkDocsConfig, key: str, default: str) -> Path:
    value = str(config.extra.get("kvmops", {}).get(key, default))
    return _top(config) / value


def _generated(config: MkDocsConfig) -> Path:
    return Path(config.docs_dir) / GENERATED


def _journal(config: MkDocsConfig) -> Path:
    env = os.environ.get("KVMOPS_JOURNAL")
    return Path(env) if env else _extra(config, "journal_dir", "journal")


def _site(config: MkDocsConfig) -> Site:
    return load_site(_extra(config, "site_file", "kvmops/sites/guide.toml"))


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Check the executed runbooks and add them to the navigation under *Runbooks*."""
    try:
        items = read_manifest(_generated(config))
        for item in items:
            notebooks.check(notebooks.load(_generated(config) / item.file), f"runbook {item.name}")
    except KvmopsError as exc:
        raise PluginError(str(exc)) from exc
    if items:
        section = _nav_section(config.nav or [], "Runbooks")
        for item in items:
            section.append({item.title: f"{GENERATED.as_posix()}/{item.file}"})
    inventories, _ = _inventories(config)
    if inventories:
        _nav_section(config.nav or [], "Journal").append({"Hosts and guests": hosts.nav(inventories)})
    return config


def _inventories(config: MkDocsConfig) -> tuple[dict[str, hosts.HostInventory], list[RunRecord]]:
    """The latest inventory of each host in the journal, else the build's own inventory run."""
    records = newest_first(_journal(config))
    try:
        found = hosts.from_journal(records)
        item = next((p for p in read_manifest(_generated(config)) if p.name == INVENTORY), None)
        own = hosts.from_published(_generated(config) / item.file, item.provenance) if item else None
    except KvmopsError as exc:
        raise PluginError(str(exc)) from exc
    if own is not None and own.host not in found:
        found[own.host] = own
    return found, records


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """The host and guest pages (generated, never written into docs/)."""
    inventories, records = _inventories(config)
    for path, text in hosts.pages(inventories, records, datetime.now(UTC), proven_stamps(records)).items():
        files.append(File.generated(config, path, content=text))
    return files


def _nav_section(nav: list[Any], title: str) -> list[Any]:
    for entry in nav:
        if isinstance(entry, dict) and title in entry and isinstance(entry[title], list):
            section: list[Any] = entry[title]
            return section
    raise PluginError(f"mkdocs.yml: the nav has no section {title!r} to put the runbooks in")


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Replace the ``<!-- kvmops:... -->`` markers of a page."""
    if "kvmops:" not in markdown:
        return markdown
    where = page.file.src_uri
    try:
        return pages.expand(markdown, _handlers(config, where), where)
    except KvmopsError as exc:
        raise PluginError(str(exc)) from exc


def _handlers(config: MkDocsConfig, where: str) -> dict[str, Callable[[str | None], str]]:
    site = _site(config)
    generated = _generated(config)

    def site_value(key: str | None) -> str:
        if key == "path":
            return _relative(Path(site.path), repo_top())
        return pages.site_value(site, key, where)

    return {
        "site": site_value,
        "site-facts": lambda _: pages.site_facts(site),
        "networks": lambda _: pages.networks_table(site),
        "runbooks": lambda _: pages.runbooks_table(read_manifest(generated)),
        "journal": lambda _: _journal_table(config),
        "inventory": lambda _: inventory(generated, read_manifest(generated)),
        "benchmarks": lambda _: benchmarks.page(_extra(config, "bench_dir", "bench")),
        "fleet": lambda _: fleet.page(_journal(config)),
        "restores": lambda _: _restores(config),
        "safety-rules": lambda _: pages.safety_rules(),
    }


def _journal_table(config: MkDocsConfig) -> str:
    """The journal with each run's guests linked to their pages (URLs relative to journal/)."""
    inventories, records = _inventories(config)
    links = {(inv.host, g["name"]): f"hosts/{hosts.slug(inv.host)}/{hosts.slug(g['name'])}/"
             for inv in inventories.values() for g in inv.data["guests"]}
    return journal_table(records, lambda r: hosts.guests_of(r, inventories), links)


def _restores(config: MkDocsConfig) -> str:
    """Each guest's last verified restore, per host (the fleet page)."""
    inventories, records = _inventories(config)
    return restores.fleet_section(hosts.guests_by_host(inventories),
                                  restores.last_restores(records, proven_stamps(records)), datetime.now(UTC))


NOTEBOOK_MAX = 32 * 1024 * 1024


def proven_stamps(records: list[RunRecord]) -> dict[str, str]:
    """The backup each shown verification proved, by run id, as its notebook keeps it (read
    for the runs the pages show only, as plain JSON: stamp_in checks every level of it; a
    notebook that is missing, too big or not JSON: none)."""
    shown = {p.run_id: p for last in restores.last_restores(records).values()
             for p in (last.newest, last.last_ok) if p is not None}
    out = {}
    for rec in records:
        if rec.id in shown and not rec.params.get("backup"):
            path = Path(rec.notebook)
            try:
                if path.is_file() and path.stat().st_size <= NOTEBOOK_MAX:
                    out[rec.id] = stamp_in(json.loads(path.read_text()), shown[rec.id].guest)
            except (OSError, ValueError):
                continue
    return out


def _relative(path: Path, top: Path) -> str:
    try:
        return path.resolve().relative_to(top).as_posix()
    except ValueError:
        return path.name


def inventory(generated: Path, items: list[Published]) -> str:
    """The text output of the ``inventory`` runbook's executed notebook, with provenance."""
    item = next((p for p in items if p.name == INVENTORY), None)
    if item is None:
        return ("!!! warning \"No inventory in this build\"\n"
                "    The `inventory` runbook was not among the executed runbooks.")
    nb = notebooks.load(generated / item.file)
    head = (f"!!! info \"{item.provenance}\"\n    The whole run: [the inventory runbook]"
            f"(../{GENERATED.as_posix()}/{item.file}).\n\n")
    return head + pages.output_markdown(notebooks.outputs(nb))
