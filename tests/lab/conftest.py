"""The lab tier: tests against a lab VM (a faithful KVM host in QEMU), reached over SSH.

Opt-in: set ``KVMOPS_LAB=1`` (it needs root, QEMU, debootstrap, about 2 GB under the cache
folder; the first run builds the image, later runs reuse it). A lab that already runs is
reused and left running; a lab this session started is destroyed at the end.

Two labs at most, each booted once per session and shared by every module that needs it: the
default lab (``lab_state``: every module) and the second host ``kvm2`` (``second_lab``: the
two-host proof, whose first host is the default lab).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Generator, Iterator
from contextlib import ExitStack

import pytest

import kvmops_lab as lab
from kvmops.cmd import change, read
from kvmops.facts import read_facts
from kvmops.host import Host, connect
from kvmops.hostfacts import Wanted
from kvmops.net import ops as net_ops
from kvmops.site import Site, load_site
from kvmops_lab import ifnames
from kvmops_lab import runbookguest as rg
from kvmops_lab.cloud_image import ensure_cloud_image
from kvmops_lab.guest_image import ensure_guest_image
from kvmops_lab.paths import LabPaths
from kvmops_lab.prepare import CLOUD_IMAGE_FILE
from kvmops_lab.state import RUNNING, LabState
from kvmops_lab.watchdog import LabWatchdog
from tests.support.nic_checks import VLANS
from tests.support.run import run_plan

TIMINGS: dict[str, float] = {}


def lab_skip_reason() -> str | None:
    if os.environ.get("KVMOPS_LAB") != "1":
        return "lab tier is opt-in: set KVMOPS_LAB=1 (root, QEMU; first run builds the image, ~4 min)"
    if os.geteuid() != 0:
        return "lab tier needs root (debootstrap, loop devices, QEMU)"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = lab_skip_reason()
    if reason is None:
        return
    for item in items:
        if "lab" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))


WATCHDOGS: list[LabWatchdog] = []


def _tell(text: str) -> None:
    print(f"\n{text}", file=sys.stderr, flush=True)  # shown with the test that fails next


@pytest.fixture(scope="session", autouse=True)
def lab_watchdog() -> Iterator[None]:
    """Both labs are watched while the tier runs: a lab kernel that hangs fails the test that
    waits on it, with the reason, instead of holding CI until its time runs out."""
    if lab_skip_reason() is not None:
        yield
        return
    with ExitStack() as stack:
        WATCHDOGS[:] = [stack.enter_context(LabWatchdog(LabPaths.named(n), _tell)) for n in ("", SECOND)]
        yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    found = [line for dog in WATCHDOGS for line in dog.findings]
    if found and report.failed:
        report.sections.append(("lab watchdog", "\n".join(found)))
    return report


@pytest.fixture(scope="session")
def lab_state() -> Iterator[LabState]:
    """A running lab: reused when one answers SSH, else built/booted here and destroyed after."""
    before = lab.status()
    if before.kind == RUNNING and before.state is not None and not _as_up_leaves_it(before.state):
        print("\nlab tier: the running lab is not as `kvmops lab up` leaves it (a guest defined, or no cloud "
              "image: e.g. the lab `kvmops demo` left): destroying it and starting a clean one", flush=True)
        lab.destroy()
        before = lab.status()
    started_here = before.kind != RUNNING
    t0 = time.monotonic()
    image = ensure_guest_image()
    cloud = ensure_cloud_image().raw
    TIMINGS["images (build or cache)"] = time.monotonic() - t0
    t1 = time.monotonic()
    state = lab.up(guest_image=image, cloud_image=cloud)
    TIMINGS["lab up (boot + prepare)" if started_here else "lab reuse"] = time.monotonic() - t1
    t2 = time.monotonic()
    try:
        yield state
    finally:
        TIMINGS["lab tests"] = time.monotonic() - t2
        if started_here:
            lab.destroy()
        print("\nlab timings: " + ", ".join(f"{k} {v:.0f}s" for k, v in TIMINGS.items()))


def _as_up_leaves_it(state: LabState) -> bool:
    """No guest defined and the cloud image in place: the tier's tests start from that."""
    host = connect(load_site(state.site), apply=False)
    try:
        guests = host.runner.run(read("virsh", "list", "--all", "--name")).stdout.split()
        cloud = host.runner.run(read("test", "-e", CLOUD_IMAGE_FILE, ok=(0, 1))).returncode == 0
    finally:
        host.close()
    return not guests and cloud


SECOND = "kvm2"
STARTED: dict[str, bool] = {}  # lab name: booted by this session (so this session may take it down)


@pytest.fixture(scope="session")
def second_lab(lab_state: LabState) -> Iterator[LabState]:
    """The second lab host ``kvm2`` (``kvmops lab up --name kvm2``, no cloud image): reused when it
    runs and answers SSH, else booted here (after the default lab) and destroyed at the end."""
    paths = LabPaths.named(SECOND)
    started_here = STARTED[SECOND] = lab.status(paths, check_ssh=False).kind != RUNNING
    t0 = time.monotonic()
    state = lab.up(paths, guest_image=ensure_guest_image(), say=lambda line: print(f"[{SECOND}] {line}", flush=True))
    TIMINGS[f"{SECOND} up" if started_here else f"{SECOND} reuse"] = time.monotonic() - t0
    try:
        yield state
    finally:
        if started_here:
            lab.destroy(paths)


@pytest.fixture(scope="session")
def second_lab_started_here(second_lab: LabState) -> bool:
    """Whether this session booted kvm2 (a reused kvm2 is left running)."""
    return STARTED[SECOND]


@pytest.fixture(scope="session")
def lab_site(lab_state: LabState) -> Site:
    return load_site(lab_state.site)


@pytest.fixture
def lab_host(lab_site: Site) -> Iterator[Host]:
    """A Host that applies plans in the lab over kvmops' own SSH runner."""
    host = connect(lab_site, apply=True)
    try:
        yield host
    finally:
        host.close()


@pytest.fixture(scope="module")
def two_vlans(lab_site: Site, lab_state: LabState) -> Iterator[tuple[str, ...]]:
    """The bridges of the two-NIC guests' VLANs (tests/support/nic_checks.py), made by
    host-network; removed after, if this module made them."""
    host = connect(lab_site, apply=True)
    bridges = tuple(lab_site.network(v).bridge for v in VLANS)
    had = {b for b in bridges if host.run(read("ip", "link", "show", b, ok=(0, 1))).returncode == 0}
    try:
        for vlan in VLANS:
            rg.runbook(str(lab_state.site), "host-network", {"vlan": vlan, "stp": "off"})
        yield bridges
    finally:
        for b in bridges:
            if b not in had:
                run_plan(host, net_ops.remove_bridge(read_facts(host, Wanted(net=True)), b), b, progress=print)
        host.close()


@pytest.fixture(scope="module")
def enp_image(lab_site: Site) -> Iterator[str]:
    """The cloud image with predictable NIC names (enp1s0), in the lab; removed after if made here."""
    host = connect(lab_site, apply=True)
    had = host.run(read("test", "-e", ifnames.PREDICTABLE_IMAGE_FILE, ok=(0, 1))).returncode == 0
    t0 = time.monotonic()
    path = ifnames.ensure_predictable_image(host)
    TIMINGS["predictable-names image (qcow2 overlay)"] = time.monotonic() - t0
    try:
        yield path
    finally:
        if not had:
            host.run(change("rm", "-f", "--", path), check=False)
        host.close()
