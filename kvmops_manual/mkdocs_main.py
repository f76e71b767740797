"""``python -m kvmops_manual.mkdocs_main build ...``: mkdocs' own command line, with the notebook
stack imported first without the optional parts kvmops never uses.

mkdocs-jupyter imports jupytext and nbformat, and with them jsonschema, whose format checkers
would build ``rfc3987_syntax``'s grammar at import (about a second of a build's CPU time;
:mod:`kvmops.runbook.nbstack` explains). The build is mkdocs' own otherwise.
"""

from __future__ import annotations

from kvmops.runbook import nbstack


def main() -> None:
    nbstack.load()
    from mkdocs.__main__ import cli

    cli()


if __name__ == "__main__":
    main()
