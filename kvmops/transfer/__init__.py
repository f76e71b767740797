"""Data between hosts: an LV (or a file) streamed from one host to another through kvmops.

The data path is ``dd`` (or a compressor) on the source host -> kvmops -> ``dd`` on the target
host, each process opened through its host's runner (the SSH options and the quoting stay the
runners'), the sha256 of the stream computed on the way and both ends checked afterwards with
``sha256sum`` on their own hosts (:mod:`kvmops.runners.stream`, :mod:`kvmops.transfer.result`).

A plan holds a transfer as a :class:`kvmops.plan.Transfer` effect, run by the one executor.
Procedures over two hosts (guest-move, lv-backup, lv-backup-restore) are stages, each planned
from fresh facts of every host just before it runs (:mod:`kvmops.procedures.stages`).
"""
