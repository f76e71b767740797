"""The benchmarks page: the results files of ``bench/`` as tables, with the goals of issue 9.

Every bench script writes ``bench/<name>-results.json`` naming the machine (see
``bench/machine.py``); ``<!-- kvmops:benchmarks -->`` becomes a summary table (goal, measured,
met) and one table per benchmark. A missing results file is shown as "not measured"; a
damaged one is an error, so the manual never shows a stale guess.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kvmops.errors import ConfigError
from kvmops_manual.pages import table

Row = tuple[str, str, str, str]  # benchmark, goal, measured, met
KVMOPS_COPY = "kvmops auto"  # default when a results file does not name kvmops_method
DD_COPY = "dd bs=4M oflag=direct"


def load(bench_dir: Path, name: str) -> dict[str, Any] | None:
    """``bench/<name>-results.json``, or None when the benchmark was not run."""
    path = bench_dir / f"{name}-results.json"
    if not path.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not a results file ({exc}); run the bench script again") from None
    return data


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def overhead(r: dict[str, Any]) -> Row:
    pct = float(r["overhead_pct"])
    return ("Runbook run overhead", "kvmops adds < 50 % to a bare papermill run",
            f"{r['kvmops_median_s']:.2f} s vs {r['bare_median_s']:.2f} s bare: {pct:+.0f} %", _met(pct < 50))


def inventory(r: dict[str, Any]) -> Row:
    ok = int(r["commands"]) <= 3 and float(r["parse_ms"]) < 50
    return (f"Inventory, {r['lvs']} LVs / {r['guests']} guests",
            "constant commands (not one per guest); parse < 50 ms",
            f"{r['commands']} commands ({', '.join(r['command_names'])}); parse {r['parse_ms']:.1f} ms", _met(ok))


def _best(r: dict[str, Any], image: str, method: str) -> float:
    for row in r["results"]:
        if row["image"] == image and row["method"] == method:
            return float(row["best_mib_s"])
    raise ConfigError(f"image_copy results hold no {method!r} on {image!r}: run bench/image_copy.py again")


def _kvmops(r: dict[str, Any]) -> str:
    """The row name of kvmops' own method in a copy results file (``kvmops auto``)."""
    return str(r.get("kvmops_method") or KVMOPS_COPY)


def image_copy(r: dict[str, Any]) -> list[Row]:
    out = []
    for image, factor in (("dense", 1.0), ("sparse 90% holes", 3.0)):
        ours, dd = _best(r, image, _kvmops(r)), _best(r, image, DD_COPY)
        goal = "at least dd's throughput" if factor == 1 else "at least 3x dd's throughput"
        out.append((f"Image copy, {image} ({r['size_mib']} MiB)", goal,
                    f"{ours:.0f} MiB/s vs dd {dd:.0f} MiB/s ({ours / dd:.1f}x)", _met(ours >= factor * dd)))
    return out


def docs_build(r: dict[str, Any]) -> Row | list[Row]:
    """Issue 26: a full build in 30 s, a rebuild after editing prose in 10 s (medians), beside
    the build as before (one runbook at a time, nothing cached) in the same run."""
    if "medians" not in r:  # a results file of the first version of the script
        runs = ", ".join(f"{x['total_s']:.0f} s ({x['cache']}: runbooks {x['runbooks_s']:.0f} s, mkdocs "
                         f"{x['mkdocs_s']:.0f} s)" for x in r["results"])
        return ("Manual build (`kvmops docs`)", "measured, no goal", runs, "-")
    m, goals, load = r["medians"], r["goals_s"], r["loadavg_before"][0]
    b = m["before"]
    before = f"before (one runbook at a time, no cache) {b['wall_s']:.0f} s (CPU {b['cpu_s']:.0f} s)"
    out: list[Row] = []
    for kind, what in (("cold", "Manual build (`kvmops docs`), caches empty"),
                       ("prose", "Manual rebuild after editing prose")):
        x = m[kind]
        out.append((what, f"at most {goals[kind]:g} s", f"{x['wall_s']:.1f} s (CPU {x['cpu_s']:.1f} s; runbooks "
                    f"{x['runbooks_s']:.1f} s, mkdocs {x['mkdocs_s']:.1f} s); {before}; load {load}",
                    _met(float(x["wall_s"]) <= float(goals[kind]))))
    return out


def lab_boot(r: dict[str, Any]) -> Row:
    return ("Lab VM: QEMU start to SSH", "measured, no goal",
            f"{r.get('qemu_start_to_ssh_s')} s; whole `lab up` {r.get('up_total_s')} s", "-")


def _median(r: dict[str, Any], case: str, method: str) -> float:
    row = next((x for x in r["results"] if x["case"] == case and x["method"] == method), None)
    if row is None:
        raise ConfigError(f"transfer results hold no {method!r} for {case!r}: run bench/transfer.py again")
    return float(row["median_mib_s"])


def transfer(r: dict[str, Any]) -> list[Row]:
    """Issue 26: a verified move at least 0.75x a plain ``ssh a dd | ssh b dd``; a backup as
    lv-backup runs it against the plain ``ssh a zstd | ssh b dd`` (goal 0.9x)."""
    if "goals" not in r:  # a results file of the first version of the script
        return _transfer_v1(r)
    out = []
    for case in dict.fromkeys(row["case"] for row in r["results"]):
        goal = r["goals"][case.split(",")[0]]
        ours, plain = _median(r, case, goal["method"]), _median(r, case, goal["baseline"])
        ratio = ours / plain
        out.append((f"{case.capitalize()} ({r['size_mib']} MiB over SSH): {goal['method']}",
                    f"at least {goal['ratio']:g}x `{goal['baseline'].removeprefix('plain: ')}`",
                    f"{ours:.0f} vs plain {plain:.0f} MiB/s (median of {r['runs']}, {ratio:.2f}x); load "
                    f"{r.get('load_1m_before', '?')}", _met(ratio >= float(goal["ratio"]))))
    return out


def _transfer_v1(r: dict[str, Any]) -> list[Row]:
    out = []
    for case in dict.fromkeys(row["case"] for row in r["results"]):
        rows = [row for row in r["results"] if row["case"] == case]
        ours = next(row for row in rows if row["method"].startswith("kvmops ("))
        plain = next(row for row in rows if row["method"].startswith("plain"))
        ratio = ours["median_mib_s"] / plain["median_mib_s"]
        out.append((f"{case.capitalize()} ({r['size_mib']} MiB over SSH)", "about a plain dd | ssh | dd",
                    f"{ours['median_mib_s']:.0f} vs plain {plain['median_mib_s']:.0f} MiB/s (median, {ratio:.2f}x)",
                    _met(ratio >= 0.75)))
    return out


FLEET_NOW = "now (one lvm fullreport), plain root shell"  # a KVM host's root shell
FLEET_BEFORE = "before (vgs, lvs), plain root shell"
FLEET_THIS_SHELL = "now (one lvm fullreport), this machine's root shell"  # its ~/.bashrc runs pyenv init


def fleet_inventory(r: dict[str, Any]) -> Row:
    """Issue 26: 50 hosts in 4 s (the read of now, median), the read before it beside it."""
    if "medians" not in r:  # a results file of the first version of the script
        runs = ", ".join(f"{x['hosts']} hosts {x['seconds']:.1f} s" for x in r["results"])
        return ("Fleet inventory over SSH", "grows with hosts / concurrency, not per guest", runs, "-")
    goal = r["goal"]
    rows = {(m["reader"], m["hosts"]): m for m in r["medians"]}
    now, before = rows.get((FLEET_NOW, goal["hosts"])), rows.get((FLEET_BEFORE, goal["hosts"]))
    if now is None or before is None:
        raise ConfigError("fleet_inventory results hold no reading of the goal's size: run the script again")
    cpu = sum(now["cpu_ms_per_host"].values())
    shell = rows.get((FLEET_THIS_SHELL, goal["hosts"]))
    heavy = f"; with the bench machine's root shell (pyenv init in ~/.bashrc) {shell['seconds']:.1f} s" if shell else ""
    return (f"Fleet inventory, {goal['hosts']} hosts over SSH (concurrency {r['concurrency']})",
            f"at most {goal['seconds']:g} s", f"{now['seconds']:.1f} s ({cpu} ms CPU a host), before "
            f"{before['seconds']:.1f} s ({sum(before['cpu_ms_per_host'].values())} ms), a plain root shell as on a "
            f"KVM host{heavy}; load {r['loadavg_before'][0]}", _met(float(now["seconds"]) <= float(goal["seconds"])))


def hostile_limits(r: dict[str, Any]) -> Row:
    """What each hostile input cost before it was refused, with the code before issue 22 beside."""
    runs = r.get("runs", {})
    after, before = runs.get("after", {}).get("results", {}), runs.get("before", {}).get("results", {})

    def cost(x: dict[str, Any]) -> str:
        end = "timeout" if x["exit"] == "timeout" else ("a traceback" if x["traceback"] else f"exit {x['exit']}")
        return f"{x['seconds']:.1f} s, {x['peak_rss_mib']} MiB, {x['stderr_bytes']} B of errors, {end}"

    measured = "; ".join(f"{name}: {cost(x)}" + (f" (before: {cost(before[name])})" if name in before else "")
                         for name, x in after.items())
    ok = bool(after) and all(not x["traceback"] and x["exit"] != "timeout" and x["peak_rss_mib"] < 1024
                             for x in after.values())
    return ("Hostile inputs refused", "a clear refusal, no traceback, < 1 GiB", measured or "no run", _met(ok))


def backup_engines(r: dict[str, Any]) -> list[Row]:
    """Issue 25: borg and restic side by side with ``dd | zstd`` on a 2 GiB realistic disk."""
    e, mib = r["engines"], 2**20
    z = e["dd | zstd"]
    rows: list[Row] = []
    for name in ("borg", "restic"):
        x = e[name]
        rows.append((f"Backups with {name} ({r['disk_bytes'] // mib} MiB disk)",
                     "after a 5 % change <= 10 % of the full stored",
                     f"full {x['full_s']:.0f} s, {x['full_bytes'] / mib:.0f} MiB (dd | zstd {z['full_s']:.0f} s, "
                     f"{z['full_bytes'] / mib:.0f} MiB); 5 % changed: {x['second_bytes'] / mib:.0f} MiB = "
                     f"{x['second_pct_of_full']:.0f} % of the full in {x['second_time_pct_of_full']:.0f} % of its "
                     f"time; 10 more at 1 %: {x['ten_added_bytes'] / mib:.0f} MiB (10 full copies "
                     f"{z['ten_full_copies_bytes'] / mib:.0f} MiB); restore {x['restore_mib_s']:.0f} MiB/s "
                     f"(zstd -d | dd {z['restore_mib_s']:.0f})", _met(x["second_pct_of_full"] <= 10)))
    return rows


def guest_boot(r: dict[str, Any]) -> list[Row]:
    """Issue 12: the realistic image's build and one-level boot, the small guest in the lab."""
    img = r["cloud_image"]
    rows: list[Row] = [("Realistic guest image build (`kvmops_lab.cloud_image`)", "measured, no goal",
                        f"{img['build_s']:.0f} s; {img['allocated_bytes'] / 2**20:.0f} MiB allocated of "
                        f"{img['virtual_bytes'] / 2**30:.1f} GiB", "-")]
    for one in r["one_level"]:
        rows.append((f"Realistic image, one level of TCG ({one['setup']}): QEMU start to login prompt / SSH",
                     "measured, no goal", f"{one['qemu_start_to_login_prompt_s']:.0f} s / "
                     f"{one['qemu_start_to_ssh_s']} s (load {one['loadavg_1m_after']})", "-"))
    n = r["nested_small_guest"]
    idle = n["lab_qemu_cpu_pct_guest_idle"]
    ok = bool(n["booted"]) and float(n["virsh_start_to_login_prompt_s"]) < 120 and idle is not None and idle < 50
    rows.append(("Small guest inside the lab: `virsh start` to login prompt; lab QEMU with it idle",
                 "< 120 s; < 50 % of a core", f"{n['virsh_start_to_login_prompt_s']:.0f} s ({n['domain_type']}); "
                 f"{idle} % (lab alone {n['lab_qemu_cpu_pct_idle_lab']} %)", _met(ok)))
    return rows


def lab_nested_boot(r: dict[str, Any]) -> list[Row]:
    """Issue 23: the small guest booted again and again inside the lab, per setting, under load."""
    rows: list[Row] = []
    for entry in r["settings"].values():
        s = entry["summary"]
        loads = [b["loadavg_1m"] for b in entry["boots"]]
        spread = (f"{s['min_s']:.0f} / {s['median_s']:.0f} / {s['max_s']:.0f} s" if s["booted"] else "none booted")
        load = f"load {min(loads):.1f}-{max(loads):.1f}" if loads else "no boots"
        measured = (f"{s['booted']} of {s['boots']} booted (min / median / max {spread}); {s['stalled']} stalled, "
                    f"{s['lab_deaths']} lab panics; {entry['busy_cores']} core(s) kept busy, {load}")
        ok = s["boots"] > 0 and s["booted"] == s["boots"] and s["lab_deaths"] == 0
        rows.append((f"Small guest inside the lab: {entry['title']}", "every boot to its login prompt, the lab "
                     "never panics", measured, _met(ok)))
    return rows


def lab_down(r: dict[str, Any]) -> list[Row]:
    """Issue 23: ``kvmops lab down`` with the small guest running, before and after."""
    rows: list[Row] = []
    for x in r["results"]:
        ok = x["case"].startswith("lab down") and x["seconds"] <= 30 and x["outcome"] == "lab VM powered off"
        rows.append((f"Lab power-off: {x['case']}", "within 30 s", f"{x['seconds']:.0f} s ({x['outcome']})",
                     _met(ok) if x["case"].startswith("lab down") else "-"))
    return rows


def _slowest(r: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    found = [(name, x) for name, x in r["results"].items() if x["kind"] == kind]
    if not found:
        raise ConfigError(f"cli_latency results hold no {kind!r} command: run bench/cli_latency.py again")
    return max(found, key=lambda item: float(item[1]["median_wall_s"]))


def _baseline(r: dict[str, Any], prefix: str) -> float:
    return float(next(x["median_wall_s"] for name, x in r["results"].items() if name.startswith(prefix)))


def cli_latency(r: dict[str, Any]) -> list[Row]:
    """Issue 26: a list in 0.3 s, a CLI plan in 0.5 s, a runbook's plan in 2 s (the slowest of
    each kind, median wall time; CPU time beside it, which load changes less)."""
    goals, load = r["goals_s"], r["loadavg_before"][0]
    python, papermill = _baseline(r, "python -c pass"), _baseline(r, "papermill empty.ipynb")
    kernel = _baseline(r, "papermill.execute_notebook")
    out: list[Row] = []
    for kind, what, base in (("list", "`kvmops {lv,guest,net} list --site demo`", f"bare python {python:.2f} s"),
                             ("cli_plan", "A CLI plan (`kvmops lv snapshot vminflux --site demo`)",
                              f"bare python {python:.2f} s"),
                             ("runbook_plan", "`kvmops plan RUNBOOK --site demo`, every runbook",
                              f"bare papermill on an empty notebook {papermill:.2f} s, its kernel alone "
                              f"{kernel:.2f} s")):
        name, x = _slowest(r, kind)
        wall, cpu = float(x["median_wall_s"]), float(x["median_cpu_s"])
        out.append((what, f"at most {goals[kind]} s", f"{wall:.2f} s (slowest: `{name}`; CPU {cpu:.2f} s); {base}; "
                    f"load {load}", _met(wall <= float(goals[kind]))))
    return out


def _not_yet(r: dict[str, Any]) -> Row:
    raise ConfigError("guest_create results cannot be shown yet: teach kvmops_manual.benchmarks their shape")


SUMMARY: tuple[tuple[str, str, str, Callable[[dict[str, Any]], Row | list[Row]]], ...] = (
    ("runbook_overhead", "Runbook run overhead", "kvmops adds < 50 % to a bare papermill run", overhead),
    ("inventory_scale", "Inventory, 500 LVs / 200 guests", "constant commands; parse < 50 ms", inventory),
    ("image_copy", "Image copy", ">= dd on dense data, >= 3x dd on a 90 %-empty image", image_copy),
    ("guest_create", "Guest creation in the lab, without the image copy", "< 20 s, even under TCG", _not_yet),
    ("lab_boot", "Lab VM boot", "measured, no goal", lab_boot),
    ("transfer", "LV moves and backups over SSH", "verified move 0.75x, backup 0.9x a plain ssh pipe", transfer),
    ("backup_engines", "Backup engines", "after a 5 % change <= 10 % of the full stored", backup_engines),
    ("fleet_inventory", "Fleet inventory", "50 hosts in 4 s", fleet_inventory),
    ("guest_boot", "Real guests: image build, boots", "small guest < 120 s to its login prompt", guest_boot),
    ("lab_nested_boot", "Small guest inside the lab, 10+ boots per setting", "no stall, no lab panic",
     lab_nested_boot),
    ("lab_down", "`kvmops lab down` with a guest running", "within 30 s", lab_down),
    ("docs_build", "Manual build", "30 s; 10 s after editing prose", docs_build),
    ("hostile_limits", "Hostile inputs refused", "a clear refusal, no traceback, < 1 GiB", hostile_limits),
    ("cli_latency", "At the terminal: lists, plans, runbook plans", "0.3 s / 0.5 s / 2 s", cli_latency),
)


def _machine(r: dict[str, Any]) -> str:
    m = r.get("machine") or {}
    return (f"{m.get('hostname', '?')}: {m.get('cpu_model', '?')}, {m.get('cores', '?')} cores, "
            f"Python {m.get('python', '?')}")


def page(bench_dir: Path) -> str:
    """The markdown of ``<!-- kvmops:benchmarks -->``."""
    rows: list[tuple[str, ...]] = []
    for name, title, goal, fn in SUMMARY:
        r = load(bench_dir, name)
        if r is None:
            script = bench_dir / f"{name}.py"
            how = f"run `bench/{name}.py`" if script.is_file() else "no script yet"
            rows.append((title, goal, f"not measured ({how})", "-", "-", "-"))
            continue
        made = fn(r)
        for row in made if isinstance(made, list) else [made]:
            rows.append((*row, _machine(r), str(r.get("measured", "?"))))
    head = ("Benchmark", "Goal", "Measured", "Goal met", "Machine", "When (UTC)")
    return (table(head, rows) + "\n\n" + copy_table(bench_dir) + latency_table(bench_dir)
            + transfer_table(bench_dir) + fleet_table(bench_dir) + docs_table(bench_dir))


def copy_table(bench_dir: Path) -> str:
    """Every method on every image of the copy benchmark (best of the repeats)."""
    r = load(bench_dir, "image_copy")
    if r is None:
        return ""
    rows = [(row["image"], f"`{row['method']}`" + (" (kvmops)" if row["method"] == _kvmops(r) else ""),
             " / ".join(f"{s:.2f}" for s in row["seconds"]), f"{row['best_mib_s']:.0f}") for row in r["results"]]
    return (f"**Image copy in detail** ({r['size_mib']} MiB onto a loop device, written through, `sync` "
            f"included; {r.get('qemu_img', '')}):\n\n"
            + table(("Image", "Method", "Seconds per run", "Best MiB/s"), rows))


def latency_table(bench_dir: Path) -> str:
    """Every command of the terminal benchmark with its baselines (medians)."""
    r = load(bench_dir, "cli_latency")
    if r is None:
        return ""
    rows = [(f"`{name}`", x["kind"].replace("_", " "), f"{x['median_wall_s']:.2f}",
             "-" if x["median_cpu_s"] is None else f"{x['median_cpu_s']:.2f}") for name, x in r["results"].items()]
    return (f"\n\n**At the terminal in detail** (medians of {r['rounds']} fresh processes each, bytecode caches "
            f"warm; CPU time includes the kernel; load average {r['loadavg_before'][0]} before, "
            f"{r['loadavg_after'][0]} after):\n\n"
            + table(("Command", "Kind", "Wall s", "CPU s"), rows))


def transfer_table(bench_dir: Path) -> str:
    """Every method of the transfer benchmark beside the plain pipe of its case (medians)."""
    r = load(bench_dir, "transfer")
    if r is None or "goals" not in r:
        return ""
    plain = {row["case"]: float(row["median_mib_s"]) for row in r["results"] if row["method"].startswith("plain")}
    rows = [(row["case"], f"`{row['method']}`", " / ".join(f"{x:.2f}" for x in row["seconds"]),
             f"{row['median_mib_s']:.0f}", f"{float(row['median_mib_s']) / plain[row['case']]:.2f}x")
            for row in r["results"]]
    return (f"\n\n**Moves and backups in detail** ({r['size_mib']} MiB, two sshd's on loopback, both ends and "
            f"kvmops on the same machine; rounds interleave the methods; load {r.get('load_1m_before', '?')} "
            f"before, {r.get('load_1m_after', '?')} after; {_machine(r)}):\n\n"
            + table(("Case", "Method", "Seconds per run", "Median MiB/s", "Of the plain pipe"), rows))


def fleet_table(bench_dir: Path) -> str:
    """Each reader of the fleet benchmark, with CPU time per host by side, and one host's steps."""
    r = load(bench_dir, "fleet_inventory")
    if r is None or "medians" not in r:
        return ""
    rows = [(f"`{m['reader']}`", m["hosts"], f"{m['seconds']:.2f}", m["cpu_ms_per_host"]["kvmops"],
             m["cpu_ms_per_host"]["ssh_clients"], m["cpu_ms_per_host"]["sshd_side"]) for m in r["medians"]]
    steps = [(label, f"{ms:.0f}") for label, ms in r["phases_ms"].items()]
    return (f"\n\n**Fleet inventory in detail** (medians of {r['rounds']} rounds, concurrency {r['concurrency']}, "
            f"load {r['loadavg_before'][0]} before, {r['loadavg_after'][0]} after; {_machine(r)}):\n\n"
            + table(("Reader", "Hosts", "Seconds", "CPU ms a host: kvmops", "ssh clients", "sshd side"), rows)
            + "\n\nOne host read alone, step by step (wall ms, medians of 5; this machine's root shell):\n\n"
            + table(("Step", "ms"), steps))


def docs_table(bench_dir: Path) -> str:
    """The manual's build before, cold and after editing prose (medians)."""
    r = load(bench_dir, "docs_build")
    if r is None or "medians" not in r:
        return ""
    names = {"before": "before: one runbook at a time, no cache", "cold": "now: parallel, caches empty",
             "prose": "now: after editing prose (caches warm)"}
    rows = [(names[k], f"{m['wall_s']:.1f}", f"{m['cpu_s']:.1f}", f"{m['runbooks_s']:.1f}", f"{m['mkdocs_s']:.1f}")
            for k, m in r["medians"].items()]
    return (f"\n\n**The manual's build in detail** (medians of {r['rounds']} rounds, {r['jobs']} runbooks at a time; "
            f"CPU: the build's process and its children, kernels and mkdocs; load {r['loadavg_before'][0]} before, "
            f"{r['loadavg_after'][0]} after; {_machine(r)}):\n\n"
            + table(("Build", "Wall s", "CPU s", "Runbooks s", "mkdocs s"), rows))
