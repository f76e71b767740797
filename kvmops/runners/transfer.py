"""Running a :class:`~kvmops.plan.Transfer` (the executor calls :func:`run_transfer`): the
stream, then the decisive check: ``sha256sum`` of each end, each computed on its own host
through its runner (recorded in that host's command log), compared with the stream's."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

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
    """Stream (unless ``reuse`` finds the ends equal already), then check both ends."""
    if t.reuse and t.verify:
        before = _sums(t.verify, runner_of, say)
        if len(set(before.values())) == 1 and (t.expect is None or t.expect in before.values()):
            digest = next(iter(before.values()))
            say(f"{t.key or 'transfer'}: both ends hold the same data already (sha256 {digest[:16]}...): "
                "nothing streamed")
            return Transferred(t.key, 0, digest, 0.0, before, _sums(t.measure, runner_of, say), skipped=True)
        say(f"{t.key or 'transfer'}: the ends differ: streaming again")
    got = stream(runner_of(t.source.host), t.source.cmd, runner_of(t.target.host), t.target.cmd,
                 size=t.size, what=t.key or "transfer", progress=say)
    sums = _sums(t.verify, runner_of, say)
    _check(t, got.sha256, sums)
    say(f"{t.key or 'transfer'}: sha256 {got.sha256} on both ends")
    return Transferred(t.key, got.bytes, got.sha256, got.seconds, sums, _sums(t.measure, runner_of, say))


def _check(t: Transfer, digest: str, sums: Mapping[str, str]) -> None:
    wrong = [f"{end.display()}: {sums[end.display()]}" for end in t.verify if sums[end.display()] != digest]
    if t.expect is not None and digest != t.expect:
        wrong.append(f"the expected sha256 (manifest): {t.expect}")
    if wrong:
        raise TransferFailed(f"{t.key or 'transfer'}: the data streamed has sha256 {digest}, but "
                             + "; ".join(wrong) + ". The copy is NOT good: nothing that depends on it was done")
