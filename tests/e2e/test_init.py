"""End to end: the installed ``stagecraft init`` on copies of the sample layouts.

Every generated file is checked by the real ``stagecraft config validate``
(which runs ``docker compose config``); the interactive mode is driven through
a pseudo-terminal; and every command shown in ``docs/init.md`` is run here and
its output compared with the documentation.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
LAYOUTS = REPO / "tests" / "fixtures" / "layouts"
DOC = REPO / "docs" / "init.md"
LAYOUT_NAMES = ("node-vite-postgres", "encore-app", "plain-compose")
IMAGE_VARS = ("POSTGRES_IMAGE", "MAILPIT_IMAGE", "REDIS_IMAGE", "API_IMAGE")
COMMAND_TIMEOUT = 60.0


def stagecraft_bin() -> Path:
    """The installed console script: next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "stagecraft"
    if beside.exists():
        return beside
    found = shutil.which("stagecraft")
    if found is None:
        pytest.fail("the stagecraft console script is not installed (pip install -e .)")
    return Path(found)


STAGECRAFT = str(stagecraft_bin())


def base_env(**overrides: str) -> dict[str, str]:
    """The test process environment without machine-specific image overrides or colour."""
    env = {k: v for k, v in os.environ.items() if k not in IMAGE_VARS}
    env.pop("STAGECRAFT_CONFIG", None)
    env["PATH"] = f"{Path(STAGECRAFT).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update({"NO_COLOR": "1", "COLUMNS": "200"}, **overrides)
    return env


def stagecraft(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed CLI with stdin not a terminal (so it never asks)."""
    return subprocess.run(
        [STAGECRAFT, *args],
        cwd=cwd,
        env=env or base_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def copy_layout(layout: str, tmp_path: Path, name: str | None = None) -> Path:
    root = tmp_path / (name or layout)
    shutil.copytree(LAYOUTS / layout, root)
    return root


# --- a small pseudo-terminal driver ------------------------------------------------------


@dataclass
class Terminal:
    """A command running on a pseudo-terminal: read what it shows, type answers."""

    proc: subprocess.Popen[bytes]
    master: int
    shown: bytes = b""
    position: int = 0

    @classmethod
    def start(cls, argv: list[str], cwd: Path, env: dict[str, str]) -> Terminal:
        master, slave = pty.openpty()
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
        os.close(slave)
        return cls(proc, master)

    def _read(self, timeout: float) -> bool:
        """Read what is available; False once the terminal is closed."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.shown += chunk
        return bool(chunk)

    def expect(self, text: str, timeout: float = COMMAND_TIMEOUT) -> None:
        """Wait until ``text`` appears after what was already matched."""
        wanted = text.encode()
        deadline = time.monotonic() + timeout
        while wanted not in self.shown[self.position :]:
            if time.monotonic() > deadline or not self._read(0.2):
                self.close()
                pytest.fail(f"never saw {text!r}; the terminal showed:\n{self.transcript()}")
        self.position = self.shown.index(wanted, self.position) + len(wanted)

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\n")

    def finish(self, timeout: float = COMMAND_TIMEOUT) -> int:
        """Read everything until the command exits; its exit code."""
        deadline = time.monotonic() + timeout
        while self._read(0.2):
            if time.monotonic() > deadline:
                self.close()
                pytest.fail(f"the command did not finish; it showed:\n{self.transcript()}")
        code = self.proc.wait(timeout=timeout)
        os.close(self.master)
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        os.close(self.master)

    def transcript(self) -> str:
        return self.shown.decode(errors="replace").replace("\r\n", "\n")


# --- the layouts -------------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_init_writes_a_valid_file_and_never_overwrites_it(layout: str, tmp_path: Path) -> None:
    root = copy_layout(layout, tmp_path)
    config = root / "stagecraft.yml"

    first = stagecraft("init", "--yes", cwd=root)
    assert first.returncode == 0, first.stderr
    assert "Wrote stagecraft.yml" in first.stdout
    original = config.read_bytes()

    validate = stagecraft("config", "validate", "-c", str(config), cwd=root)
    assert validate.returncode == 0, validate.stderr
    assert f"valid (project {layout}" in validate.stdout

    again = stagecraft("init", "--yes", cwd=root)
    assert again.returncode == 2
    assert "error: stagecraft.yml already exists; not overwriting it" in again.stderr
    assert "--force" in again.stderr
    assert config.read_bytes() == original

    config.write_text("project: hand-edited\n")
    forced = stagecraft("init", "--yes", "--force", cwd=root)
    assert forced.returncode == 0, forced.stderr
    assert config.read_bytes() == original


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_environment_example_validates_once_filled_in(layout: str, tmp_path: Path) -> None:
    root = copy_layout(layout, tmp_path)
    assert stagecraft("init", "--yes", "--quiet", cwd=root).returncode == 0
    lines = (root / "stagecraft.yml").read_text().splitlines()
    start = lines.index("# environments:")
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("#"))
    lines[start:end] = [re.sub(r"^# ?", "", line) for line in lines[start:end]]
    (root / "stagecraft.yml").write_text("\n".join(lines) + "\n")

    validate = stagecraft("config", "validate", "--env", "staging", cwd=root)
    assert validate.returncode == 0, validate.stderr
    assert "environments: staging" in validate.stdout


def test_interactive_mode_on_a_terminal(tmp_path: Path) -> None:
    root = copy_layout("node-vite-postgres", tmp_path, "shop")
    term = Terminal.start([STAGECRAFT, "init"], root, base_env())
    term.expect("Project name [shop]: ")
    term.type("Not Valid")
    term.expect("is not a valid project name")
    term.expect("Project name [shop]: ")
    term.type("boutique")
    term.expect("Use frontend vite in web/ (compose service web, port 5173)? [Y/n]: ")
    term.type("n")
    term.expect("Use backend generic, compose service api")
    term.type("")
    term.expect("Use database main: compose service postgres")
    term.type("y")
    term.expect("Start mailpit with `stagecraft dev`? [Y/n]: ")
    term.type("n")
    term.expect("Start postgres with `stagecraft dev`? [Y/n]: ")
    term.type("")
    assert term.finish() == 0, term.transcript()
    assert "Wrote stagecraft.yml" in term.transcript()

    text = (root / "stagecraft.yml").read_text()
    assert "\nproject: boutique\n" in text
    assert "\n# frontend:\n#   provider: vite\n" in text
    assert "  infra: [postgres]" in text
    assert "    mail:" not in text
    validate = stagecraft("config", "validate", cwd=root)
    assert validate.returncode == 0, validate.stderr
    assert "valid (project boutique" in validate.stdout


def test_without_docker_the_compose_file_is_read_as_yaml(tmp_path: Path) -> None:
    with_docker = copy_layout("node-vite-postgres", tmp_path, "with-docker")
    without = copy_layout("node-vite-postgres", tmp_path, "without-docker")
    assert stagecraft("init", "--yes", cwd=with_docker).returncode == 0
    empty = tmp_path / "no-tools"
    empty.mkdir()

    result = stagecraft("init", "--yes", cwd=without, env=base_env(PATH=str(empty)))
    assert result.returncode == 0, result.stderr
    assert "(compose.yaml, read with YAML read):" in result.stdout
    assert "note: docker compose is not available" in result.stdout

    def body(path: Path) -> str:
        return re.sub(r"with-docker|without-docker", "NAME", path.read_text())

    assert body(without / "stagecraft.yml") == body(with_docker / "stagecraft.yml")
    validate = stagecraft("config", "validate", cwd=without)
    assert validate.returncode == 0, validate.stderr


def test_a_broken_compose_file_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "broken"
    root.mkdir()
    (root / "compose.yaml").write_text("services:\n  api:\n    ports: 80\n")
    result = stagecraft("init", "--yes", cwd=root)
    assert result.returncode == 2
    assert result.stderr.startswith("error: compose.yaml: ")
    assert "hint: run `docker compose -f compose.yaml config`" in result.stderr
    assert not (root / "stagecraft.yml").exists()


# --- docs/init.md ------------------------------------------------------------------------

PROMPT = re.compile(r"^(?P<prompt>.*\]:)(?: (?P<answer>.*))?$")


@dataclass(frozen=True)
class Example:
    """One ``$ command`` of a console block and the output the doc shows for it."""

    line: int
    command: str
    expected: tuple[str, ...]


def doc_examples() -> list[Example]:
    """Every ``$ command`` in the doc's console blocks, in order."""
    examples: list[Example] = []
    in_console = False
    command: tuple[int, str] | None = None
    output: list[str] = []
    for number, line in enumerate(DOC.read_text().splitlines(), start=1):
        if line.startswith("```"):
            if in_console and command:
                examples.append(Example(command[0], command[1], tuple(output)))
            in_console, command, output = line.strip() == "```console", None, []
            continue
        if not in_console:
            continue
        if line.startswith("$ "):
            if command:
                examples.append(Example(command[0], command[1], tuple(output)))
            command, output = (number, line[2:]), []
        else:
            output.append(line)
    return examples


def matches(expected: tuple[str, ...], actual: list[str]) -> bool:
    """Line-by-line equality; ``...`` in an expected line stands for any text."""
    if len(expected) != len(actual):
        return False
    for want, got in zip(expected, actual, strict=True):
        pattern = ".*".join(re.escape(part) for part in want.rstrip().split("..."))
        if not re.fullmatch(pattern, got.rstrip()):
            return False
    return True


def run_example(example: Example, cwd: Path) -> list[str]:
    """Run one documented command (answering its prompts on a terminal); its output lines."""
    answers = [m for m in (PROMPT.match(line) for line in example.expected) if m]
    argv = ["bash", "-c", example.command]
    if not answers:
        result = subprocess.run(
            argv,
            cwd=cwd,
            env=base_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        return result.stdout.splitlines()
    term = Terminal.start(argv, cwd, base_env())
    for match in answers:
        term.expect(match["prompt"] + " ")
        term.type(match["answer"] or "")
    term.finish()
    return term.transcript().splitlines()


def test_every_command_in_the_doc_runs_as_shown(tmp_path: Path) -> None:
    examples = doc_examples()
    assert len(examples) >= 5, "docs/init.md lost its examples"
    root = copy_layout("node-vite-postgres", tmp_path, "shop")
    for example in examples:
        actual = run_example(example, root)
        assert matches(example.expected, actual), (
            f"docs/init.md:{example.line}: `{example.command}` printed:\n"
            + "\n".join(actual)
            + "\n\nbut the doc shows:\n"
            + "\n".join(example.expected)
        )
