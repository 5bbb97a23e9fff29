"""`stagecraft build` builds the backend and frontend providers' images with a real Docker daemon.

Issue 5 item 2: ``build`` builds every image of the release, provider builds
included, tagged ``<project>/<service>:<version>``. Compose ``build:`` services
are shown by ``test_build_fleet.py``; these tests run the installed CLI on the
projects in ``build_providers/`` (copied into ``tmp_path`` under a unique
project name) and show the generic backend's Dockerfile build, the vite
frontend's builds (its default, the compose service's ``build:``, and a
configured Dockerfile with a target), and the encore-ts backend's
``encore build docker`` command (through a stand-in of the Encore CLI), plus
skip-on-rebuild, ``--dry-run`` and failures. Every image a test builds is
removed when it ends.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stagecraft.testing import images

FIXTURES = Path(__file__).parent / "build_providers"
STANDIN = FIXTURES / "encore_standin.py"
pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Project:
    """A fixture project copied into a temporary directory under a unique name."""

    root: Path
    name: str
    env: dict[str, str]
    encore_log: Path

    def stagecraft(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the installed ``stagecraft -c <root>/stagecraft.yml ARGS``."""
        return subprocess.run(
            ["stagecraft", "-c", str(self.root / "stagecraft.yml"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def image(self, service: str, version: str) -> str:
        """The release tag of ``service``."""
        return f"{self.name}/{service}:{version}"

    def encore_calls(self) -> list[dict[str, Any]]:
        """Every invocation of the ``encore`` stand-in so far."""
        if not self.encore_log.exists():
            return []
        return [json.loads(line) for line in self.encore_log.read_text().splitlines()]


@pytest.fixture(scope="module")
def base_image() -> str:
    """The local busybox image every fixture Dockerfile starts FROM (no registry here)."""
    return images.ensure_busybox_image()


@pytest.fixture
def make_project(tmp_path: Path, base_image: str) -> Iterator[Callable[[str], Project]]:
    """``make_project(fixture)``: a copy of ``build_providers/<fixture>``; images removed after."""
    made: list[str] = []
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    install_encore_standin(bin_dir / "encore")

    def make(fixture: str) -> Project:
        name = f"bp{uuid.uuid4().hex[:10]}"
        made.append(name)
        root = tmp_path / name
        shutil.copytree(FIXTURES / fixture, root)
        config = root / "stagecraft.yml"
        config.write_text(config.read_text().replace("project: shop", f"project: {name}", 1))
        env = {k: v for k, v in os.environ.items() if not k.startswith("STAGECRAFT_")}
        log = tmp_path / f"{name}-encore-calls.jsonl"
        env.update(
            PATH=os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), env["PATH"]]),
            BUSYBOX_IMAGE=base_image,
            ENCORE_STANDIN_LOG=str(log),
        )
        return Project(root, name, env, log)

    yield make
    for name in made:
        remove_project_images(name)


def install_encore_standin(path: Path) -> None:
    """Write the ``encore`` stand-in as an executable run by this interpreter."""
    source = STANDIN.read_text().split("\n", 1)[1]
    path.write_text(f"#!{sys.executable}\n{source}")
    path.chmod(0o755)


def remove_project_images(name: str) -> None:
    """Remove the images tagged ``<name>/...`` and containers a failed build left behind."""
    containers = docker("ps", "-a", "--no-trunc", "--format", "{{.ID}}\t{{.Command}}").stdout
    leftover = [line.split("\t")[0] for line in containers.splitlines() if name in line]
    if leftover:
        docker("rm", "-f", *leftover)
    tags = docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    ours = [tag for tag in tags if tag.startswith(f"{name}/")]
    if ours:
        docker("rmi", *ours)


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    """``docker ARGS``, output captured (never raises on a non-zero exit)."""
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=120, check=False
    )


def inspect(tag: str) -> dict[str, Any]:
    """``docker image inspect`` of ``tag`` (it must exist)."""
    result = docker("image", "inspect", tag)
    assert result.returncode == 0, f"{tag} was not built: {result.stderr}"
    data = json.loads(result.stdout)
    assert isinstance(data, list) and len(data) == 1
    image: dict[str, Any] = data[0]
    return image


def exists(tag: str) -> bool:
    """Whether the local daemon has ``tag``."""
    return docker("image", "inspect", tag).returncode == 0


def run_in(tag: str, script: str) -> str:
    """stdout of ``sh -c SCRIPT`` in a throwaway container of ``tag``."""
    result = docker("run", "--rm", "--entrypoint", "sh", tag, "-c", script)
    assert result.returncode == 0, result.stderr
    return result.stdout


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """stdout of a ``stagecraft`` run that must succeed."""
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The ``error:`` lines a failed run printed on stderr."""
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_generic_dockerfile_and_vite_compose_builds(
    make_project: Callable[[str], Project], base_image: str
) -> None:
    """Generic backend (DockerBuild) and vite frontend (its default: the compose build)."""
    shop = make_project("shop")
    api, web = shop.image("api", "v1"), shop.image("web", "v1")

    plan = json.loads(ok(shop.stagecraft("--json", "build", "--dry-run", "--version", "v1")))
    assert plan["dry_run"] is True
    assert [(i["service"], i["image"], i["source"], i["kind"]) for i in plan["images"]] == [
        ("api", api, "backend", "docker"),
        ("web", web, "frontend", "docker"),
    ]
    api_plan, web_plan = plan["images"]
    assert api_plan["context"] == str(shop.root / "api")
    assert api_plan["dockerfile"] == str(shop.root / "api" / "Dockerfile.prod")
    assert api_plan["args"] == {
        "BASE_IMAGE": base_image,
        "GREETING": "hello from the generic backend",
    }
    assert web_plan["context"] == str(shop.root / "web")
    assert web_plan["args"] == {"BUSYBOX_IMAGE": base_image}
    assert not exists(api) and not exists(web)

    out = ok(shop.stagecraft("build", "--version", "v1"))
    assert f"api: built {api} in " in out and f"web: built {web} in " in out
    api_image, web_image = inspect(api), inspect(web)
    assert api_image["Config"]["Labels"] == {
        "org.opencontainers.image.version": "v1",  # written from the STAGECRAFT_VERSION arg
        "stagecraft.project": shop.name,
        "stagecraft.version": "v1",
    }
    assert run_in(api, "cat /app/VERSION /app/GREETING").splitlines() == [
        "v1",
        "hello from the generic backend",
    ]
    assert web_image["Config"]["Labels"]["stagecraft.version"] == "v1"
    assert '<p id="version">web v1</p>' in run_in(web, "cat /www/index.html")

    again = ok(shop.stagecraft("build", "--version", "v1"))
    assert again.splitlines() == [f"api: skipped {api}", f"web: skipped {web}"]
    assert (inspect(api)["Id"], inspect(web)["Id"]) == (api_image["Id"], web_image["Id"])

    text = ok(shop.stagecraft("build", "--dry-run", "--version", "v2"))
    assert text.splitlines() == [
        "build plan for version v2:",
        f"  api: {shop.image('api', 'v2')} (backend: docker build {shop.root / 'api'})",
        f"  web: {shop.image('web', 'v2')} (frontend: docker build {shop.root / 'web'})",
    ]
    assert not exists(shop.image("api", "v2")) and not exists(shop.image("web", "v2"))


def test_encore_build_command_and_vite_dockerfile_target(
    make_project: Callable[[str], Project], base_image: str
) -> None:
    """encore-ts runs ``encore build docker`` (a stand-in for the documented interface of the
    Encore CLI, https://encore.dev/docs/ts/self-host/build, since the CLI cannot run here);
    vite builds the ``serve`` target of its own Dockerfile."""
    shop = make_project("encore")
    api, web = shop.image("api", "v1"), shop.image("web", "v1")
    encore_argv = [
        "build",
        "docker",
        f"--base={base_image}",
        "--config=infra.config.json",
        "--services=orders,payments",
        "--gateways=api-gateway",
        api,
    ]

    text = ok(shop.stagecraft("build", "--dry-run", "--version", "v1"))
    assert text.splitlines() == [
        "build plan for version v1:",
        f"  api: {api} (backend: encore {' '.join(encore_argv)})",
        f"  web: {web} (frontend: docker build {shop.root / 'web'})",
    ]
    assert shop.encore_calls() == [] and not exists(api) and not exists(web)

    out = ok(shop.stagecraft("build", "--version", "v1"))
    assert f"api: built {api} in " in out and f"web: built {web} in " in out
    called = {"argv": encore_argv, "cwd": str(shop.root / "backend"), "STAGECRAFT_VERSION": "v1"}
    assert shop.encore_calls() == [called]
    config = inspect(api)["Config"]
    assert "ENCORE_INFRA_CONFIG_PATH=/encore/infra.config.json" in config["Env"]
    manifest, listing = run_in(api, "cat /encore/build.json; echo ---; ls /workspace").split("---")
    assert json.loads(manifest) == {
        "image": api,
        "base": base_image,
        "services": ["orders", "payments"],
        "gateways": ["api-gateway"],
        "os": "linux",
        "arch": "amd64",
        "cgo": False,
        "telemetry_disabled": True,  # the provider sets DISABLE_ENCORE_TELEMETRY=1
    }
    assert listing.split() == [
        "encore.app",
        "infra.config.json",
        "orders",
        "package.json",
        "payments",
    ]
    labels = inspect(web)["Config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == "v1"
    assert labels["stagecraft.project"] == shop.name
    # `serve` target: the page carries the version, the later `debug` stage is not built.
    page = run_in(web, "cat /www/index.html; test ! -e /www/debug.html && echo no-debug")
    assert '<p id="version">web v1</p>' in page and page.endswith("no-debug\n")

    again = ok(shop.stagecraft("build", "--version", "v1"))
    assert again.splitlines() == [f"api: skipped {api}", f"web: skipped {web}"]
    assert len(shop.encore_calls()) == 1  # the existing tag is not rebuilt


def test_failing_dockerfile_build_exits_1_naming_the_service(
    make_project: Callable[[str], Project],
) -> None:
    """A provider's Dockerfile whose RUN fails: exit 1, one error line naming the service."""
    shop = make_project("shop")
    (shop.root / "api" / "Dockerfile.prod").write_text(
        "ARG BASE_IMAGE=busybox:1.36\n"
        "FROM ${BASE_IMAGE}\n"
        f'RUN echo "{shop.name}: 3 type errors" >&2; exit 7\n'
    )
    result = shop.stagecraft("build", "--version", "v1")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert error_lines(result) == [
        f"error: building {shop.image('api', 'v1')} for service api failed (exit 7): "
        f"The command '/bin/sh -c echo \"{shop.name}: 3 type errors\" >&2; exit 7' "
        "returned a non-zero code: 7"
    ]
    assert "hint: run `stagecraft build -v`" in result.stderr
    assert not exists(shop.image("api", "v1"))


def test_failing_encore_build_exits_1_naming_the_service(
    make_project: Callable[[str], Project],
) -> None:
    """``encore build docker`` outside an Encore app fails: exit 1, one line with the cause."""
    shop = make_project("encore")
    (shop.root / "backend" / "encore.app").unlink()
    result = shop.stagecraft("build", "--version", "v1")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert error_lines(result) == [
        f"error: building {shop.image('api', 'v1')} for service api failed (exit 1): "
        "error: no encore.app found in directory (or any of the parent directories)"
    ]
    assert len(shop.encore_calls()) == 1
    assert not exists(shop.image("api", "v1"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus", "shop/api:1"], "Error: unknown flag: --bogus"),
        (["-x", "shop/api:1"], "Error: unknown shorthand flag: 'x' in -x"),
        ([], "Error: accepts 1 arg(s), received 0"),
        (["shop/api:1", "extra"], "Error: accepts 1 arg(s), received 2"),
        (["shop/api:1", "--base"], "Error: flag needs an argument: --base"),
        (["--cgo=maybe", "shop/api:1"], 'Error: invalid argument "maybe" for "--cgo" flag'),
        (["--services=billing", "shop/api:1"], 'error: service "billing" not found in app'),
        (["--config=missing.json", "shop/api:1"], "error: read infra config"),
    ],
)
def test_encore_standin_rejects_what_the_cli_rejects(
    tmp_path: Path, args: list[str], message: str
) -> None:
    """The stand-in is strict like the real CLI, so the provider's arguments passing it count."""
    standin = tmp_path / "encore"
    install_encore_standin(standin)
    app = tmp_path / "app"
    shutil.copytree(FIXTURES / "encore" / "backend", app)
    result = subprocess.run(
        [str(standin), "build", "docker", *args],
        cwd=app,
        env={**os.environ, "ENCORE_STANDIN_LOG": ""},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[0].startswith(message), result.stderr
