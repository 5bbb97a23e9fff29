"""YAML aliases are bounded: a billion-laughs file is a config issue, not all the memory."""

from __future__ import annotations

import itertools
import json
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from stagecraft.compose.model import load_compose
from stagecraft.config.document import MAX_ALIAS_COPIES, parse_document
from stagecraft.errors import ConfigError

# The classic bomb: nine levels of nine aliases, 9**9 (387 million) strings once expanded.
LEVELS = "abcdefghi"
BOMB = "\n".join(
    [f"{LEVELS[0]}: &{LEVELS[0]} [{', '.join(['lol'] * 9)}]"]
    + [
        f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]"
        for previous, name in itertools.pairwise(LEVELS)
    ]
)

MEASURE = """
import json, sys, tracemalloc
from stagecraft.config.document import parse_document
text = open(sys.argv[1], encoding="utf-8").read()
tracemalloc.start()
doc = parse_document(text, "stagecraft.yml")
peak = tracemalloc.get_traced_memory()[1]
print(json.dumps({"issues": [issue.render() for issue in doc.issues], "peak": peak}))
"""


def _one_gibibyte() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def test_billion_laughs_is_a_located_config_issue_in_bounded_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "stagecraft.yml"
    bomb.write_text(f"project: shop\n{BOMB}\n", encoding="utf-8")
    assert len(BOMB) < 500
    # A child process with 1 GiB of address space: expanding the bomb dies there, not here.
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, str(bomb)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_one_gibibyte,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    measured = json.loads(result.stdout)
    assert measured["issues"] == [
        "stagecraft.yml:7: f: YAML aliases expand this value to 66,430 lists and mappings "
        f"(more than {MAX_ALIAS_COPIES:,}) (an alias (*name) repeats the whole value of its "
        "anchor (&name); write the values out or nest fewer aliases)"
    ]
    assert measured["peak"] < 4_000_000  # bytes: the file's own nodes, not their expansion


def test_aliases_within_the_limits_still_load(write_config: Callable[[str], Path]) -> None:
    text = (
        "project: shop\n"
        "x-host: &host {user: deploy, roles: [web]}\n"
        "x-many: &many [" + ", ".join(["*host"] * 50) + "]\n"
        "x-more: [" + ", ".join(["*many"] * 50) + "]\n"
    )
    doc = parse_document(text, "stagecraft.yml")
    assert doc.issues == []
    assert len(doc.data["x-more"]) == 50
    assert doc.data["x-more"][49][49] == {"user": "deploy", "roles": ["web"]}


def test_long_strings_repeated_by_aliases_count_towards_the_size() -> None:
    text = (
        f"project: shop\nx-a: &a ['{'x' * 1000}', '{'y' * 1000}']\n"
        "x-b: &b [" + ", ".join(["*a"] * 30) + "]\n"
        "x-c: [" + ", ".join(["*b"] * 30) + "]\n"
    )
    doc = parse_document(text, "stagecraft.yml")
    assert [(issue.line, issue.path) for issue in doc.issues] == [(4, "x-c")]
    assert doc.issues[0].message == (
        "YAML aliases expand this value to 1,802,731 values and characters (more than 1,000,000)"
    )


def test_a_compose_alias_bomb_is_refused_before_compose_expands_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compose = tmp_path / "compose.yml"
    services = "services:\n  web:\n    image: busybox\n    x-stagecraft: *i\n"
    compose.write_text(
        "\n".join(f"x-{line}" for line in BOMB.splitlines()) + "\n" + services, encoding="utf-8"
    )

    def no_compose(*args: object, **kwargs: object) -> None:
        raise AssertionError("docker compose config ran on an alias bomb (it has no limit)")

    monkeypatch.setattr("stagecraft.runtime.process.run", no_compose)
    with pytest.raises(ConfigError) as caught:
        load_compose([compose])
    issue = caught.value.issues[0]
    assert (issue.file.endswith("compose.yml"), issue.line, issue.path) == (True, 6, "x-f")
    assert "YAML aliases expand this value" in issue.message
