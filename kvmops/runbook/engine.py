"""A papermill engine that shows live progress, sets the kernel's environment and keeps the
executed notebook in memory (kvmops scrubs it before anything is written).

Registered as papermill engine ``kvmops``; it is papermill's nbclient engine with three
additions passed as engine keyword arguments: ``kvmops_env`` (the kernel's environment),
``kvmops_progress`` (a callable receiving progress lines) and ``kvmops_keep`` (a list that
receives the NotebookExecutionManager, so the notebook survives a failure).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.log import logger
from papermill.utils import merge_kwargs, remove_args

from kvmops.runbook.steps import STEP_MARK, headings

ENGINE = "kvmops"
Progress = Callable[[str], None]


class _Client(PapermillNotebookClient):  # type: ignore[misc]
    """Forwards every output line to the progress callable as it arrives."""

    kvmops_progress: Progress | None = None

    def log_output_message(self, output: Any) -> None:
        say = self.kvmops_progress
        if say is None:
            return
        if output.output_type == "stream":
            text = "".join(output.text)
        elif "data" in output and "text/plain" in output.data:
            text = "".join(output.data["text/plain"])
        elif output.output_type == "error":
            text = f"{output.ename}: {output.evalue}"
        else:
            return
        for line in text.splitlines():
            say(line if line.startswith(STEP_MARK) else "    " + line)


class KvmopsEngine(NBClientEngine):  # type: ignore[misc]
    """papermill's nbclient engine plus live progress, kernel env and a handle on the nb."""

    @classmethod
    def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
        env = kwargs.pop("kvmops_env", None)
        say: Progress | None = kwargs.pop("kvmops_progress", None)
        keep: list[Any] | None = kwargs.pop("kvmops_keep", None)
        if keep is not None:
            keep.append(nb_man)
        labels = headings(nb_man.nb)
        code = [i for i, c in enumerate(nb_man.nb.cells) if c.cell_type == "code"]

        def on_start(cell: Any, cell_index: int) -> None:
            if say is not None and cell_index in code:
                n = code.index(cell_index) + 1
                say(f"[{n}/{len(code)}] {labels.get(cell_index, '') or 'cell ' + str(cell_index)}")

        timeout = kwargs.pop("execution_timeout", None)
        startup = kwargs.pop("start_timeout", 60)
        kwargs = remove_args(["input_path", "timeout", "startup_timeout", "log_output"], **kwargs)
        final = merge_kwargs(
            kwargs,
            timeout=timeout,
            startup_timeout=startup,
            kernel_name=kernel_name,
            log=logger,
            log_output=say is not None,
            on_cell_start=on_start,
        )
        client = _Client(nb_man, **final)
        client.kvmops_progress = say
        return client.execute(env=env) if env is not None else client.execute()


def register() -> None:
    """Make the engine known to papermill (idempotent)."""
    papermill_engines.register(ENGINE, KvmopsEngine)
