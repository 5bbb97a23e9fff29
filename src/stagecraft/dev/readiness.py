"""Readiness probes for dev servers: an HTTP path on 127.0.0.1, or a log line pattern."""

from __future__ import annotations

import http.client
import re
from dataclasses import dataclass

from stagecraft.dev.logprefix import strip_ansi
from stagecraft.providers.backend import Readiness

PROBE_HOST = "127.0.0.1"


@dataclass(frozen=True)
class ProbeResult:
    """One HTTP probe: ready or not, and what was seen (for error messages)."""

    ready: bool
    detail: str


def probe_http(port: int, path: str, timeout: float = 1.0) -> ProbeResult:
    """GET ``http://127.0.0.1:<port><path>``: ready on a 2xx or 3xx answer (as Kubernetes)."""
    conn = http.client.HTTPConnection(PROBE_HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "stagecraft-dev-probe"})
        status = conn.getresponse().status
    except ConnectionRefusedError:
        return ProbeResult(False, "connection refused")
    except TimeoutError:
        return ProbeResult(False, f"no answer within {timeout:g}s")
    except (OSError, http.client.HTTPException) as exc:
        return ProbeResult(False, f"{type(exc).__name__}: {exc}".rstrip(": "))
    finally:
        conn.close()
    return ProbeResult(200 <= status < 400, f"HTTP {status}")


class LogMatcher:
    """Matches output lines (terminal colour codes removed) against a readiness pattern."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern)

    def matches(self, line: str) -> bool:
        return self.pattern.search(strip_ansi(line)) is not None


def describe(readiness: Readiness, port: int | None) -> str:
    """What readiness waits for, in words: ``http://127.0.0.1:4000/healthz`` or ``/pattern/``."""
    if readiness.http_path is not None:
        return f"http://{PROBE_HOST}:{port}{readiness.http_path}"
    if readiness.log_pattern is not None:
        return f"a line matching /{readiness.log_pattern}/"
    return "the process to start"
