"""The dev dashboard without Docker: the board's shaping and redaction, the app's checks,
and the supervisor's restart on request (real processes)."""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.testclient import TestClient

from stagecraft.dashboard.app import dev_app
from stagecraft.dashboard.devboard import DevBoard
from stagecraft.dashboard.security import Guard
from stagecraft.dev.model import EventKind, ProcessEvent, ProcessSpec, ProcessState, ProcessStatus
from stagecraft.dev.plan import DevError, DevOptions, build_plan
from stagecraft.dev.supervisor import Supervisor

URL = "https://stagecraft.shop.localhost:8443"
PASSWORD = "quickstart-dev-pw"
DSN = f"postgresql://app:{PASSWORD}@127.0.0.1:5432/shop"


class FakeSession:
    """What the board reads of a DevSession, with a crashed backend."""

    def __init__(self) -> None:
        route = SimpleNamespace(kind="backend", url="https://api.shop.localhost:8443")
        self.plan = SimpleNamespace(
            project="shop",
            domain="shop.localhost",
            https=True,
            options=DevOptions(https_port=8443, http_port=8080),
            routes=(route,),
            processes=(SimpleNamespace(name="backend"), SimpleNamespace(name="frontend")),
            infra=("postgres",),
            env={"DATABASE_URL": DSN},
        )
        self.restarted: list[str] = []
        self.migrated = 0

    def status(self) -> list[ProcessStatus]:
        return [
            ProcessStatus("proxy", ProcessState.READY, 10, 8443, 0, None, 0.2, 30.0),
            ProcessStatus("backend", ProcessState.CRASHED, None, 4000, 0, 1, 1.0, None),
            ProcessStatus("frontend", ProcessState.READY, 12, 5173, 1, None, 2.0, 3700.0),
        ]

    def last_lines(self, name: str, count: int = 20) -> tuple[str, ...]:
        return ("\x1b[31mError: <boom>\x1b[0m", f"connecting to {DSN}", f"pw was {PASSWORD}")

    def infra_states(self) -> dict[str, str]:
        return {"postgres": "running (healthy)"}

    def infra_addresses(self) -> dict[str, tuple[str, ...]]:
        return {"postgres": ("127.0.0.1:32771->5432",)}

    def migration_reports(self) -> list[Any]:
        migrations = (
            SimpleNamespace(version=1, name="0001_init.sql", state="applied"),
            SimpleNamespace(version=2, name="0002_notes.sql", state="pending"),
        )
        return [SimpleNamespace(database="main", migrations=migrations, pending=(1,), applied=(1,))]

    def restart(self, name: str, *, wait: bool = True) -> None:
        assert not wait  # the page answers at once; the events tell the rest
        self.restarted.append(name)

    def migrate(self) -> list[str]:
        self.migrated += 1
        return ["main: 0002_notes.sql"]


@pytest.fixture
def session() -> FakeSession:
    return FakeSession()


@pytest.fixture
def board(session: FakeSession) -> DevBoard:
    board = DevBoard()
    board.attach(session)  # type: ignore[arg-type]
    return board


@pytest.fixture
def client(board: DevBoard) -> Iterator[TestClient]:
    guard = Guard.for_public_url(URL, 9000)
    with TestClient(dev_app(board, guard), base_url=URL) as test_client:
        test_client.headers["x-csrf-token"] = guard.csrf
        yield test_client


def test_processes_show_state_uptime_restarts_urls_and_a_crash_with_its_last_lines(
    board: DevBoard,
) -> None:
    rows = {row["name"]: row for row in board.processes()}
    assert list(rows) == ["postgres", "proxy", "backend", "frontend"]
    assert rows["postgres"]["state"] == "ready" and "32771" in rows["postgres"]["port"]
    assert rows["proxy"]["url"] == "https://*.shop.localhost:8443"
    assert rows["frontend"]["uptime"] == "1h1m" and rows["frontend"]["restarts"] == 1
    backend = rows["backend"]
    assert backend["state"] == "crashed" and backend["detail"] == "exited with code 1"
    assert backend["url"] == "https://api.shop.localhost:8443" and backend["restartable"]
    assert backend["last_lines"][0] == '<span class="ansi-fg1">Error: &lt;boom&gt;</span>'
    assert PASSWORD not in str(backend["last_lines"])
    assert not rows["proxy"]["restartable"]


def test_lines_are_numbered_redacted_and_events_bump_the_state(board: DevBoard) -> None:
    before = board.state_seq
    board.output("backend", "stdout", f"db at {DSN}")
    board.event(ProcessEvent("backend", EventKind.CRASHED, "exited with code 1"))
    lines = board.lines_since(0)
    assert [(e.seq, e.name, e.stream) for e in lines] == [
        (1, "backend", "stdout"),
        (2, "backend", "event"),
    ]
    assert PASSWORD not in lines[0].text and "***" in lines[0].text
    assert board.state_seq == before + 1
    assert board.lines_since(1)[0].text == "[stagecraft] exited with code 1"
    assert board.wait_for_lines(2, 0.05) is False


def test_the_page_and_partials_render_without_secrets(client: TestClient, board: DevBoard) -> None:
    board.output("frontend", "stdout", f"\x1b[32mVITE ready\x1b[0m {PASSWORD}")
    page = client.get("/")
    assert page.status_code == 200
    for text in ("backend", "crashed", "0002_notes.sql", "pending", "Restart backend"):
        assert text in page.text
    state = client.get("/api/state").json()
    assert {p["name"]: p["state"] for p in state["processes"]}["frontend"] == "ready"
    bodies = page.text + client.get("/partials/services").text + str(state)
    assert PASSWORD not in bodies
    assert PASSWORD not in str([e.to_json() for e in board.lines_since(0)])


def test_actions_need_the_dashboards_origin_and_csrf_token(
    client: TestClient, session: FakeSession
) -> None:
    refused = [
        client.post("/actions/restart/backend"),  # no Origin
        client.post("/actions/restart/backend", headers={"origin": "https://evil.example"}),
        client.post("/actions/restart/backend", headers={"origin": URL, "x-csrf-token": "forged"}),
        client.post("/actions/migrate", headers={"origin": "https://app.shop.localhost:8443"}),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403, 403]
    assert session.restarted == [] and session.migrated == 0
    assert client.post("/actions/restart/backend", headers={"origin": URL}).status_code == 200
    migrated = client.post("/actions/migrate", headers={"origin": URL})
    assert migrated.status_code == 200 and "applied main: 0002_notes.sql" in migrated.text
    assert session.restarted == ["backend"] and session.migrated == 1


def test_the_event_stream_sends_lines_and_state_changes(
    client: TestClient, board: DevBoard
) -> None:
    board.output("backend", "stdout", "api listening")
    seen: list[str] = []
    with client.stream("GET", "/events") as response:
        for line in response.iter_lines():
            if line.startswith("event: "):
                seen.append(line)
            if len(seen) == 1 and line.startswith("data: "):  # then a process becomes ready
                board.event(ProcessEvent("backend", EventKind.READY, "ready after 0.4s"))
            if "event: state" in seen and seen.count("event: log") == 2:
                board.closed.set()
                break
    assert seen[0] == "event: log" and sorted(seen) == ["event: log", "event: log", "event: state"]


def test_the_dashboard_route_is_served_by_the_proxy_and_named_in_the_plan(
    tmp_path: Path,
) -> None:
    from tests.unit.dev.test_dev_session_plan import QUICKSTART, project

    loaded = project(tmp_path)
    plan = build_plan(loaded, DevOptions(https_port=8443, dashboard=True, dashboard_port=9123))
    assert plan.dashboard is not None
    assert plan.dashboard.url == "https://stagecraft.shop.localhost:8443"
    assert plan.dashboard.port == 9123 and plan.dashboard not in plan.routes
    assert "stagecraft.shop.localhost" in plan.hostnames  # in the certificate
    assert plan.proxy_routes[-1] is plan.dashboard
    assert plan.to_json()["dashboard"] == {
        "url": "https://stagecraft.shop.localhost:8443",
        "upstream": "127.0.0.1:9123",
    }
    assert build_plan(loaded, DevOptions()).dashboard is None
    taken = project(tmp_path, QUICKSTART.replace("mail:", "stagecraft:"))
    with pytest.raises(DevError, match="route stagecraft is taken by the dev dashboard"):
        build_plan(taken, DevOptions(dashboard=True))


def test_restart_on_request_gives_a_new_pid_and_counts_a_restart(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, signal, sys, time
            print(f"up {os.getpid()}", flush=True)
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            while True:
                time.sleep(0.1)
            """
        )
    )
    from stagecraft.providers.backend import Readiness

    spec = ProcessSpec(
        "api", (sys.executable, str(script)), readiness=Readiness(log_pattern="up"), stop_timeout=5
    )
    events: list[str] = []
    with Supervisor([spec], on_event=lambda e: events.append(str(e.kind))) as supervisor:
        supervisor.start()
        supervisor.wait_ready(10)
        first = supervisor.status()[0].pid
        supervisor.restart("api")
        deadline = time.monotonic() + 10
        while supervisor.status()[0].state != ProcessState.READY or (
            supervisor.status()[0].pid == first
        ):
            assert time.monotonic() < deadline, supervisor.status()
            time.sleep(0.05)
        status = supervisor.status()[0]
        assert status.pid not in (None, first) and status.restarts == 1
        assert status.uptime is not None and status.uptime < 10
        assert events[:2] == ["started", "ready"] and "restarting" in events
        assert events[-2:] == ["started", "ready"]
