"""Load generators that prove a switch drops nothing: wrk (keep-alive) and new-connection clients.

Used by ``bench/zero_downtime_switch.py`` and the edge/rollout tests. Both are
bounded in time; both target one URL with a ``Host`` header (a route of the
proxy). A failure is any socket error (a connection closed under a request
included) or a non-2xx response.

Example::

    with NewConnectionLoad("http://10.213.0.2:8080/", host="app.test") as load:
        ...  # switch
    assert load.result.failures == 0, load.result.errors[:3]
"""

from __future__ import annotations

import http.client
import re
import shutil
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

from stagecraft.errors import PrerequisiteMissing
from stagecraft.runtime.process import spawn

_WRK_SCRIPT = """
first, last = nil, nil
function response(status, headers, body)
  local b = string.gsub(body or "", "%s+$", "")
  if first == nil then first = b end
  last = b
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  for i, t in ipairs(threads) do
    io.write(string.format("body-first=%s\\nbody-last=%s\\n", t:get("first") or "",
                           t:get("last") or ""))
  end
end
"""


@dataclass(frozen=True)
class WrkResult:
    """wrk's counts: ``socket_errors`` sums connect, read, write and timeout errors."""

    requests: int
    socket_errors: int
    non_2xx: int
    first_bodies: tuple[str, ...]
    last_bodies: tuple[str, ...]
    output: str

    @property
    def failures(self) -> int:
        return self.socket_errors + self.non_2xx


def parse_wrk(output: str) -> WrkResult:
    """Counts from wrk's report (the lines it prints only when non-zero count as 0)."""
    requests = re.search(r"(\d+) requests in", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        requests=int(requests.group(1)) if requests else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        first_bodies=tuple(re.findall(r"^body-first=(.*)$", output, re.M)),
        last_bodies=tuple(re.findall(r"^body-last=(.*)$", output, re.M)),
        output=output,
    )


class WrkLoad:
    """``wrk`` running in the background for ``duration`` seconds; ``result`` after exit."""

    def __init__(
        self,
        url: str,
        *,
        host: str,
        duration: float = 12.0,
        connections: int = 20,
        threads: int = 2,
    ) -> None:
        if shutil.which("wrk") is None:
            raise PrerequisiteMissing("wrk is not installed", hint="apt-get install wrk")
        self.url, self.host, self.duration = url, host, duration
        self.connections, self.threads = connections, threads
        self._dir = tempfile.TemporaryDirectory(prefix="stagecraft-wrk-")
        self.result: WrkResult | None = None

    def __enter__(self) -> WrkLoad:
        script = Path(self._dir.name) / "track.lua"
        script.write_text(_WRK_SCRIPT)
        argv = ["wrk", f"-t{self.threads}", f"-c{self.connections}"]
        argv += [f"-d{max(1, round(self.duration))}s", "--timeout", "5s", "-s", str(script)]
        argv += ["-H", f"Host: {self.host}", self.url]
        self._proc = spawn(argv)
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        code = self._proc.wait(self.duration + 30)
        if code is None:
            self._proc.stop(grace=2.0)
        self.result = parse_wrk(self._proc.output())
        self._dir.cleanup()


@dataclass
class LoadResult:
    """What a python load client saw: bodies in order of arrival (``sequence``)."""

    requests: int = 0
    failures: int = 0
    errors: list[str] = field(default_factory=list)
    bodies: Counter[str] = field(default_factory=Counter)
    sequence: list[str] = field(default_factory=list)

    def moved(self, old: str, new: str) -> bool:
        """True when responses went from ``old`` to ``new`` (seen both, ``new`` last)."""
        return bool(self.sequence) and old in self.bodies and self.sequence[-1] == new


class NewConnectionLoad:
    """``workers`` threads sending requests, each on a new TCP connection, until stopped.

    Stops by itself after ``max_seconds`` or ``max_requests`` (bounded).
    """

    def __init__(
        self,
        url: str,
        *,
        host: str,
        workers: int = 4,
        max_seconds: float = 60.0,
        max_requests: int = 200_000,
        keep_alive: bool = False,
    ) -> None:
        parts = urlsplit(url)
        self.address = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.path = parts.path or "/"
        self.host, self.workers, self.keep_alive = host, workers, keep_alive
        self.max_seconds, self.max_requests = max_seconds, max_requests
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> NewConnectionLoad:
        self._deadline = time.monotonic() + self.max_seconds
        for _ in range(self.workers):
            thread = threading.Thread(target=self._work, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def _work(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            if conn is None or not self.keep_alive:
                conn = http.client.HTTPConnection(self.address, self.port, timeout=10)
            headers = {"Host": self.host}
            if not self.keep_alive:
                headers["Connection"] = "close"
            try:
                conn.request("GET", self.path, headers=headers)
                response = conn.getresponse()
                body = response.read().decode(errors="replace").strip()
                error = None if 200 <= response.status < 300 else f"HTTP {response.status}"
            except (OSError, http.client.HTTPException) as exc:
                body, error = "", f"{type(exc).__name__}: {exc}"
                conn.close()
                conn = None
            if conn is not None and not self.keep_alive:
                conn.close()
            if not self._record(body, error):
                return

    def _record(self, body: str, error: str | None) -> bool:
        with self._lock:
            result = self.result
            result.requests += 1
            if error is None:
                result.bodies[body] += 1
                result.sequence.append(body)
            else:
                result.failures += 1
                if len(result.errors) < 20:
                    result.errors.append(error)
            return result.requests < self.max_requests
