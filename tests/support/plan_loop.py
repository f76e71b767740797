"""``kvmops plan NAME --site demo`` N times in this process, with the runbook's demo parameters
(tests/support/demo_plans.py); exit 1 if a run failed. The kernels inherit this process's
stderr: the caller reads everything a run printed there.

    python -m tests.support.plan_loop NAME N JOURNAL
"""

from __future__ import annotations

import os
import sys

from kvmops.cli.main import main
from kvmops.cli.runbooks import SECRET_ENV_PREFIX
from kvmops.runbook.discover import find_runbook, info_of
from tests.support.demo_plans import CASES


def argv(name: str, journal: str) -> list[str]:
    """The command line of the runbook's demo plan; secrets go through the environment."""
    secrets = info_of(find_runbook(name)).secrets
    out = ["plan", name, "--site", "demo", "--journal", journal]
    for key, value in CASES[name][0].items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if key in secrets:
            os.environ[SECRET_ENV_PREFIX + key.upper()] = text
        else:
            out += ["-p", key, text]
    return out


def loop(name: str, times: int, journal: str) -> int:
    codes = [main(argv(name, journal)) for _ in range(times)]
    return 0 if codes == [0] * times else 1


if __name__ == "__main__":
    sys.exit(loop(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
