"""The environment dashboard without hosts: shaping, the bounded cache, the app's checks.

The board's sources are stand-ins returning the engine's own values
(:class:`EnvStatus`, :class:`History`, :class:`LockInfo`), so the shaping is the
real one; the app is driven with Starlette's TestClient.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from stagecraft import redact
from stagecraft.dashboard.app import env_app
from stagecraft.dashboard.envboard import EnvBoard, EnvSources, Progress
from stagecraft.dashboard.security import Guard
from stagecraft.deploy.state.ledger import History, LedgerRecord, ServiceRecord, merge
from stagecraft.deploy.state.lock import LockInfo
from stagecraft.errors import StagecraftError
from stagecraft.ops.logs import LogSink
from stagecraft.ops.status import EnvStatus, HostStatus, ServiceStatus

PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"
TOKEN = "test-token-0123456789"
SECRET = "canary-s3cret-value-42"  # a declared secret: it must appear in no response


def record(host: str, release: str, version: str, *, outcome: str = "success") -> LedgerRecord:
    return LedgerRecord(
        release=release,
        version=version,
        env="production",
        host=host,
        started_at=f"2026-01-0{release[-1]}T10:00:00+00:00",
        finished_at=f"2026-01-0{release[-1]}T10:00:30+00:00",
        by="alice@laptop",
        command="deploy",
        outcome=outcome,
        services={"web": ServiceRecord(f"shop/web:{version}", None, "abc", outcome)},
        peers={"web-1": outcome, "web-2": outcome},
    )


def history() -> History:
    records = [record(h, "r1", "v1") for h in ("web-1", "web-2")]
    records += [record("web-1", "r2", "v2"), record("web-2", "r2", "v2", outcome="failed")]
    records += [record(h, "r3", "v3") for h in ("web-1", "web-2")]
    return History(merge(records), {})


def status() -> EnvStatus:
    def web(release: str, version: str) -> ServiceStatus:
        return ServiceStatus("web", release, version, "healthy", 125.0, 1, 1)

    return EnvStatus(
        "shop",
        "production",
        (
            HostStatus("web-1", (web("r3", "v3"),)),
            HostStatus("web-2", (web("r3", "v3"),)),
            HostStatus("web-3", error=f"ssh: connection refused (password {SECRET})"),
        ),
    )


class Sources:
    """Counts reads, records rollbacks, streams a few log lines (one of them with the secret)."""

    def __init__(self) -> None:
        self.reads = 0
        self.rolled_back: list[str] = []
        self.stopped = threading.Event()
        self.read_delay = 0.0

    def read_status(self) -> EnvStatus:
        self.reads += 1
        time.sleep(self.read_delay)
        return status()

    def sources(self) -> EnvSources:
        return EnvSources(
            project="shop",
            env="production",
            services=("web",),
            read_status=self.read_status,
            read_history=history,
            read_lock=lambda: LockInfo(
                "shop",
                "production",
                "bob@ci",
                "web-1",
                42,
                "2026-01-04T00:00:00+00:00",
                "deploy",
                "v4",
                "r4",
                "lock-token-never-shown",
            ),
            rollback=self.rollback,
            follow=self.follow,
        )

    def rollback(self, release: str, say: Progress) -> str:
        say(f"[web-1 web] switched (DATABASE_URL=postgres://app:{SECRET}@db/shop)")
        self.rolled_back.append(release)
        return "r9"

    def follow(self, service: str, sink: LogSink) -> Callable[[], None]:
        sink("web-1/web", "stdout", "\x1b[32mGET / 200\x1b[0m <b>")
        sink("web-2/web", "stderr", f"connecting with token {SECRET}")
        return self.stopped.set


@pytest.fixture(autouse=True)
def declared_secret() -> None:
    redact.remember(SECRET, name="API_TOKEN")  # what the secrets provider does when resolving


@pytest.fixture
def fake() -> Sources:
    return Sources()


@pytest.fixture
def client(fake: Sources) -> Iterator[TestClient]:
    board = EnvBoard(fake.sources(), interval=60)
    app = env_app(
        board, Guard(frozenset({f"127.0.0.1:{PORT}"}), frozenset({BASE}), "csrf-1", TOKEN)
    )
    with TestClient(app, base_url=BASE) as test_client:
        yield test_client


def test_status_rows_carry_release_version_health_uptime_and_the_ledger_image(
    fake: Sources,
) -> None:
    snap = EnvBoard(fake.sources()).snapshot()
    web1 = snap.hosts[0]
    assert web1["host"] == "web-1" and web1["reachable"]
    row = web1["services"][0]
    assert (row["service"], row["release"], row["version"]) == ("web", "r3", "v3")
    assert (row["health"], row["uptime"], row["image"]) == ("healthy", "2m", "shop/web:v3")
    assert row["replicas"] == {"running": 1, "total": 1}
    assert snap.hosts[2]["reachable"] is False
    assert any(line.startswith("web-3: unreachable") for line in snap.errors)


def test_releases_are_newest_first_with_per_host_outcomes(fake: Sources) -> None:
    snap = EnvBoard(fake.sources()).snapshot()
    assert [(r["id"], r["version"], r["outcome"]) for r in snap.releases] == [
        ("r3", "v3", "success"),
        ("r2", "v2", "failed"),
        ("r1", "v1", "success"),
    ]
    r2 = snap.releases[1]
    assert {h["host"]: h["outcome"] for h in r2["hosts"]} == {"web-1": "success", "web-2": "failed"}
    assert [r["deployable"] for r in snap.releases] == [True, False, True]
    assert snap.current == "r3"
    assert snap.lock is not None and snap.lock["holder"] == "bob@ci"
    assert "token" not in snap.lock and "lock-token" not in json.dumps(snap.to_json())


def test_reads_are_cached_for_the_interval_and_one_at_a_time(fake: Sources) -> None:
    now = [100.0]
    board = EnvBoard(fake.sources(), interval=5, clock=lambda: now[0])
    board.snapshot()
    board.snapshot()
    now[0] += 4.9
    board.snapshot()
    assert fake.reads == 1
    now[0] += 0.2
    board.snapshot()
    assert fake.reads == 2
    fake.read_delay = 0.3
    now[0] += 10
    threads = [threading.Thread(target=board.snapshot) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fake.reads == 3  # five pages at once: one read


def test_a_source_error_is_shown_not_raised(fake: Sources) -> None:
    def broken() -> History:
        raise StagecraftError(f"ledger unreadable near {SECRET}")

    sources = fake.sources()
    board = EnvBoard(EnvSources(**{**sources.__dict__, "read_history": broken}))
    snap = board.snapshot()
    assert snap.releases == [] and snap.hosts
    assert any(line.startswith("releases: ledger unreadable") for line in snap.errors)
    assert SECRET not in json.dumps(snap.to_json())


def test_requests_without_the_token_are_refused(client: TestClient) -> None:
    for path in ("/", "/api/snapshot", "/partials/overview", "/static/htmx.min.js"):
        assert client.get(path).status_code == 403, path
    assert client.get("/?token=nope").status_code == 403
    page = client.get(f"/?token={TOKEN}")
    assert page.status_code == 200
    assert "stagecraft_token" in page.headers["set-cookie"]
    assert (
        "HttpOnly" in page.headers["set-cookie"] and "SameSite=strict" in page.headers["set-cookie"]
    )
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    # the cookie the page set now opens the rest (as the browser's next requests do)
    assert client.get("/static/htmx.min.js").status_code == 200
    assert client.get("/api/snapshot").status_code == 200


def test_a_request_under_another_host_name_is_refused(client: TestClient) -> None:
    response = client.get(f"/?token={TOKEN}", headers={"host": "attacker.example"})
    assert response.status_code == 403


def test_a_cross_origin_or_csrf_less_rollback_is_refused(client: TestClient, fake: Sources) -> None:
    form = {"release": "r1", "confirm": "r1"}
    auth = {"x-stagecraft-token": TOKEN}
    cases = [
        {**auth, "x-csrf-token": "csrf-1"},  # no Origin
        {**auth, "x-csrf-token": "csrf-1", "origin": "http://evil.example"},
        {**auth, "origin": BASE},  # no CSRF token
        {"x-csrf-token": "csrf-1", "origin": BASE},  # no access token
    ]
    for headers in cases:
        assert client.post("/actions/rollback", data=form, headers=headers).status_code == 403
    assert fake.rolled_back == []


def test_rollback_needs_a_confirmation_naming_the_release(
    client: TestClient, fake: Sources
) -> None:
    headers = {"x-stagecraft-token": TOKEN, "x-csrf-token": "csrf-1", "origin": BASE}
    bad = client.post("/actions/rollback", data={"release": "r1", "confirm": ""}, headers=headers)
    assert bad.status_code == 400 and fake.rolled_back == []
    failed = client.post(
        "/actions/rollback", data={"release": "r2", "confirm": "r2"}, headers=headers
    )
    assert failed.status_code == 409  # r2 failed: not a release to return to
    ok = client.post("/actions/rollback", data={"release": "r1", "confirm": "r1"}, headers=headers)
    assert ok.status_code == 200 and "rollback to r1" in ok.text
    deadline = time.monotonic() + 5
    while fake.rolled_back != ["r1"] or "succeeded" not in authed(client, "/partials/action").text:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    action = authed(client, "/api/snapshot").json()["action"]
    assert action["outcome"] == "succeeded" and action["result"] == "r9"


def test_no_response_holds_a_secret_value(client: TestClient, fake: Sources) -> None:
    headers = {"x-stagecraft-token": TOKEN, "x-csrf-token": "csrf-1", "origin": BASE}
    bodies = [client.get(f"/?token={TOKEN}").text]
    client.post("/actions/rollback", data={"release": "r1", "confirm": "r1"}, headers=headers)
    deadline = time.monotonic() + 5
    while "succeeded" not in authed(client, "/partials/action").text:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    for path in ("/partials/overview", "/partials/action", "/api/snapshot", "/"):
        bodies.append(authed(client, path).text)
    bodies.append(sse_lines(client, "/logs/stream?service=web", count=2))
    joined = "\n".join(bodies)
    assert "web-3" in joined and "switched" in joined and "connecting with token ***" in joined
    assert SECRET not in joined
    assert "&lt;b&gt;" in joined and '<span class=\\"ansi-fg2\\">GET / 200</span>' in joined


def test_served_on_loopback_and_a_closed_log_view_stops_following(fake: Sources) -> None:
    """Through uvicorn itself: the socket is 127.0.0.1 only; leaving the stream stops it."""
    import httpx

    from stagecraft.dashboard.serve import Server, bind_loopback

    sock = bind_loopback(0)
    port = sock.getsockname()[1]
    assert sock.getsockname()[0] == "127.0.0.1"
    board = EnvBoard(fake.sources(), interval=60)
    server = Server(env_app(board, Guard.for_loopback(port, TOKEN)), sock)
    server.start()
    try:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/api/snapshot").status_code == 403
        assert httpx.get(f"{base}/api/snapshot?token={TOKEN}").json()["env"] == "production"
        with httpx.stream("GET", f"{base}/logs/stream?service=web&token={TOKEN}") as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    break
        assert fake.stopped.wait(5)  # the page went away: the follower was stopped
    finally:
        server.stop()


def test_logs_of_an_unknown_service_are_refused(client: TestClient) -> None:
    response = client.get("/logs/stream?service=nope", headers={"x-stagecraft-token": TOKEN})
    assert response.status_code == 400 and "no service" in response.text


def authed(client: TestClient, path: str) -> Any:
    return client.get(path, headers={"x-stagecraft-token": TOKEN})


def sse_lines(client: TestClient, path: str, *, count: int) -> str:
    found: list[str] = []
    with client.stream("GET", path, headers={"x-stagecraft-token": TOKEN}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                found.append(line)
            if len(found) == count:
                break
    return "\n".join(found)
