"""Runners: the edge that executes commands (local, over SSH, or plan-only)."""

from kvmops.runners.base import CommandRecord, LineSink, Runner
from kvmops.runners.local import LocalRunner
from kvmops.runners.plan import PlanRunner
from kvmops.runners.ssh import SSHRunner

__all__ = ["CommandRecord", "LineSink", "LocalRunner", "PlanRunner", "Runner", "SSHRunner"]
