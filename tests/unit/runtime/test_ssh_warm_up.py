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

from stagecraft.runtime import ssh
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
    assert host.control_path() not in ssh._WARMING
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
    first = ssh._WARMING[host.control_path()]
    twin = _host(tmp_path, port)  # another object for the same target and options
    twin.warm_up()
    host.warm_up()
    assert ssh._WARMING[host.control_path()] is first
    _wait(lambda: accepted, "ssh to connect")
    host.cancel_warm_up()
    assert len(accepted) == 1


def test_stop_warm_ups_ends_every_connect_a_command_started(
    tmp_path: Path, silent_server: tuple[int, list[socket.socket]]
) -> None:
    port, accepted = silent_server
    for i in range(2):
        (tmp_path / str(i)).mkdir()
    hosts = [_host(tmp_path / str(i), port) for i in range(2)]
    for host in hosts:
        host.warm_up()
    _wait(lambda: len(accepted) == 2, "both connects")
    stopping = threading.Thread(target=ssh.stop_warm_ups)
    stopping.start()
    stopping.join(20)
    assert not stopping.is_alive(), "stop_warm_ups did not stop the connects"
    assert not ssh._WARMING
