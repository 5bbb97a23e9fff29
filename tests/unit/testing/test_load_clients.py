"""The load clients against a local HTTP server: latencies recorded, wrk stopped early."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from stagecraft.testing.load import NewConnectionLoad, WrkLoad


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects
    served = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        with _Handler.lock:
            _Handler.served += 1
        status = 200 if self.path == "/" else 503
        body = f"v1 {self.headers['Host']}\n".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _eventually(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_new_connection_load_records_a_latency_per_answered_request(server: str) -> None:
    with NewConnectionLoad(server + "/", host="app.test", workers=2, max_requests=40) as load:
        assert _eventually(lambda: load.result.requests >= 40)
    result = load.result
    assert result.failures == 0, result.errors
    assert len(result.latencies) == result.requests
    assert set(result.bodies) == {"v1 app.test"}
    p50, p99 = result.percentile_ms(50), result.percentile_ms(99)
    assert p50 is not None and p99 is not None
    assert 0 < p50 <= p99 < 10_000


def test_non_2xx_answers_fail_but_still_have_a_latency(server: str) -> None:
    with NewConnectionLoad(server + "/down", host="app.test", workers=1, max_requests=5) as load:
        assert _eventually(lambda: load.result.requests >= 5)
    assert load.result.failures == load.result.requests == 5
    assert load.result.errors[0] == "HTTP 503"
    assert len(load.result.latencies) == 5


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_wrk_stopped_early_still_reports_counts_and_latency(server: str) -> None:
    before = _Handler.served
    started = time.monotonic()
    with WrkLoad(
        server + "/", host="app.test", duration=60, connections=2, threads=1, latency=True
    ) as wrk:
        assert _eventually(lambda: _Handler.served - before >= 50)
        wrk.stop()
    assert time.monotonic() - started < 30  # not the 60 s it was started for
    result = wrk.result
    assert result is not None
    # wrk counts the answers it read; the server may have served a few more in flight.
    assert 0 < result.requests <= _Handler.served - before, result.output
    assert result.failures == 0, result.output
    assert [p for p, _ in result.latency_ms] == [50.0, 75.0, 90.0, 99.0]
    p50, p99 = result.percentile_ms(50), result.percentile_ms(99)
    assert p50 is not None and p99 is not None and 0 < p50 <= p99
    assert result.first_bodies and all("v1" in b for b in result.first_bodies)


def test_niced_clients_run_below_this_process(server: str) -> None:
    """``nice``: the client threads (and wrk) yield the CPU to the deploy and the servers."""
    import os

    mine = os.getpriority(os.PRIO_PROCESS, 0)
    seen: list[int] = []
    original = _Handler.do_GET

    def record(handler: _Handler) -> None:  # runs in the server thread: read the clients'
        for thread in threading.enumerate():
            if thread.name.startswith("load-") and thread.native_id is not None:
                seen.append(os.getpriority(os.PRIO_PROCESS, thread.native_id))
        original(handler)

    _Handler.do_GET = record  # type: ignore[method-assign]
    try:
        with NewConnectionLoad(server + "/", host="a.test", workers=2, nice=5, max_requests=10):
            assert _eventually(lambda: len(seen) >= 2)
    finally:
        _Handler.do_GET = original  # type: ignore[method-assign]
    assert set(seen) == {min(mine + 5, 19)}
    if shutil.which("wrk") is not None:
        assert WrkLoad(server, host="a.test", nice=5).argv()[:3] == ["nice", "-n", "5"]
