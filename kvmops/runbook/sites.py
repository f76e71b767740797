"""Which site file a runbook's ``site`` parameter (or the CLI's ``--site``) means.

``""`` is ``$KVMOPS_SITE`` when set, else the default: for runbooks the shipped demo site
(plan-only, recorded facts), so that a runbook opened in Jupyter with its defaults is always
safe; the CLI passes its own default (the guide's host: the machine it runs on). A bare name
such as ``demo`` or ``guide`` is a site shipped in ``kvmops/sites/``; anything else is a path.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from kvmops.errors import ConfigError

SITE_ENV = "KVMOPS_SITE"
DEFAULT = "demo"


def shipped_sites() -> dict[str, Path]:
    """The site files shipped with kvmops, by name: ``{"demo": ..., "guide": ...}``."""
    folder = Path(str(resources.files("kvmops") / "sites"))
    return {p.stem: p for p in sorted(folder.glob("*.toml"))}


def resolve_site(site: str | os.PathLike[str] | None, default: str = DEFAULT) -> Path:
    """The site file for a ``site`` parameter (see the module doc)."""
    text = str(site or os.environ.get(SITE_ENV, "") or default)
    shipped = shipped_sites()
    if "/" not in text and not text.endswith(".toml"):
        if text not in shipped:
            raise ConfigError(
                f"no shipped site called {text!r} (shipped: {', '.join(shipped)}); "
                "give the path of a site TOML file instead"
            )
        return shipped[text]
    path = Path(text).expanduser()
    if not path.is_file():
        raise ConfigError(f"site file {path} does not exist: give a path to a site TOML file")
    return path.resolve()
