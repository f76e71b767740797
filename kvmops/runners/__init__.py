"""Runners: the edge that executes commands (local, over SSH, or plan-only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kvmops.lazy import exports

if TYPE_CHECKING:
    from kvmops.runners.base import CommandRecord, LineSink, Runner
    from kvmops.runners.local import LocalRunner
    from kvmops.runners.plan import PlanRunner
    from kvmops.runners.ssh import SSHRunner

# name -> submodule, imported on first use: importing one submodule loads no other
_WHERE = {
    "CommandRecord": "base",
    "LineSink": "base",
    "LocalRunner": "local",
    "PlanRunner": "plan",
    "Runner": "base",
    "SSHRunner": "ssh",
}
__all__ = [
    "CommandRecord",
    "LineSink",
    "LocalRunner",
    "PlanRunner",
    "Runner",
    "SSHRunner",
]
__getattr__ = exports(__name__, _WHERE)
