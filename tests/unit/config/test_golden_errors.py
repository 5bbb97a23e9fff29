"""Golden error messages: one directory per bad stagecraft.yml under ``cases/``.

Each ``cases/<name>/stagecraft.yml`` must fail to load with exactly the lines
of ``cases/<name>/expected.txt`` (``file:line: key.path: message (hint)``).
Variables are interpolated from an empty environment.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from config_fakes import fake_providers

from stagecraft.config.loader import load_config
from stagecraft.errors import ConfigError, ExitCode

CASES = sorted(p for p in (Path(__file__).parent / "cases").iterdir() if p.is_dir())


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 15


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_config_reports_expected_lines(case: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(case)
    expected = (case / "expected.txt").read_text(encoding="utf-8").splitlines()
    with fake_providers(), pytest.raises(ConfigError) as caught:
        load_config(Path("stagecraft.yml"), environ={})
    assert caught.value.lines() == expected
    assert caught.value.exit_code == ExitCode.USAGE
    # The first line is the error's one-line message; more issues are counted.
    assert caught.value.message.startswith(expected[0])
