"""``kvmops docs``: executed runbooks, then ``mkdocs build --strict``, then the secret scan.

The build normally runs in the checkout (``docs/`` -> ``site/``). With ``workdir`` it runs on a
staged copy of ``docs/`` there, with a mkdocs.yml whose paths point back into the checkout:
tests and benchmarks build without touching the tree.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mkdocs.utils.yaml import yaml_load

from kvmops.errors import KvmopsError
from kvmops.runbook.discover import repo_top
from kvmops_manual import scan
from kvmops_manual.journal import LAB_HOST
from kvmops_manual.produce import produce, secret_values
from kvmops_manual.published import Published

CONFIG = "mkdocs.yml"
# The executed runbooks of earlier builds (kvmops_manual.runcache), beside mkdocs-jupyter's
# cache of rendered notebooks (.cache/mkdocs-jupyter, relative to where mkdocs runs).
RUN_CACHE = Path(".cache") / "kvmops-runbooks"
LOOPBACK = "127.0.0.1"
Progress = Callable[[str], None]


class DocsBuildFailed(KvmopsError):
    """``mkdocs build --strict`` failed; the message holds its last lines."""


@dataclass
class BuildResult:
    site_dir: Path
    published: list[Published]
    seconds: dict[str, float] = field(default_factory=dict)


def build(
    top: Path | None = None,
    *,
    site_dir: Path | None = None,
    workdir: Path | None = None,
    from_journal: bool = False,
    journal: Path | None = None,
    lab_host: str = LAB_HOST,
    params: Mapping[str, Mapping[str, object]] | None = None,
    secrets: Iterable[str] = (),
    progress: Progress = print,
    jobs: int | None = None,
    cache: bool = True,
) -> BuildResult:
    """Produce the executed runbooks, build the site strictly, scan it for ``secrets``.

    ``jobs``: runbooks run at a time (default: two per core, at most 8); ``cache``: publish an
    earlier build's run of a runbook when nothing it depends on changed (:data:`RUN_CACHE`
    beside the mkdocs.yml the build uses), else run every runbook again.
    """
    top = (top or repo_top()).resolve()
    journal = journal or Path(os.environ.get("KVMOPS_JOURNAL") or top / "journal")
    config = stage(top, workdir) if workdir else top / CONFIG
    docs_dir = config.parent / "docs"
    out = (site_dir or config.parent / "site").resolve()
    times: dict[str, float] = {}
    t0 = time.monotonic()
    published = produce(docs_dir, from_journal=from_journal, journal=journal, lab_host=lab_host,
                        params=params, progress=progress, jobs=jobs,
                        cache=config.parent / RUN_CACHE if cache else None)
    times["runbooks"] = time.monotonic() - t0
    t1 = time.monotonic()
    mkdocs_build(config, out, journal, progress)
    times["mkdocs"] = time.monotonic() - t1
    scan.check(out, [*secrets, *secret_values(params)])
    times["total"] = time.monotonic() - t0
    progress(f"docs: built {out} ({len(published)} runbooks) in {times['total']:.1f}s")
    return BuildResult(out, published, times)


def mkdocs_argv(config: Path, site_dir: Path) -> list[str]:
    """``python -m kvmops_manual.mkdocs_main build --strict --config-file CONFIG --site-dir SITE``
    (mkdocs' command line, the notebook stack imported lean: :mod:`kvmops_manual.mkdocs_main`)."""
    return [sys.executable, "-m", "kvmops_manual.mkdocs_main", "build", "--strict", "--config-file", str(config),
            "--site-dir", str(site_dir)]


def mkdocs_build(config: Path, site_dir: Path, journal: Path, progress: Progress) -> None:
    """Run the strict build; its output goes to ``progress``; failure raises DocsBuildFailed."""
    env = {**os.environ, "KVMOPS_JOURNAL": str(journal), "NO_MKDOCS_2_WARNING": "1"}
    progress(f"docs: mkdocs build --strict -> {site_dir}")
    proc = subprocess.Popen(mkdocs_argv(config, site_dir), cwd=config.parent, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        progress(f"docs:   {lines[-1]}")
    if proc.wait() != 0:
        tail = "\n".join(lines[-15:])
        raise DocsBuildFailed(f"mkdocs build --strict failed (exit {proc.returncode}):\n{tail}")


def stage(top: Path, workdir: Path) -> Path:
    """Copy ``docs/`` to ``workdir`` and write a mkdocs.yml there that points into ``top``."""
    workdir.mkdir(parents=True, exist_ok=True)
    docs = workdir / "docs"
    if docs.exists():
        shutil.rmtree(docs)
    shutil.copytree(top / "docs", docs, ignore=shutil.ignore_patterns("generated"))
    with (top / CONFIG).open() as f:
        cfg: dict[str, Any] = yaml_load(f)
    cfg["docs_dir"] = str(docs)
    cfg["hooks"] = [str(top / h) for h in cfg.get("hooks", [])]
    extra = cfg.setdefault("extra", {}).setdefault("kvmops", {})
    for key in ("site_file", "journal_dir", "bench_dir"):
        if key in extra:
            extra[key] = str(top / extra[key])
    for plugin in cfg.get("plugins", []):
        if isinstance(plugin, dict) and "mkdocstrings" in plugin:
            python = plugin["mkdocstrings"]["handlers"]["python"]
            python["paths"] = [str(top / p) for p in python.get("paths", ["."])]
    config = workdir / CONFIG
    config.write_text(json.dumps(cfg, indent=2) + "\n")  # JSON is YAML
    return config


def make_server(site_dir: Path, port: int = 8000) -> http.server.ThreadingHTTPServer:
    """An HTTP server for the built site bound to 127.0.0.1 only (port 0: any free port)."""
    if not (site_dir / "index.html").is_file():
        raise KvmopsError(f"{site_dir} holds no built site: run `kvmops docs` first")
    handler = functools.partial(_QuietHandler, directory=str(site_dir))
    return http.server.ThreadingHTTPServer((LOOPBACK, port), handler)


def serve(site_dir: Path, port: int = 8000, progress: Progress = print) -> None:
    """Serve the built site on ``http://127.0.0.1:PORT/`` until Ctrl-C (loopback only)."""
    with make_server(site_dir, port) as httpd:
        progress(f"docs: serving {site_dir} on http://{LOOPBACK}:{httpd.server_port}/ (Ctrl-C stops)")
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            progress("docs: stopped serving")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return
