"""The runbook engine: discover runbooks, validate parameters, execute them with papermill,
and keep every run in the journal.

- :func:`kvmops.runbook.discover.list_runbooks` -> ``[RunbookInfo]``
- :func:`kvmops.runbook.execute.run_runbook` -> ``RunRecord``
- :mod:`kvmops.runbook.journal`: the run records on disk
"""
