"""Who may talk to a dashboard: Host, token, Origin and CSRF checks (pure, then over ASGI)."""

from __future__ import annotations

import pytest

from stagecraft.dashboard.security import Guard, new_token

PORT = 8123
HOST = f"127.0.0.1:{PORT}"
ORIGIN = f"http://{HOST}"


@pytest.fixture
def guard() -> Guard:
    return Guard.for_loopback(PORT, token="t0ken-value")


def test_tokens_are_random_and_long() -> None:
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50 and all(len(t) >= 40 for t in tokens)


def test_a_read_needs_the_token_in_query_header_or_cookie(guard: Guard) -> None:
    host = {"host": HOST}
    assert guard.refusal("GET", host, "", None) is not None
    assert guard.refusal("GET", host, "token=wrong", None) is not None
    assert guard.refusal("GET", host, "token=t0ken-value", None) is None
    assert guard.refusal("GET", {**host, "x-stagecraft-token": "t0ken-value"}, "", None) is None
    assert guard.refusal("GET", host, "", "t0ken-value") is None
    assert guard.refusal("GET", host, "", "t0ken-valuE") is not None


def test_another_host_name_is_refused_even_with_the_token(guard: Guard) -> None:
    """A DNS-rebinding page reaches 127.0.0.1 under its own name: refused."""
    refusal = guard.refusal("GET", {"host": f"evil.example:{PORT}"}, "token=t0ken-value", None)
    assert refusal == "unexpected Host header"
    assert guard.refusal("GET", {"host": f"localhost:{PORT}"}, "token=t0ken-value", None) is None


@pytest.mark.parametrize(
    ("origin", "csrf", "refused"),
    [
        (ORIGIN, "right", False),
        (None, "right", True),  # no Origin: refused
        ("http://evil.example", "right", True),  # another site
        (f"http://127.0.0.1:{PORT + 1}", "right", True),  # another local port is another origin
        (ORIGIN, None, True),  # no CSRF token
        (ORIGIN, "wrong", True),
    ],
)
def test_an_action_needs_our_origin_and_the_csrf_token(
    guard: Guard, origin: str | None, csrf: str | None, refused: bool
) -> None:
    headers = {"host": HOST, "x-stagecraft-token": "t0ken-value"}
    if origin is not None:
        headers["origin"] = origin
    if csrf is not None:
        headers["x-csrf-token"] = guard.csrf if csrf == "right" else csrf
    assert (guard.refusal("POST", headers, "", None) is not None) is refused


def test_the_dev_dashboard_has_no_token_but_checks_host_and_origin() -> None:
    guard = Guard.for_public_url("https://stagecraft.shop.localhost:8443", 9000)
    assert guard.token is None
    ok = {"host": "stagecraft.shop.localhost:8443"}
    assert guard.refusal("GET", ok, "", None) is None
    assert guard.refusal("GET", {"host": "127.0.0.1:9000"}, "", None) is None
    assert guard.refusal("GET", {"host": "other.localhost"}, "", None) is not None
    post = {**ok, "origin": "https://stagecraft.shop.localhost:8443", "x-csrf-token": guard.csrf}
    assert guard.refusal("POST", post, "", None) is None
    assert guard.refusal("POST", {**post, "origin": "https://app.shop.localhost:8443"}, "", None)
