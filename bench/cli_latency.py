"""How long kvmops takes at the terminal, beside its baselines in the same run.

- ``kvmops lv|guest|net list --site demo`` (goal: 0.3 s) and a CLI plan,
  ``kvmops lv snapshot vminflux --site demo`` (goal: 0.5 s), against a bare ``python -c pass``;
- ``kvmops plan RUNBOOK --site demo`` for every runbook with its demo parameters (goal: 2 s,
  kernel start included), against a bare papermill run of an empty notebook in the same kernel:
  the papermill command (a process, like ``kvmops plan``) and ``papermill.execute_notebook`` in
  a process that has imported papermill already (kernel start, one cell, shutdown).

Every command is a fresh process; the rounds interleave the commands, so a change of load hits
them alike. Per command: the median wall time and the median CPU time (the process and its
children, the kernel included), which a loaded machine changes less. A warm-up round first
writes the bytecode caches, and PYTHONDONTWRITEBYTECODE is unset for the commands, as on an
operator's machine. The load average before and after is kept with the results.

Usage: ``.venv/bin/python bench/cli_latency.py [--rounds N] [--runbooks NAME,...] [--out FILE]``
(the commands are those of the Python that runs the script: another checkout's
``.venv/bin/python bench/cli_latency.py --out FILE`` measures that checkout).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support: the runbooks' demo parameters
sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import write_results

from kvmops.runbook.discover import KERNEL, list_runbooks
from tests.support.demo_plans import CASES
from tests.support.kernel_probe import PAPERMILL_SAYS
from tests.support.plan_loop import argv as plan_argv

TOP = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GOALS = {"list": 0.3, "cli_plan": 0.5, "runbook_plan": 2.0}
EXECUTE = """
import sys, time
import papermill
t0 = time.perf_counter()
papermill.execute_notebook(sys.argv[1], sys.argv[2], kernel_name=sys.argv[3], progress_bar=False)
print(time.perf_counter() - t0)
"""


def commands(work: Path, runbooks: list[str]) -> dict[str, tuple[str, list[str]]]:
    """name -> (kind, argv): the commands measured, baselines first."""
    empty = work / "empty.ipynb"
    nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]  # type: ignore[no-untyped-call]
    nb.metadata["kernelspec"] = dict(KERNEL)
    nbformat.write(nb, str(empty))  # type: ignore[no-untyped-call]
    kvmops = str(BIN / "kvmops")
    out: dict[str, tuple[str, list[str]]] = {
        "python -c pass": ("baseline", [sys.executable, "-c", "pass"]),
        "papermill empty.ipynb (the command)": ("baseline", [str(BIN / "papermill"), str(empty),
                                                             str(work / "out.ipynb"), "--no-progress-bar"]),
        "papermill.execute_notebook(empty) (kernel only)": ("execute", [sys.executable, "-c", EXECUTE, str(empty),
                                                                        str(work / "out2.ipynb"), KERNEL["name"]]),
    }
    for group in ("lv", "guest", "net"):
        out[f"kvmops {group} list --site demo"] = ("list", [kvmops, group, "list", "--site", "demo"])
    out["kvmops lv snapshot vminflux --site demo"] = ("cli_plan", [kvmops, "lv", "snapshot", "vminflux",
                                                                   "--site", "demo"])
    for name in runbooks:
        out[f"kvmops plan {name}"] = ("runbook_plan", [kvmops, *plan_argv(name, str(work / "journal")), "-q"])
    return out


def run(argv: list[str], env: dict[str, str]) -> tuple[float, float, str, bool]:
    """Wall seconds, CPU seconds (with children), what it printed, and whether stderr held more
    than papermill's own lines (a warning, a traceback: counted, not fatal)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=TOP, capture_output=True, text=True, timeout=300)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):  # 1: `kvmops net list` reports drift on the demo site
        raise SystemExit(f"{' '.join(argv)}: exit {proc.returncode}\n{proc.stderr}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    noisy = any(not line.startswith(PAPERMILL_SAYS) for line in proc.stderr.splitlines() if line.strip())
    return wall, cpu, proc.stdout.strip(), noisy


def measure(cmds: dict[str, tuple[str, list[str]]], rounds: int, env: dict[str, str]) -> dict[str, Any]:
    wall: dict[str, list[float]] = {name: [] for name in cmds}
    cpu: dict[str, list[float]] = {name: [] for name in cmds}
    noisy = dict.fromkeys(cmds, 0)
    for i in range(rounds + 1):
        for name, (kind, argv) in cmds.items():
            w, c, printed, loud = run(argv, env)
            if i == 0:
                continue  # warm-up: bytecode caches written, files in the page cache
            wall[name].append(float(printed) if kind == "execute" else w)
            cpu[name].append(c)
            noisy[name] += loud
        print(f"round {i or 'warm-up'} done", flush=True)
    # the kernel-only row times a part of its process: that process's CPU time says nothing of it
    return {name: {"kind": cmds[name][0], "wall_s": [round(x, 3) for x in wall[name]],
                   "cpu_s": [round(x, 3) for x in cpu[name]] if cmds[name][0] != "execute" else None,
                   "median_wall_s": round(statistics.median(wall[name]), 3),
                   "median_cpu_s": round(statistics.median(cpu[name]), 3) if cmds[name][0] != "execute" else None,
                   "runs_with_stderr_noise": noisy[name]}
            for name in cmds}


def report(results: dict[str, Any]) -> None:
    for name, r in results.items():
        goal = GOALS.get(r["kind"])
        verdict = "" if goal is None else f"  goal {goal} s: {'met' if r['median_wall_s'] <= goal else 'NOT met'}"
        cpu = "" if r["median_cpu_s"] is None else f"  cpu {r['median_cpu_s']:6.3f} s"
        noise = f"  stderr noise in {r['runs_with_stderr_noise']} runs" if r["runs_with_stderr_noise"] else ""
        print(f"{name:<48} wall {r['median_wall_s']:6.3f} s{cpu}{verdict}{noise}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runbooks", default="all", help="comma-separated runbook names, or all (default)")
    ap.add_argument("--out", type=Path, help="results file (default: bench/cli_latency-results.json)")
    args = ap.parse_args()
    names = [b.name for b in list_runbooks()] if args.runbooks == "all" else args.runbooks.split(",")
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        raise SystemExit(f"no demo parameters for {', '.join(unknown)} (tests/support/demo_plans.py)")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        cmds = commands(Path(tmp), names)  # secret parameters go to os.environ (KVMOPS_SECRET_*)
        env = {k: v for k, v in os.environ.items()
               if k != "PYTHONDONTWRITEBYTECODE" and (not k.startswith("KVMOPS_") or k.startswith("KVMOPS_SECRET_"))}
        results = measure(cmds, args.rounds, env)
    load_after = os.getloadavg()
    report(results)
    print(f"load average (1, 5, 15 min) before {load_before}, after {load_after}")
    write_results("cli_latency", {
        "rounds": args.rounds, "goals_s": GOALS, "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after], "results": results,
        "note": "medians of fresh processes; bytecode caches warm; CPU time includes the kernel",
    }, args.out)


if __name__ == "__main__":
    main()
