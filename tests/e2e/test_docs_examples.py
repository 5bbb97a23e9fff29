"""Every documented command example is run (typer's docs_src <-> tests idea).

Docs mark command examples as fenced ``console`` blocks whose lines start with
``$ ``. The HTML comment right before a block says how to run it:

* ``<!-- doctest: cwd=examples/minimal -->`` runs each command there and expects
  exit 0 (``<!-- doctest: cwd=... exit=2 -->`` for another code);
* ``<!-- doctest: tested-by tests/x/test_y.py::test_z -->`` names the test that
  runs the example (for ones that need sandbox hosts or a tty); this test
  checks that the named test exists.

A console block without a marker fails this test, so no example goes untested.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC_FILES = sorted([ROOT / "README.md", *ROOT.glob("docs/**/*.md")])
BLOCK = re.compile(
    r"(?:<!--\s*doctest:(?P<marker>[^>]*)-->\s*\n)?```console\n(?P<body>.*?)```", re.S
)


@dataclass(frozen=True)
class Example:
    doc: str
    line: int
    marker: str
    commands: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}"


def collect() -> list[Example]:
    examples = []
    for doc in DOC_FILES:
        text = doc.read_text()
        for match in BLOCK.finditer(text):
            commands = tuple(
                line[2:].strip() for line in match["body"].splitlines() if line.startswith("$ ")
            )
            if not commands:
                continue
            examples.append(
                Example(
                    str(doc.relative_to(ROOT)),
                    text.count("\n", 0, match.start("body")) + 1,
                    (match["marker"] or "").strip(),
                    commands,
                )
            )
    return examples


EXAMPLES = collect()


def stagecraft_bin() -> str:
    beside = Path(sys.executable).with_name("stagecraft")
    found = str(beside) if beside.exists() else shutil.which("stagecraft")
    assert found, "stagecraft is not installed"
    return found


def test_docs_have_examples() -> None:
    assert EXAMPLES, "no console examples found in README.md or docs/"


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_documented_example(example: Example, tmp_path: Path) -> None:
    marker = example.marker
    assert marker, f"{example}: console block has no <!-- doctest: ... --> marker"
    if marker.startswith("tested-by"):
        ref = marker.split(None, 1)[1].strip()
        path, _, name = ref.partition("::")
        test_file = ROOT / path
        assert test_file.exists(), f"{example}: {path} does not exist"
        assert re.search(rf"def {re.escape(name)}\b", test_file.read_text()), (
            f"{example}: {ref} not found"
        )
        return
    fields = dict(part.split("=", 1) for part in marker.split())
    assert "cwd" in fields, f"{example}: marker needs cwd=... or tested-by ..."
    source = ROOT / fields["cwd"]
    # Run in a copy so examples that write files never touch the repository.
    work = tmp_path / source.name
    shutil.copytree(source, work, ignore=shutil.ignore_patterns(".stagecraft"))
    expected = int(fields.get("exit", "0"))
    env = {**os.environ, "NO_COLOR": "1"}
    for command in example.commands:
        argv = shlex.split(command)
        if argv[0] == "stagecraft":
            argv[0] = stagecraft_bin()
        result = subprocess.run(
            argv, cwd=work, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == expected, (
            f"{example}: `{command}` exited {result.returncode}, expected {expected}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
