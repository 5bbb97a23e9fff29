"""SSHHost.warm_up: the background connect, and stopping it when the caller gives up.

The "host" is a local TCP listener that accepts and never sends an SSH banner,
so the real ssh client sits in its handshake until it is stopped.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagecraft.runtime.ssh import SSHHost, SSHOptions, SSHTarget


@pytest.fixture
def silent_server() -> Iterator[tuple[int, list[socket.socket]]]:
    """A listener on 127.0.0.1 that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        server.close()
        for conn in accepted:
            conn.close()


def _host(tmp_path: Path, port: int) -> SSHHost:
    options = SSHOptions(
        known_hosts=tmp_path / "known_hosts", connect_timeout=120, control_dir=tmp_path / "cm"
    )
    return SSHHost(SSHTarget("h1", "127.0.0.1", "root", port), options)


def _wait(condition: object, what: str, timeout: float = 20.0) -> None:
    event = threading.Event()
    for _ in range(int(timeout / 0.05)):
        if callable(condition) and condition():
            return
        event.wait(0.05)
    raise AssertionError(f"gave up waiting: {what}")


def test_cancel_stops_a_connect_still_in_its_handshake(
    tmp_path: Path, silent_server: tuple[int, list[socket.socket]]
) -> None:
    port, accepted = silent_server
    host = _host(tmp_path, port)
    host.warm_up()
    _wait(lambda: accepted, "ssh to connect to the silent server")
    cancelling = threading.Thread(target=host.cancel_warm_up)
    cancelling.start()
    cancelling.join(20)  # a cancel that only waited would wait out the 120 s ConnectTimeout
    assert not cancelling.is_alive(), "cancel_warm_up did not stop the connect"
    assert host._warming is None
    conn = accepted[0]
    conn.settimeout(20)  # a live ssh would keep the connection open: recv times out
    while conn.recv(1024):  # ssh may have sent its banner; it must then hang up
        pass
    host.close()  # no master was created: nothing to stop, returns at once


def test_a_second_warm_up_and_a_cancel_without_one_do_nothing(
    tmp_path: Path, silent_server: tuple[int, list[socket.socket]]
) -> None:
    port, accepted = silent_server
    host = _host(tmp_path, port)
    host.cancel_warm_up()  # nothing under way
    host.warm_up()
    first = host._warming
    host.warm_up()
    assert host._warming is first
    _wait(lambda: accepted, "ssh to connect")
    host.cancel_warm_up()
    assert len(accepted) == 1
