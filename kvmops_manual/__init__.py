"""The ops manual's build pipeline (``kvmops docs``).

1. :mod:`~kvmops_manual.produce` makes the executed runbooks: plan-mode runs against the
   demo site through :func:`kvmops.runbook.execute.run_runbook`, or (``--from-journal``) the
   latest successful applied lab runs, each marked with where it came from.
2. ``mkdocs build --strict`` (:mod:`~kvmops_manual.build`) renders them with mkdocs-jupyter;
   the hooks (:mod:`~kvmops_manual.hooks`) fill in the site facts, the networks table,
   the runbook list, the journal and the inventory from their sources at build time.
3. :mod:`~kvmops_manual.scan` checks the built site for every secret the build used.
"""
