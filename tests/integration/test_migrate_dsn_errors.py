"""docs/migrate.md's malformed-DSN example, run through the CLI: exit 2, one line, no traceback."""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from stagecraft.cli.main import run

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "migrate.md"
COMPOSE = "services:\n  postgres:\n    image: postgres:16-alpine\n"
CONFIG = """\
project: shop
databases:
  main:
    service: postgres
    url_env: DATABASE_URL
    migrations: {path: migrations}
"""


@pytest.fixture(autouse=True)
def _detach_cli_log_handler() -> Iterator[None]:
    yield
    logger = logging.getLogger("stagecraft")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


def test_documented_malformed_dsn_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    [block] = [b for b in re.findall(r"```console\n(.*?)```", DOC.read_text(), re.S) if "[::1" in b]
    command, expected = block.strip().splitlines()
    assignment, *argv = shlex.split(command.removeprefix("$ "))
    name, _, dsn = assignment.partition("=")
    assert argv[0] == "stagecraft" and name == "DATABASE_URL"
    (tmp_path / "stagecraft.yml").write_text(CONFIG)
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    (tmp_path / "migrations").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", dsn)
    for var in ("STAGECRAFT_ENV", "STAGECRAFT_CONFIG", "STAGECRAFT_DRY_RUN"):
        monkeypatch.delenv(var, raising=False)

    code = run(argv[1:])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.splitlines()[0] == expected
    assert err.splitlines()[1].startswith("hint: write it as postgresql://USER:PASSWORD@")
    assert "Traceback" not in err and ":pw@" not in err + out
