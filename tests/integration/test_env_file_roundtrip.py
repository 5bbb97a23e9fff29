"""The 0600 env files reach the container byte for byte (issue 9 item 3).

A property test writes random values with :func:`env_file_text` and asks the
real ``docker compose config`` what it reads from the file; a second test
starts a real container from such a file and reads its environment from
``/proc/self/environ``. Compose's env-file parser interpolates ``$VAR`` in
double-quoted and unquoted values and single quotes cannot hold ``'``, which
is where the old writer corrupted values.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stagecraft.deploy.render import env_file_text
from stagecraft.testing import images

pytestmark = pytest.mark.integration

# Every character an environment variable can hold (no NUL), with the troublesome
# ones made likely: quotes, dollars, backslashes, newlines, braces, '#', spaces.
_VALUE = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("$'\"\\\n\r\t#{}=` ")),
        st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)),
    ),
    max_size=40,
)
_VALUES = st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True), _VALUE, max_size=8)
_COMPOSE = "services:\n  app:\n    image: busybox:1.36\n    env_file: [app.env]\n"
# Only what docker needs: no variable of the test run may leak into the model.
_ENV = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "DOCKER_HOST")}


def _read_back(directory: Path) -> dict[str, str]:
    """The environment Compose reads from ``app.env`` (its ``$$`` escaping undone)."""
    result = subprocess.run(
        ["docker", "compose", "--project-directory", str(directory), "config", "--format", "json"],
        cwd=directory,
        capture_output=True,
        text=True,
        env=_ENV,
        check=True,
    )
    found = json.loads(result.stdout)["services"]["app"].get("environment") or {}
    # `config` prints a model that can be read again: a literal `$` is written `$$`.
    return {k: (v or "").replace("$$", "$") for k, v in found.items()}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(values=_VALUES)
def test_compose_reads_back_every_value_exactly(tmp_path: Path, values: dict[str, str]) -> None:
    (tmp_path / "compose.yml").write_text(_COMPOSE)
    (tmp_path / "app.env").write_text(env_file_text(values))
    assert _read_back(tmp_path) == values


NASTY = {
    "DOLLAR": "p$HOME and ${HOME} and $$",
    "QUOTES": 'it\'s "quoted" `x`',
    "BACKSLASH": "C:\\path\\n\\\\",
    "NEWLINES": "line one\nline two\r\n",
    "TAB_HASH": "\ta # not a comment",
    "UNICODE": "pässwörd-€-𝄞",
    "EMPTY": "",
}


def test_a_real_container_gets_the_values_unchanged(tmp_path: Path) -> None:
    image = images.ensure_busybox_image()
    (tmp_path / "compose.yml").write_text(_COMPOSE.replace("busybox:1.36", image))
    (tmp_path / "app.env").write_text(env_file_text(NASTY))
    result = subprocess.run(
        [
            *("docker", "compose", "-p", f"envrt{os.getpid()}", "run", "--rm", "-T"),
            *("app", "cat", "/proc/self/environ"),
        ],
        cwd=tmp_path,
        capture_output=True,
        env=_ENV,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    pairs = [item.split("=", 1) for item in result.stdout.decode().split("\0") if "=" in item]
    seen = {k: v for k, v in pairs}
    for name, value in NASTY.items():
        assert seen.get(name) == value, name
