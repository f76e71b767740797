"""Data between hosts: an LV (or a file) streamed from one host to another through kvmops.

The data path is ``dd`` (or a compressor) on the source host -> kvmops -> ``dd`` on the target
host, each process opened through its host's runner (the SSH options and the quoting stay the
runners'), the sha256 of the stream computed on the way and the ends checked afterwards with
``openssl dgst -sha256`` on their own hosts (:mod:`kvmops.runners.stream`,
:mod:`kvmops.transfer.result`): the target always; the source too, unless it is the stream
itself (a snapshot that cannot change while it streams: its sha256 is the stream's).

A plan holds a transfer as a :class:`kvmops.plan.Transfer` effect, run by the one executor.
Procedures over two hosts (guest-move, lv-backup, lv-backup-restore) are stages, each planned
from fresh facts of every host just before it runs (:mod:`kvmops.procedures.stages`).
"""
