"""Procedures: what each runbook does, as functions over facts (tested without a notebook).

A procedure module has, for its runbook:

- ``wanted(site, ...)``: which facts to read besides LVM, domains and limits;
- ``check(facts, ...)``: the preconditions; lines to show, or a clear refusal;
- ``procedure(facts, ...)``: a :class:`~kvmops.executor.Procedure` (phases, each planned from
  fresh facts just before it runs, and their preview planned from the facts read first);
- ``verify(facts, ...)``: a :class:`Verdict` read from the host after an applied run.

The runbook's cells read the parameters, call these and show the results with prose around
them; :mod:`kvmops.notebook` is only the display facade.
"""
