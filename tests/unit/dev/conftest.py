"""Fixtures for the dev engine tests: a private CA, a real TLS handshake."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from stagecraft.dev.certs import CA, ensure_ca

Handshake = Callable[[Path, Path, Path, str], None]


@pytest.fixture
def own_ca(tmp_path: Path) -> CA:
    """Stagecraft's own CA in a private data dir (never the user's real one)."""
    return ensure_ca(tmp_path / "data", use_mkcert=False)


@pytest.fixture
def tls_handshake() -> Handshake:
    """``handshake(cafile, cert, key, server_hostname)``: serve TLS on 127.0.0.1, connect, verify.

    Raises :class:`ssl.SSLCertVerificationError` when the client does not trust
    the server's certificate for ``server_hostname``. Verification is never
    turned off: the client context is ``ssl.create_default_context(cafile=...)``.
    """

    def handshake(cafile: Path, cert: Path, key: Path, server_hostname: str) -> None:
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(cert, key)
        client_ctx = ssl.create_default_context(cafile=str(cafile))
        assert client_ctx.verify_mode == ssl.CERT_REQUIRED and client_ctx.check_hostname
        with socket.create_server(("127.0.0.1", 0)) as listener:
            port = listener.getsockname()[1]
            errors: list[BaseException] = []

            def serve() -> None:
                conn, _ = listener.accept()
                try:
                    with server_ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.sendall(b"hello")
                except (ssl.SSLError, OSError) as exc:  # the client may reject us
                    errors.append(exc)

            server = threading.Thread(target=serve, daemon=True)
            server.start()
            try:
                with (
                    socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
                    client_ctx.wrap_socket(raw, server_hostname=server_hostname) as tls,
                ):
                    assert tls.recv(5) == b"hello"
            finally:
                server.join(timeout=5)

    return handshake
