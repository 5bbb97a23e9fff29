"""Restart policy: when a crashed dev server is started again, and how soon."""

from __future__ import annotations

import pytest

from stagecraft.dev.restart import RestartPolicy

ON_FAILURE = RestartPolicy(mode="on-failure", max_restarts=3, backoff=1.0, max_backoff=3.0)


def test_no_policy_never_restarts() -> None:
    decision = RestartPolicy().decide(exit_code=1, restarts=0, uptime=1.0)
    assert (decision.restart, decision.reason) == (False, "restart policy is 'no'")


def test_clean_exit_is_not_a_failure() -> None:
    decision = ON_FAILURE.decide(exit_code=0, restarts=0, uptime=1.0)
    assert (decision.restart, decision.reason) == (False, "exited cleanly (code 0)")


@pytest.mark.parametrize("code", [1, 137, -9, None])
def test_failures_restart_with_exponential_backoff(code: int | None) -> None:
    delays = []
    restarts = 0
    for _ in range(3):
        decision = ON_FAILURE.decide(exit_code=code, restarts=restarts, uptime=2.0)
        assert decision.restart
        delays.append(decision.delay)
        restarts = decision.attempt
    assert delays == [1.0, 2.0, 3.0]  # capped at max_backoff
    assert restarts == 3


def test_gives_up_after_max_restarts() -> None:
    decision = ON_FAILURE.decide(exit_code=1, restarts=3, uptime=2.0)
    assert (decision.restart, decision.attempt) == (False, 3)
    assert decision.reason == "gave up after 3 restarts"
    one = RestartPolicy(mode="on-failure", max_restarts=1).decide(exit_code=1, restarts=1, uptime=0)
    assert one.reason == "gave up after 1 restart"


def test_a_long_healthy_run_forgives_earlier_restarts() -> None:
    decision = ON_FAILURE.decide(exit_code=1, restarts=3, uptime=ON_FAILURE.reset_after)
    assert (decision.restart, decision.attempt, decision.delay) == (True, 1, 1.0)
    assert decision.reason == "restart 1/3"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no", RestartPolicy(mode="no")),
        ("on-failure", RestartPolicy(mode="on-failure")),
        (" on-failure:5 ", RestartPolicy(mode="on-failure", max_restarts=5)),
        ("on-failure:0", RestartPolicy(mode="on-failure", max_restarts=0)),
    ],
)
def test_parse(text: str, expected: RestartPolicy) -> None:
    assert RestartPolicy.parse(text) == expected


@pytest.mark.parametrize("text", ["always", "no:3", "on-failure:x", "on-failure:-1", ""])
def test_parse_rejects_unknown_policies(text: str) -> None:
    with pytest.raises(ValueError, match="restart policy"):
        RestartPolicy.parse(text)


def test_constructor_validates() -> None:
    with pytest.raises(ValueError, match="unknown restart policy"):
        RestartPolicy(mode="always")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="negative"):
        RestartPolicy(mode="on-failure", max_restarts=-1)
