"""When a crashed dev server is started again: the restart policy, as pure logic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RestartMode = Literal["no", "on-failure"]


@dataclass(frozen=True)
class RestartDecision:
    """What to do after a failure: restart (as attempt ``attempt``, after ``delay`` s) or not."""

    restart: bool
    attempt: int
    delay: float
    reason: str


@dataclass(frozen=True)
class RestartPolicy:
    """``no`` or ``on-failure`` with at most ``max_restarts`` restarts in a row.

    Applies to a process that was ready at least once and then failed (exited
    non-zero, was killed by a signal, or did not become ready again after a
    restart). A process that fails before it was ever ready is a start-up error
    and is not restarted: it usually needs a fix, not another try. Restarts
    back off exponentially from ``backoff`` seconds up to ``max_backoff``. A run
    that stayed up ``reset_after`` seconds forgives the earlier restarts, so a
    server that crashes once an hour is not given up on after a day.

    Example::

        policy = RestartPolicy.parse("on-failure:5")
        decision = policy.decide(exit_code=1, restarts=0, uptime=3.0)
        assert decision.restart and decision.attempt == 1
    """

    mode: RestartMode = "no"
    max_restarts: int = 3
    backoff: float = 1.0
    max_backoff: float = 15.0
    reset_after: float = 60.0

    def __post_init__(self) -> None:
        if self.mode not in ("no", "on-failure"):
            raise ValueError(f"unknown restart policy {self.mode!r} (expected no or on-failure)")
        if self.max_restarts < 0:
            raise ValueError("max_restarts must not be negative")
        if self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("restart backoff must not be negative")

    @classmethod
    def parse(cls, text: str) -> RestartPolicy:
        """``"no"``, ``"on-failure"`` or ``"on-failure:N"`` (as in compose's ``restart``)."""
        mode, _, count = text.strip().partition(":")
        if mode not in ("no", "on-failure"):
            raise ValueError(f"unknown restart policy {text!r} (expected no, on-failure[:N])")
        if mode == "no":
            if count:
                raise ValueError(f"restart policy {text!r}: 'no' takes no count")
            return cls(mode="no")
        if not count:
            return cls(mode="on-failure")
        if not count.isdigit():
            raise ValueError(f"restart policy {text!r}: the count must be a whole number")
        return cls(mode="on-failure", max_restarts=int(count))

    def decide(self, *, exit_code: int | None, restarts: int, uptime: float) -> RestartDecision:
        """Decide after a failure of a process that has been ready before.

        ``exit_code`` is the raw return code (negative: killed by that signal)
        or None when the process was up but did not become ready again;
        ``restarts`` how many restarts happened since the counter was last
        reset; ``uptime`` how long the failed run was up.
        """
        if self.mode == "no":
            return RestartDecision(False, restarts, 0.0, "restart policy is 'no'")
        if exit_code == 0:
            return RestartDecision(False, restarts, 0.0, "exited cleanly (code 0)")
        done = 0 if uptime >= self.reset_after else restarts
        if done >= self.max_restarts:
            return RestartDecision(
                False, done, 0.0, f"gave up after {done} restart{'s' if done != 1 else ''}"
            )
        delay = min(self.backoff * (2**done), self.max_backoff)
        return RestartDecision(True, done + 1, delay, f"restart {done + 1}/{self.max_restarts}")
