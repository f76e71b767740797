"""What a hostile input costs before kvmops refuses it (issue 22): time, peak memory, how much
it prints, and whether it ends in a traceback.

- ``yaml_bomb``: ``kvmops fleet inventory --fleet bomb.yml`` (tests/fixtures/hostile/bomb.yml:
  478 bytes, 9^8 strings once its aliases are expanded), with ansible-inventory not on PATH;
- ``yaml_bomb_ansible_on_path``: the same with ansible-core's tools on PATH (kvmops before
  issue 22 then ran ``ansible-inventory`` on it);
- ``inventory_50mb``: a 50 MB YAML inventory (20,000 hosts, repeated);
- ``deep_manifest``: reading a backup place where one manifest is ``'[' * 100000 + ']' * 100000``.

Each case is a fresh process (its children included in the peak memory), under a memory cap
and a time limit that keep the machine usable (the old code's bomb hits them: the result says
so). ``--checkout DIR`` measures another checkout's kvmops (its sources first on the path), e.g.
the code before issue 22 for the "before" numbers.

Usage: ``.venv/bin/python bench/hostile_limits.py [--checkout DIR] [--label NAME] [--out FILE]``
(the results file keeps the runs of every label: ``before`` and ``after``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import BENCH, write_results

TOP = Path(__file__).resolve().parents[1]
HOSTILE = TOP / "tests" / "fixtures" / "hostile"
MEMORY = 6 << 30  # address space of each case at most
SECONDS = 300.0
DEEP_PLACE = """
import sys
from kvmops.facts.place import place_host, read_place
from kvmops.site import load_site, resolve_site
from kvmops.transfer.place import parse_place
place = parse_place(sys.argv[1])
facts = read_place(place, place_host(place, load_site(resolve_site("demo")), apply=False))
print([(b.guest, b.complete, b.problem[:120]) for b in facts.backups])
"""


def _limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def measure(argv: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """One case in a fresh process: seconds, peak RSS (MiB, children included), output."""
    wrapper = ("import json, resource, subprocess, sys, time\n"
               "t0 = time.perf_counter()\n"
               "try:\n"
               f"    p = subprocess.run(sys.argv[1:], capture_output=True, timeout={SECONDS})\n"
               "    code, out, err = p.returncode, p.stdout, p.stderr\n"
               "except subprocess.TimeoutExpired as e:\n"
               "    code, out, err = 'timeout', e.stdout or b'', e.stderr or b''\n"
               "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
               "print(json.dumps({'seconds': round(time.perf_counter() - t0, 2), 'peak_rss_mib': round(rss),\n"
               "    'exit': code, 'stdout_bytes': len(out), 'stderr_bytes': len(err),\n"
               "    'traceback': b'Traceback' in err, 'stderr_head': err[:300].decode('utf-8', 'replace'),\n"
               "    'stdout_head': out[:300].decode('utf-8', 'replace')}))\n")
    done = subprocess.run([sys.executable, "-c", wrapper, *argv], capture_output=True, text=True, env=env,
                          cwd=cwd, preexec_fn=_limit, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def cases(work: Path) -> dict[str, tuple[list[str], bool]]:
    """name -> (argv, ansible-core's tools on PATH)."""
    for name in ("bomb.yml", "site.toml"):
        shutil.copy(HOSTILE / name, work / name)
    big = work / "big.yml"
    hosts = "".join(f"    h{i}: {{ansible_host: 10.0.{i // 256 % 256}.{i % 256}}}\n" for i in range(20000))
    with open(big, "w") as f:
        f.write("kvm:\n  hosts:\n")
        while f.tell() < 50 << 20:
            f.write(hosts)
    place = work / "place" / "zzz" / "20261201T020000Z"
    place.mkdir(parents=True)
    (place / "manifest.json").write_text("[" * 100000 + "]" * 100000)
    fleet = [sys.executable, "-m", "kvmops.cli.main", "fleet", "inventory", "--journal", str(work / "journal"),
             "--timeout", "5", "--fleet"]
    return {
        "yaml_bomb": ([*fleet, str(work / "bomb.yml")], False),
        "yaml_bomb_ansible_on_path": ([*fleet, str(work / "bomb.yml")], True),
        "inventory_50mb": ([*fleet, str(big)], False),
        "deep_manifest": ([sys.executable, "-c", DEEP_PLACE, str(work / "place")], False),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkout", type=Path, help="measure this checkout's kvmops (default: this one)")
    p.add_argument("--label", default="after", help="the name of this run in the results (before, after)")
    p.add_argument("--only", help="comma-separated case names")
    p.add_argument("--out", type=Path, default=BENCH / "hostile_limits-results.json")
    args = p.parse_args()
    checkout = (args.checkout or TOP).resolve()
    work = Path(tempfile.mkdtemp(prefix="kvmops-hostile-"))
    try:
        env = {**os.environ, "PYTHONPATH": str(checkout)}
        plain_path = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                                     if not (Path(d) / "ansible-inventory").exists())
        results: dict[str, Any] = {}
        for name, (argv, ansible) in cases(work).items():
            if args.only and name not in args.only.split(","):
                continue
            path = str(Path(sys.executable).parent) + os.pathsep + plain_path if ansible else plain_path
            results[name] = measure(argv, {**env, "PATH": path}, work)
            print(f"{args.label} {name}: {json.dumps(results[name])[:400]}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    old = json.loads(args.out.read_text()) if args.out.is_file() else {}
    runs = {**old.get("runs", {}), args.label: {"checkout": str(checkout), "memory_cap_gib": MEMORY >> 30,
                                                "time_limit_s": SECONDS, "results": results}}
    write_results("hostile_limits", {"runs": runs}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
