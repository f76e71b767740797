"""Running a :class:`~kvmops.plan.Transfer` (the executor calls :func:`run_transfer`): the
stream, then the decisive check: the sha256 of each end that ``verify`` names (the target read
back), computed on its own host through its runner (recorded in that host's command log),
compared with the stream's. A source that is the stream itself (``source_sum``: a snapshot
that cannot change) is not read again: its sha256 is the one computed in flight. The ``measure``
sums read data that cannot change either (the raw snapshot behind a compressed stream): they
run while the data streams, not after it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor

from kvmops.plan import Endpoint, Transfer
from kvmops.runners.base import Runner
from kvmops.runners.stream import Say, TransferFailed, stream
from kvmops.transfer.result import Transferred, parse_sha256


def _sums(ends: tuple[Endpoint, ...], runner_of: Callable[[str], Runner], say: Say) -> dict[str, str]:
    """The sha256 of each end, computed on its own host; the hosts work at the same time."""
    if not ends:
        return {}
    say("sha256 of " + "; ".join(e.display() for e in ends))
    with ThreadPoolExecutor(max_workers=len(ends), thread_name_prefix="kvmops-sha256") as pool:
        results = list(pool.map(lambda e: runner_of(e.host).run(e.cmd), ends))  # the first error is raised
    return {e.display(): parse_sha256(r.stdout, e.display()) for e, r in zip(ends, results, strict=True)}


def run_transfer(t: Transfer, runner_of: Callable[[str], Runner], say: Say) -> Transferred:
    """Stream (unless ``reuse`` finds the ends equal already), then check the ends."""
    source = (t.source_sum,) if t.source_sum is not None else ()
    if t.reuse and (t.verify or source):
        before = _sums(source + t.verify, runner_of, say)
        if len(set(before.values())) == 1 and (t.expect is None or t.expect in before.values()):
            digest = next(iter(before.values()))
            say(f"{t.key or 'transfer'}: both ends hold the same data already (sha256 {digest[:16]}...): "
                "nothing streamed")
            return Transferred(t.key, 0, digest, 0.0, before, _sums(t.measure, runner_of, say), skipped=True)
        say(f"{t.key or 'transfer'}: the ends differ: streaming again")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kvmops-measure") as pool:
        measuring = pool.submit(_sums, t.measure, runner_of, say)  # beside the stream: its data cannot change
        try:
            got = stream(runner_of(t.source.host), t.source.cmd, runner_of(t.target.host), t.target.cmd,
                         size=t.size, what=t.key or "transfer", progress=say)
        except BaseException:
            _drop(measuring, say)
            raise
        sums, measured = _sums(t.verify, runner_of, say), measuring.result()
    _check(t, got.sha256, sums)
    in_flight = tuple(e.display() for e in source)
    say(f"{t.key or 'transfer'}: sha256 {got.sha256} " + ("in flight and read back" if in_flight else "on both ends"))
    return Transferred(t.key, got.bytes, got.sha256, got.seconds, {**dict.fromkeys(in_flight, got.sha256), **sums},
                       measured, in_flight=in_flight)


def _drop(measuring: Future[dict[str, str]], say: Say) -> None:
    """The stream failed: its error is the one to tell. The measure still reads its data (a
    snapshot that the clean-up removes): it ends first; its result or error is dropped."""
    if not measuring.done():
        say("the stream failed: waiting for the sha256 read beside it to end before anything else")
    with contextlib.suppress(Exception):
        measuring.result()


def _check(t: Transfer, digest: str, sums: Mapping[str, str]) -> None:
    wrong = [f"{end.display()}: {sums[end.display()]}" for end in t.verify if sums[end.display()] != digest]
    if t.expect is not None and digest != t.expect:
        wrong.append(f"the expected sha256 (manifest): {t.expect}")
    if wrong:
        raise TransferFailed(f"{t.key or 'transfer'}: the data streamed has sha256 {digest}, but "
                             + "; ".join(wrong) + ". The copy is NOT good: nothing that depends on it was done")
