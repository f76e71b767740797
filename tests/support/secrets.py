"""Every password and private key the test suite uses, in one place, and the scan for them.

Tests take their secrets from here (``PASSWORDS[...]``); private keys a test generates at run
time (tests/support/sshd.py) are added with :func:`register_key`. At the end of a tier,
tests/{unit,integration}/test_zz_secrets_scan.py scans every output the session produced
(executed notebooks, journal records, command logs, the session's kvmops log, CLI output the
tests saved, built pages) for all of them: the number of hits must be zero.

Deliberately planted leaks (tests of the scanners themselves) live in folders whose name
starts with ``planted-``; the scan skips those.
"""

from __future__ import annotations

import html
import json
import secrets as _random
from pathlib import Path

PASSWORDS: dict[str, str] = {
    "tweak": "tweak-secret-pw-4711",  # image-tweak runbook (integration)
    "centos": "centos-secret-pw",  # offline tweaks (integration)
    "root": "root-secret-pw",  # offline tweaks (integration)
    "engine": "s3cr3t-Pa55word!",  # the runbook engine's secret hand-over (unit)
    "runbooks": "not-in-any-file",  # every runbook with a secret, plan mode (unit)
    "nocloud-login": "nocloud-login-pw-0815",  # NoCloud seed (unit)
    "nocloud-root": "nocloud-root-pw-0815",  # NoCloud seed (unit)
    "hash-only": "topsecret-123",  # Password objects never show it (unit)
    "masked-arg": "topsecret-arg-77",  # a secret argv element, masked in the log (unit)
    "docs": "kvmops-docs-test-" + _random.token_hex(8),  # every secret parameter in the docs build
}
"""Name -> value. Values are long and distinctive, so a hit is never an accident."""

KEY_MARKERS = ("PRIVATE KEY-----",)
"""Found in any output, this is a private key, whatever the tests registered."""

_KEYS: list[str] = []

SCANNED = {".ipynb", ".json", ".jsonl", ".log", ".html", ".htm", ".js", ".md", ".txt", ".xml", ".out", ".csv"}
"""Outputs: notebooks, records, command logs, logs, CLI output, built pages and search index.
Key files themselves (no suffix) and disk images are inputs, not outputs."""

PLANTED = "planted-"


def register_key(private_key: str) -> None:
    """Add a private key a test generated (its body lines are looked for)."""
    _KEYS.append(private_key)


def forget_last_key() -> None:
    """Drop the key registered last (the scan's own test plants one)."""
    _KEYS.pop()


def all_secrets() -> dict[str, str]:
    """Every secret to look for: the passwords, and the body lines of registered keys."""
    out = dict(PASSWORDS)
    for i, key in enumerate(_KEYS, 1):
        body = [ln for ln in key.splitlines() if ln and "-----" not in ln]
        out.update({f"key #{i} line {n}": ln for n, ln in enumerate(body, 1) if len(ln) >= 16})
    return out


def forms(value: str) -> set[str]:
    """As written, HTML-escaped, JSON-escaped, and both."""
    js = json.dumps(value)[1:-1]
    return {value, html.escape(value), js, html.escape(js)}


def outputs(root: Path) -> list[Path]:
    """The output files below ``root`` (see :data:`SCANNED`), planted leaks left out."""
    return sorted(p for p in root.rglob("*")
                  if p.suffix in SCANNED and p.is_file() and not any(part.startswith(PLANTED) for part in p.parts))


def scan(root: Path) -> list[tuple[Path, str]]:
    """Every (file, secret name) pair where a secret or a key marker occurs; never the value."""
    needles = [(name, forms(v)) for name, v in all_secrets().items()]
    needles += [(m, {m}) for m in KEY_MARKERS]
    hits: list[tuple[Path, str]] = []
    for path in outputs(root):
        text = path.read_bytes().decode("utf-8", errors="replace")
        hits.extend((path, name) for name, variants in needles if any(v in text for v in variants))
    return hits
