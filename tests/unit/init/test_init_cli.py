"""The ``stagecraft init`` command, run in-process through ``stagecraft.cli.main.run``."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from stagecraft.cli.main import run
from stagecraft.errors import ExitCode
from stagecraft.init import detect, render

CopyLayout = Callable[..., Path]


@pytest.fixture
def shop(copy_layout: CopyLayout, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the Node + Vite + postgres layout named ``shop``, as the working directory."""
    root = copy_layout("node-vite-postgres", "shop")
    monkeypatch.chdir(root)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    return root


def answer(monkeypatch: pytest.MonkeyPatch, *lines: str) -> None:
    """Pretend stdin is a terminal on which the user types ``lines``."""
    monkeypatch.setattr("stagecraft.cli.commands.init.stdin_is_interactive", lambda: True)
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(f"{line}\n" for line in lines)))


def test_yes_writes_the_detected_defaults(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["init", "--yes"]) == ExitCode.OK
    out = capsys.readouterr().out
    written = (shop / "stagecraft.yml").read_text()
    assert written == render(detect(shop).defaults())
    assert out.splitlines()[0] == ("Detected in . (compose.yaml, read with docker compose config):")
    assert "  dev routes        app -> frontend, api -> backend, mail -> mailpit:8025" in out
    assert "Wrote stagecraft.yml" in out
    assert "  stagecraft doctor                 check docker, compose, ssh and the providers" in out


def test_non_terminal_stdin_takes_the_defaults_without_asking(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["init"]) == ExitCode.OK
    assert "Project name" not in capsys.readouterr().out
    assert (shop / "stagecraft.yml").read_text() == render(detect(shop).defaults())


def test_an_existing_file_is_never_overwritten_without_force(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (shop / "stagecraft.yml").write_bytes(b"project: mine\n")
    assert run(["init", "--yes"]) == ExitCode.USAGE
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "error: stagecraft.yml already exists; not overwriting it",
        "hint: pass --force to replace it, or --config PATH to write somewhere else",
    ]
    assert captured.out == ""
    assert (shop / "stagecraft.yml").read_bytes() == b"project: mine\n"

    assert run(["init", "--yes", "--force"]) == ExitCode.OK
    assert (shop / "stagecraft.yml").read_text() == render(detect(shop).defaults())


def test_dry_run_prints_the_file_and_writes_nothing(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["init", "--dry-run"]) == ExitCode.OK
    captured = capsys.readouterr()
    assert captured.out == render(detect(shop).defaults())
    assert "Dry run: stagecraft.yml not written" in captured.err
    assert not (shop / "stagecraft.yml").exists()
    # An existing file does not stop a dry run, and stays as it was.
    (shop / "stagecraft.yml").write_text("project: mine\n")
    assert run(["--dry-run", "init"]) == ExitCode.OK
    assert (shop / "stagecraft.yml").read_text() == "project: mine\n"


def test_json_output(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["init", "--json"]) == ExitCode.OK
    data = json.loads(capsys.readouterr().out)
    assert data["config"] == str(shop.resolve() / "stagecraft.yml")
    assert data["written"] is True
    assert data["content"] == (shop / "stagecraft.yml").read_text()
    assert data["detection"]["backend"]["command"] == ["npm", "run", "dev"]
    assert data["detection"]["infra"] == ["mailpit", "postgres"]


def test_config_option_chooses_the_path_and_the_project_root(
    copy_layout: CopyLayout, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_layout("plain-compose", "site")
    monkeypatch.chdir(root.parent)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert run(["init", "-c", "site/stagecraft.yml"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert (root / "stagecraft.yml").read_text() == render(detect(root).defaults())
    assert "project: site\n" in (root / "stagecraft.yml").read_text()
    assert "Detected in site (compose.yml, read with docker compose config):" in out
    assert "  stagecraft config validate -c site/stagecraft.yml" in out


def test_interactive_answers(
    shop: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # project name (first rejected), frontend, backend, database, mailpit, postgres
    answer(monkeypatch, "My Shop", "myshop", "n", "", "y", "n", "y")
    assert run(["init"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "'My Shop' is not a valid project name" in out
    assert "Use frontend vite in web/ (compose service web, port 5173)? [Y/n]" in out
    assert "Start mailpit with `stagecraft dev`? [Y/n]" in out
    expected = detect(shop).choose(project="myshop", frontend=False, infra=("postgres",))
    assert (shop / "stagecraft.yml").read_text() == render(expected)
    assert "With your answers, dev routes: api -> backend\nWrote stagecraft.yml" in out


def test_yes_skips_the_questions_even_on_a_terminal(
    shop: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    answer(monkeypatch)
    assert run(["init", "--yes", "--project", "boutique"]) == ExitCode.OK
    assert "[Y/n]" not in capsys.readouterr().out
    expected = detect(shop).choose(project="boutique")
    assert (shop / "stagecraft.yml").read_text() == render(expected)


def test_interactive_dry_run_asks_on_stderr(
    shop: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    answer(monkeypatch, "", "y", "y", "n", "y", "y")
    assert run(["init", "--dry-run"]) == ExitCode.OK
    captured = capsys.readouterr()
    assert "Project name [shop]:" in captured.err
    assert captured.out == render(detect(shop).choose(database=False))


def test_invalid_project_option(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["init", "--yes", "--project", "Not Valid"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "error: --project 'Not Valid' is not a valid project name" in err
    assert not (shop / "stagecraft.yml").exists()


def test_no_compose_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(["init", "--yes"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.startswith(f"error: no compose file in {tmp_path.resolve()}")
    assert "hint: Stagecraft runs Docker Compose projects" in err
    assert not (tmp_path / "stagecraft.yml").exists()
