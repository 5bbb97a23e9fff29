"""Load generators that prove a switch drops nothing: wrk (keep-alive) and new-connection clients.

Used by the benches under ``bench/`` and the edge/rollout tests. Both are
bounded in time; both target one URL with a ``Host`` header (a route of the
proxy). A failure is any socket error (a connection closed under a request
included) or a non-2xx response. Both can report latency percentiles: wrk's
``--latency`` distribution (``WrkLoad(..., latency=True)``), and the time of
every answered request of the Python client (``LoadResult.percentile_ms``).

Example::

    with NewConnectionLoad("http://10.213.0.2:8080/", host="app.test") as load:
        ...  # switch
    assert load.result.failures == 0, load.result.errors[:3]
    print(load.result.percentile_ms(99))

    with WrkLoad("http://10.213.0.2:8080/", host="app.test", duration=120, latency=True) as wrk:
        ...  # deploy
        wrk.stop()  # end now instead of after ``duration``: wrk still reports
    assert wrk.result is not None
    print(wrk.result.requests, wrk.result.failures, wrk.result.percentile_ms(99))
"""

from __future__ import annotations

import http.client
import math
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
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


# wrk prints durations with these units (its ``format_time_us``).
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_LATENCY_LINE = re.compile(r"^\s*(\d+(?:\.\d+)?)%\s+(\d+(?:\.\d+)?)(us|ms|s|m|h)\s*$", re.M)


@dataclass(frozen=True)
class WrkResult:
    """wrk's counts: ``socket_errors`` sums connect, read, write and timeout errors.

    ``latency_ms`` holds wrk's ``--latency`` distribution as ``(percent, ms)``
    pairs (50, 75, 90, 99), empty when wrk ran without ``--latency``.
    """

    requests: int
    socket_errors: int
    non_2xx: int
    first_bodies: tuple[str, ...]
    last_bodies: tuple[str, ...]
    output: str
    latency_ms: tuple[tuple[float, float], ...] = ()

    @property
    def failures(self) -> int:
        return self.socket_errors + self.non_2xx

    def percentile_ms(self, percent: float) -> float | None:
        """The latency at ``percent`` (one of those wrk printed) in ms, or None."""
        return next((ms for p, ms in self.latency_ms if math.isclose(p, percent)), None)


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
        latency_ms=parse_wrk_latency(output),
    )


def parse_wrk_latency(output: str) -> tuple[tuple[float, float], ...]:
    """The ``Latency Distribution`` block of ``wrk --latency`` as ``(percent, ms)`` pairs."""
    start = output.find("Latency Distribution")
    if start < 0:
        return ()
    block = output[start:].split("\n", 1)[-1]
    found = []
    for line in block.splitlines():
        match = _LATENCY_LINE.match(line)
        if match is None:
            break  # the block ends at the first other line ("N requests in ...")
        value, unit = float(match.group(2)), match.group(3)
        found.append((float(match.group(1)), value * _UNIT_MS[unit]))
    return tuple(found)


def percentile(values: Sequence[float], percent: float) -> float | None:
    """The nearest-rank ``percent`` percentile of ``values`` (None when empty)."""
    if not values:
        return None
    if not 0 < percent <= 100:
        raise ValueError(f"percentile must be in (0, 100], not {percent}")
    ordered = sorted(values)
    rank = math.ceil(percent / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


class WrkLoad:
    """``wrk`` running in the background for ``duration`` seconds; ``result`` after exit.

    ``latency=True`` adds ``--latency`` (percentiles in ``result.latency_ms``);
    :meth:`stop` ends the run early (wrk still prints its report). ``nice`` runs
    wrk at that niceness (clients that stand for other machines).
    """

    def __init__(
        self,
        url: str,
        *,
        host: str,
        duration: float = 12.0,
        connections: int = 20,
        threads: int = 2,
        latency: bool = False,
        nice: int = 0,
    ) -> None:
        if shutil.which("wrk") is None:
            raise PrerequisiteMissing("wrk is not installed", hint="apt-get install wrk")
        self.url, self.host, self.duration = url, host, duration
        self.connections, self.threads, self.latency = connections, threads, latency
        self.nice = nice
        self._dir = tempfile.TemporaryDirectory(prefix="stagecraft-wrk-")
        self.result: WrkResult | None = None

    def argv(self) -> list[str]:
        """The wrk command line (its Lua script in this load's temporary directory)."""
        script = Path(self._dir.name) / "track.lua"
        argv = ["nice", "-n", str(self.nice)] if self.nice else []
        argv += ["wrk", f"-t{self.threads}", f"-c{self.connections}"]
        argv += [f"-d{max(1, round(self.duration))}s", "--timeout", "5s", "-s", str(script)]
        if self.latency:
            argv.append("--latency")
        return [*argv, "-H", f"Host: {self.host}", self.url]

    def __enter__(self) -> WrkLoad:
        (Path(self._dir.name) / "track.lua").write_text(_WRK_SCRIPT)
        self._proc = spawn(self.argv())
        return self

    def stop(self) -> None:
        """End the run now: SIGINT makes wrk stop its clients and print its report."""
        if self._proc.alive():
            self._proc.proc.send_signal(signal.SIGINT)

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._proc.wait(self.duration + 30)
        # Also when wrk has exited: stop() joins the output reader, which may still be
        # reading the report wrk printed just before exiting (else it can come out empty).
        self._proc.stop(grace=2.0)
        self.result = parse_wrk(self._proc.output())
        self._dir.cleanup()


@dataclass
class LoadResult:
    """What a python load client saw: bodies in order of arrival (``sequence``).

    ``latencies`` holds the seconds each answered request took (connect to last
    body byte, any status; requests that failed with a socket error are not in it).
    """

    requests: int = 0
    failures: int = 0
    errors: list[str] = field(default_factory=list)
    bodies: Counter[str] = field(default_factory=Counter)
    sequence: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    def moved(self, old: str, new: str) -> bool:
        """True when responses went from ``old`` to ``new`` (seen both, ``new`` last)."""
        return bool(self.sequence) and old in self.bodies and self.sequence[-1] == new

    def percentile_ms(self, percent: float) -> float | None:
        """The nearest-rank latency percentile of the answered requests, in ms (None: none)."""
        found = percentile(self.latencies, percent)
        return None if found is None else found * 1000.0


class NewConnectionLoad:
    """``workers`` threads sending requests, each on a new TCP connection, until stopped.

    Stops by itself after ``max_seconds`` or ``max_requests`` (bounded). ``nice``
    sets the worker threads' niceness (Linux: per thread).
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
        nice: int = 0,
    ) -> None:
        parts = urlsplit(url)
        self.address = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.path = parts.path or "/"
        self.host, self.workers, self.keep_alive = host, workers, keep_alive
        self.nice = nice
        self.max_seconds, self.max_requests = max_seconds, max_requests
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> NewConnectionLoad:
        self._deadline = time.monotonic() + self.max_seconds
        for _ in range(self.workers):
            thread = threading.Thread(
                target=self._work, name=f"load-{len(self._threads)}", daemon=True
            )
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
        if self.nice:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + self.nice)
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            if conn is None or not self.keep_alive:
                conn = http.client.HTTPConnection(self.address, self.port, timeout=10)
            headers = {"Host": self.host}
            if not self.keep_alive:
                headers["Connection"] = "close"
            started = time.perf_counter()
            took: float | None = None
            try:
                conn.request("GET", self.path, headers=headers)
                response = conn.getresponse()
                body = response.read().decode(errors="replace").strip()
                took = time.perf_counter() - started
                error = None if 200 <= response.status < 300 else f"HTTP {response.status}"
            except (OSError, http.client.HTTPException) as exc:
                body, error = "", f"{type(exc).__name__}: {exc}"
                conn.close()
                conn = None
            if conn is not None and not self.keep_alive:
                conn.close()
            if not self._record(body, error, took):
                return

    def _record(self, body: str, error: str | None, took: float | None = None) -> bool:
        with self._lock:
            result = self.result
            result.requests += 1
            if took is not None:
                result.latencies.append(took)
            if error is None:
                result.bodies[body] += 1
                result.sequence.append(body)
            else:
                result.failures += 1
                if len(result.errors) < 20:
                    result.errors.append(error)
            return result.requests < self.max_requests
