"""What was published for each runbook, and where it came from (``manifest.json``).

The manifest sits beside the executed notebooks in ``docs/runbooks/generated/``; the hooks
read it to build the navigation, the runbook list and the provenance banner of each page.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from kvmops.errors import ConfigError

GENERATED = Path("runbooks") / "generated"  # under docs/
MANIFEST = "manifest.json"
Mode = Literal["plan", "applied"]


@dataclass(frozen=True)
class Published:
    """One executed runbook on the site: ``runbooks/generated/<name>.ipynb``."""

    name: str
    title: str
    summary: str
    mode: Mode
    site: str
    when: str  # UTC, ISO 8601
    run_id: str = ""

    @property
    def file(self) -> str:
        return f"{self.name}.ipynb"

    @property
    def provenance(self) -> str:
        """One line: what kind of run this page shows."""
        if self.mode == "applied":
            return f"Applied run against the lab host ({self.site}) at {self.when}."
        return (f"Plan-mode run against the {self.site} site (recorded facts), nothing executed. "
                f"Run at {self.when}.")

    def banner_html(self) -> str:
        """The box at the top of the page (HTML: notebook markdown has no admonitions)."""
        kind = "success" if self.mode == "applied" else "info"
        head = "Applied run" if self.mode == "applied" else "Plan-mode run: nothing executed"
        run = f" Run id <code>{self.run_id}</code>." if self.run_id else ""
        return (f'<div class="admonition {kind} kvmops-provenance" data-mode="{self.mode}">'
                f'<p class="admonition-title">{head}</p>'
                f"<p>{self.provenance}{run}</p></div>")


def write_manifest(folder: Path, items: list[Published]) -> Path:
    path = folder / MANIFEST
    path.write_text(json.dumps([asdict(p) for p in items], indent=2) + "\n")
    return path


def read_manifest(folder: Path) -> list[Published]:
    """The published runbooks, in order; an empty list when nothing was generated."""
    path = folder / MANIFEST
    if not path.is_file():
        return []
    try:
        rows: list[dict[str, Any]] = json.loads(path.read_text())
        return [Published(**row) for row in rows]
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: not a manifest kvmops wrote ({exc}): run `kvmops docs` again") from None
