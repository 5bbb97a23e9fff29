"""Run one function over many items (hosts, services) in parallel, with a bound.

The result is an aggregate (fabric's ``GroupResult``, docker-compose 1.x's
``parallel_execute``): every item gets an :class:`Outcome`, in input order,
whether it succeeded or failed, so one host's failure never hides the others'.

Example::

    result = fan_out(hosts, lambda h: h.docker("ps", "-q").stdout, name=lambda h: h.name,
                     parallel=4, on_done=lambda o: print(o.name, "ok" if o.ok else o.error))
    for outcome in result.succeeded:
        ...
    result.raise_for_failures()   # GroupError: "1 of 3 hosts failed: web-2: ..."

Ctrl-C: ``KeyboardInterrupt`` reaches the calling (main) thread while it waits.
``fan_out`` then (1) cancels every item that has not started (it never runs),
(2) cancels its :class:`~stagecraft.runtime.process.CancelScope`: each process
that a worker started through ``runtime.process.run`` (ssh, docker, ...) gets
SIGTERM on its process group, SIGKILL two seconds later, and that ``run`` call
raises :class:`~stagecraft.errors.Interrupted`; code that loops without running
processes can poll :func:`~stagecraft.runtime.process.stop_requested`;
(3) waits up to ``grace`` seconds for the in-flight workers to return, and
(4) re-raises ``KeyboardInterrupt``. A worker stuck in pure Python past the
grace period keeps running in its thread until it returns (Python cannot kill
threads). A second Ctrl-C during step 3 propagates at once.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from stagecraft import log
from stagecraft.errors import ExitCode, StagecraftError
from stagecraft.runtime.process import CancelScope, cancel_scope

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Outcome(Generic[R]):
    """What happened to one item: its value or its error, and how long it took."""

    name: str
    value: R | None
    error: BaseException | None
    duration: float

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class GroupResult(Generic[R]):
    """The outcomes of a :func:`fan_out`, in input order."""

    outcomes: tuple[Outcome[R], ...]

    @property
    def ok(self) -> bool:
        return all(outcome.ok for outcome in self.outcomes)

    @property
    def succeeded(self) -> tuple[Outcome[R], ...]:
        return tuple(outcome for outcome in self.outcomes if outcome.ok)

    @property
    def failed(self) -> tuple[Outcome[R], ...]:
        return tuple(outcome for outcome in self.outcomes if not outcome.ok)

    def __getitem__(self, name: str) -> Outcome[R]:
        """The outcome of the item called ``name``."""
        for outcome in self.outcomes:
            if outcome.name == name:
                return outcome
        raise KeyError(name)

    def raise_for_failures(self, what: str = "hosts") -> None:
        """Raise :class:`GroupError` when any item failed (``what`` names the items)."""
        if not self.ok:
            raise GroupError(self.failed, total=len(self.outcomes), what=what)


class GroupError(StagecraftError):
    """Some items of a fan-out failed; :meth:`lines` lists every failure.

    The exit code is the failures' common exit code when they agree (e.g. all
    hosts unreachable), else ``FAILED``.
    """

    def __init__(
        self, failures: Sequence[Outcome[Any]], *, total: int, what: str = "hosts"
    ) -> None:
        if not failures:
            raise ValueError("GroupError needs at least one failure")
        self.failures = tuple(failures)
        self.total = total
        self.errors = {f.name: f.error for f in self.failures if f.error is not None}
        details = [f"{f.name}: {describe(f.name, f.error)}" for f in self.failures]
        self.summary = f"{len(self.failures)} of {total} {what} failed"
        hints = list(dict.fromkeys(h for f in self.failures if (h := _hint(f.error))))
        super().__init__(f"{self.summary}: " + "; ".join(details), hint="; ".join(hints) or None)
        self.details = details
        codes = {_exit_code(f.error) for f in self.failures}
        self.exit_code = codes.pop() if len(codes) == 1 else ExitCode.FAILED

    def lines(self) -> list[str]:
        return [f"{self.summary}:", *(f"  {line}" for line in self.details)]


def describe(name: str, error: BaseException | None) -> str:
    """One line for ``error`` without repeating ``name`` (host errors already start with it)."""
    if error is None:
        return "ok"
    if isinstance(error, StagecraftError):
        text = error.message
    else:
        text = f"unexpected {type(error).__name__}: {error}"
    prefix = f"{name}: "
    return text[len(prefix) :] if text.startswith(prefix) else text


def fan_out(
    items: Sequence[T],
    fn: Callable[[T], R],
    *,
    name: Callable[[T], str],
    parallel: int = 8,
    on_done: Callable[[Outcome[R]], None] | None = None,
    grace: float = 10.0,
) -> GroupResult[R]:
    """Call ``fn(item)`` for every item, at most ``parallel`` at a time.

    Returns a :class:`GroupResult` with one :class:`Outcome` per item in input
    order; exceptions raised by ``fn`` are captured in their outcome, never
    raised here. ``on_done`` is called in the calling thread as each item
    finishes (for progress output). See the module docstring for Ctrl-C.
    """
    if parallel < 1:
        raise ValueError(f"parallel must be >= 1, got {parallel}")
    names = [name(item) for item in items]
    results: list[Outcome[R] | None] = [None] * len(items)
    if not items:
        return GroupResult(())
    with cancel_scope() as scope:
        executor = ThreadPoolExecutor(
            max_workers=min(parallel, len(items)), thread_name_prefix="stagecraft-fanout"
        )
        futures: dict[Future[Outcome[R]], int] = {}
        try:
            for index, item in enumerate(items):
                context = contextvars.copy_context()
                future = executor.submit(context.run, _attempt, fn, item, names[index])
                futures[future] = index
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=futures.__getitem__):
                    outcome = future.result()
                    results[futures[future]] = outcome
                    if on_done is not None:
                        on_done(outcome)
        except BaseException:
            _stop(executor, scope, futures, grace)
            raise
        executor.shutdown(wait=True)
    final = tuple(outcome for outcome in results if outcome is not None)
    for outcome in final:
        if isinstance(outcome.error, KeyboardInterrupt | SystemExit):
            raise outcome.error
    return GroupResult(final)


def _attempt(fn: Callable[[T], R], item: T, name: str) -> Outcome[R]:
    """Run one item and capture its value or error."""
    started = time.monotonic()
    try:
        value = fn(item)
    except BaseException as exc:
        duration = time.monotonic() - started
        if isinstance(exc, StagecraftError):
            log.event(logger, logging.DEBUG, f"failed: {exc.message}", host=name, phase="fanout")
        else:
            logger.error("%s: unexpected error", name, exc_info=exc, extra={"host": name})
        return Outcome(name=name, value=None, error=exc, duration=duration)
    return Outcome(name=name, value=value, error=None, duration=time.monotonic() - started)


def _stop(
    executor: ThreadPoolExecutor,
    scope: CancelScope,
    futures: dict[Future[Outcome[R]], int],
    grace: float,
) -> None:
    """Cancel what has not started, stop what runs, wait up to ``grace`` for it."""
    executor.shutdown(wait=False, cancel_futures=True)
    scope.cancel()
    running = [future for future in futures if not future.done()]
    if running:
        wait(running, timeout=grace)
    log.event(logger, logging.DEBUG, "fan-out interrupted", phase="fanout")


def _hint(error: BaseException | None) -> str | None:
    return error.hint if isinstance(error, StagecraftError) else None


def _exit_code(error: BaseException | None) -> ExitCode:
    if isinstance(error, StagecraftError):
        return error.exit_code
    return ExitCode.INTERNAL
