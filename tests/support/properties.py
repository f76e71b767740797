"""How many cases the property tests run: one switch for all of them.

``KVMOPS_PROPERTY_PROFILE=ci`` (``.ci/run`` sets it) runs every safety property with at
least :data:`CI_CASES` cases, new random ones on every run; unset or ``dev``, each runs its own
small number of fixed (derandomized) cases, so that the unit tier stays quick and repeatable
for developers. A property passes its number through :func:`cases`; tests that
keep hypothesis' default settings follow the profile loaded by ``tests/conftest.py``
(:func:`load_profile`).

Each property also counts, within its own test, how often it reached the accepted path (an
operation that planned a change) and asserts a minimum share of its cases (:func:`least`), so
that it cannot pass on refusals only, and passes alone and in any order.
"""

from __future__ import annotations

import os

from hypothesis import Phase, settings

PROFILE_ENV = "KVMOPS_PROPERTY_PROFILE"
PROFILES = ("dev", "ci", "triage")
CI_CASES = 10_000


def profile() -> str:
    name = os.environ.get(PROFILE_ENV, "") or "dev"
    if name not in PROFILES:
        raise ValueError(f"{PROFILE_ENV}={name!r}: use one of {', '.join(PROFILES)}")
    return name


def cases(dev: int, ci: int = CI_CASES) -> int:
    """The number of cases of a property: ``dev`` for developers, ``ci`` (at least ``dev``) in
    CI. Safety properties (tests/unit/test_safety_properties.py and the bridge removal of
    test_properties_net.py) keep the default of 10,000; properties of input checks and
    rendering ask for fewer, to keep the CI run within minutes."""
    return max(dev, ci) if profile() == "ci" else dev  # triage: as dev


def least(share: float, n: int) -> int:
    """The accepted cases a property must have seen at least: ``share`` of its ``n`` cases."""
    return max(1, int(share * n))


def load_profile() -> None:
    """Register both hypothesis profiles and load the selected one.

    ``dev`` is derandomized: the same cases on every run (quick, and never flaky for whoever
    runs the unit tier); ``ci`` draws new random cases on every run and many more of them. No
    deadline in either: a shared machine's pauses are no failures.
    """
    settings.register_profile("dev", deadline=None, derandomize=True)
    settings.register_profile("ci", max_examples=CI_CASES, deadline=None, derandomize=False, database=None)
    # triage: the dev cases without shrinking a failure (a quick list of what fails)
    settings.register_profile("triage", deadline=None, derandomize=True,
                              phases=[Phase.explicit, Phase.reuse, Phase.generate])
    settings.load_profile(profile())
