"""Run a dashboard's ASGI app with uvicorn on a loopback socket, in a background thread.

The socket is bound here (127.0.0.1 only; port 0 picks a free one), so the
port is known before the app is built (its Host and Origin checks name it) and
no other process can take it in between.

Example::

    sock = bind_loopback(0)
    server = Server(app, sock)
    server.start()          # DashboardError if uvicorn did not come up
    ...
    server.stop()
"""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING

from stagecraft.errors import StagecraftError

if TYPE_CHECKING:
    from stagecraft.dashboard.security import ASGIApp

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 10.0


class DashboardError(StagecraftError):
    """A dashboard could not be served (its port is taken, the server did not start)."""


def bind_loopback(port: int = 0) -> socket.socket:
    """A listening TCP socket on 127.0.0.1:``port`` (0: a free port); DashboardError if taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((LOOPBACK, port))
    except OSError as exc:
        sock.close()
        raise DashboardError(
            f"dashboard: cannot listen on {LOOPBACK}:{port} ({exc.strerror or exc})",
            hint="pass another --port, or leave it out to get a free one",
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class Server:
    """uvicorn serving ``app`` on ``sock`` in a daemon thread."""

    def __init__(self, app: ASGIApp, sock: socket.socket) -> None:
        import uvicorn

        self.sock = sock
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            server_header=False,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        """Serve in the background; return once uvicorn accepts connections."""
        self._thread = threading.Thread(target=self._run, name="dashboard-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                detail = f": {self._error}" if self._error else ""
                raise DashboardError(
                    f"dashboard: the web server did not start{detail}",
                    hint="run again with --log-level debug to see why",
                )
            time.sleep(0.02)

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self.sock])
        except BaseException as exc:  # reported by start() (this thread has no one to raise to)
            self._error = exc

    def stop(self) -> None:
        """Stop serving (open streams are closed after a 1 s grace) and close the socket."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sock.close()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stopped; False if ``timeout`` passed first."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()
