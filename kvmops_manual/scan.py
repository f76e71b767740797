"""The last check of a build: no secret anywhere in the built site.

Each secret is looked for as written, HTML-escaped and JSON-escaped (the search index is
JSON). Private-key headers are looked for always, whatever the build was given.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kvmops.errors import KvmopsError

ALWAYS = ("PRIVATE KEY-----",)


@dataclass(frozen=True)
class Hit:
    file: Path
    what: str  # which secret (never the value itself: "secret #2") or the marker found


class SecretInSite(KvmopsError):
    """A secret was found in the built site: it must not be published."""


def forms(secret: str) -> set[str]:
    return {secret, html.escape(secret), json.dumps(secret)[1:-1], html.escape(json.dumps(secret)[1:-1])}


def scan(site_dir: Path, secrets: Iterable[str]) -> list[Hit]:
    """Every (file, secret) pair where a secret occurs in a text file of the site."""
    needles: list[tuple[str, set[str]]] = [(f"secret #{i}", forms(s)) for i, s in enumerate(secrets, 1) if s]
    needles += [(marker, {marker}) for marker in ALWAYS]
    hits: list[Hit] = []
    for path in sorted(p for p in site_dir.rglob("*") if p.is_file()):
        text = path.read_bytes().decode("utf-8", errors="replace")
        hits.extend(Hit(path, label) for label, variants in needles if any(v in text for v in variants))
    return hits


def check(site_dir: Path, secrets: Iterable[str]) -> None:
    """Raise :class:`SecretInSite` naming the files (not the secrets) when anything is found."""
    hits = scan(site_dir, secrets)
    if hits:
        listed = "; ".join(f"{h.what} in {h.file.relative_to(site_dir)}" for h in hits[:10])
        raise SecretInSite(f"the built site in {site_dir} contains secrets ({len(hits)} hits): {listed}. "
                           "It must not be published; find where the value leaked and mask it")
