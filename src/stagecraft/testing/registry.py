"""A local image registry for tests: Debian's ``docker-registry`` with htpasswd auth.

Sandbox hosts cannot reach any public registry, so registry-mode shipping is
tested against this one. Two processes share one storage directory: one
listens on the sandbox bridge (what the hosts pull from; their daemons trust
the subnet as an insecure registry), one on 127.0.0.1 (what the local daemon
pushes to: ``localhost`` is always allowed over plain HTTP).

Example::

    with local_registry(sandbox.bridge_address, tmp_path) as registry:
        target = RegistryTarget(registry.host_address, username=registry.username,
                                password=SecretValue(registry.password, name="REGISTRY_PASSWORD"),
                                push_registry=registry.local_address)
"""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from stagecraft.errors import PrerequisiteMissing
from stagecraft.runtime import process


@dataclass(frozen=True)
class LocalRegistry:
    """Where the registry answers, and its one user's credentials."""

    host_address: str  # what sandbox hosts pull from (plain HTTP, trusted by their daemons)
    local_address: str  # what the local daemon pushes to
    username: str
    password: str


@contextlib.contextmanager
def local_registry(bridge_address: str, workdir: Path) -> Iterator[LocalRegistry]:
    """Run a registry on ``bridge_address`` and 127.0.0.1 (same port) until the block ends."""
    if process.which("docker-registry") is None:
        raise PrerequisiteMissing(
            "docker-registry is not installed", hint="run scripts/setup.sh (Debian docker-registry)"
        )
    password = uuid.uuid4().hex
    (workdir / "htpasswd").write_text(f"ci:{_bcrypt(password)}\n")
    port = _free_port(bridge_address)
    spawned: list[process.Spawned] = []
    try:
        for address in (bridge_address, "127.0.0.1"):
            config = workdir / f"registry-{address}.yml"
            config.write_text(
                "version: 0.1\n"
                f"storage: {{filesystem: {{rootdirectory: {workdir / 'storage'}}}}}\n"
                f"http: {{addr: '{address}:{port}'}}\n"
                f"auth: {{htpasswd: {{realm: test, path: {workdir / 'htpasswd'}}}}}\n"
            )
            spawned.append(
                process.spawn(
                    ["docker-registry", "serve", str(config)],
                    log_path=workdir / f"registry-{address}.log",
                )
            )
            _wait_listening(address, port)
        yield LocalRegistry(f"{bridge_address}:{port}", f"localhost:{port}", "ci", password)
    finally:
        for proc in spawned:
            proc.stop(grace=2)


def _bcrypt(password: str) -> str:
    """A bcrypt hash (the only scheme the registry's htpasswd accepts), without a new dependency."""
    with warnings.catch_warnings():  # crypt is deprecated (gone in 3.13); fine for tests on 3.11
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))


def _free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(address: str, port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)  # poll: the registry is starting
    raise PrerequisiteMissing(f"the test registry did not listen on {address}:{port}")
