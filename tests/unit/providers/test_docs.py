"""The provider reference docs run: docs/providers.md snippets, docstring examples, doctests."""

from __future__ import annotations

import doctest
import importlib
import io
import pkgutil
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

import stagecraft.providers
from stagecraft.providers import registry
from stagecraft.providers.base import KINDS

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "providers.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
# Modules owned by the migration feature are tested with it.
OTHERS = {"stagecraft.providers.migration", "stagecraft.providers.builtin.migration_raw"}


def _blocks(language: str) -> list[str]:
    return [m.group(2) for m in FENCE.finditer(DOC.read_text()) if m.group(1) == language]


def _load_yaml(text: str) -> Any:
    # Pure: YAML 1.2 like the config loader (libyaml rejects `[tag:server]` in flow style).
    return YAML(typ="safe", pure=True).load(io.StringIO(text))


def _selections(node: Any, parent: str | None = None) -> Iterator[tuple[str, str, Any]]:
    """Every ``{provider: id, ...}`` selection in a config document, as (kind, id, raw)."""
    if isinstance(node, dict):
        kind = "secrets" if parent == "secrets_provider" else parent
        if isinstance(node.get("provider"), str) and kind in KINDS:
            pid = node["provider"]
            if parent == "secrets_provider":
                raw = {k: v for k, v in node.items() if k != "provider"}
            else:
                raw = (node.get("providers") or {}).get(pid, {})
            yield kind, pid, raw
        for key, value in node.items():
            yield from _selections(value, str(key))
    elif isinstance(node, list):
        for item in node:
            yield from _selections(item, parent)


def test_python_examples_in_docs_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = _blocks("python")
    assert len(blocks) >= 8
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "providers_md"}
    for number, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"{DOC.name} python block {number}", "exec"), namespace)
        except Exception as exc:
            pytest.fail(f"python block {number} of {DOC.name} failed: {exc!r}\n{block}")


def test_yaml_examples_in_docs_validate() -> None:
    checked = []
    for block in _blocks("yaml"):
        for kind, pid, raw in _selections(_load_yaml(block)):
            registry(kind).create(pid, raw)
            checked.append((kind, pid))
    assert {k for k, _ in checked} >= {"backend", "frontend", "proxy", "network", "cloud", "ci"}
    assert ("secrets", "command") in checked


def test_toml_example_declares_the_entry_point() -> None:
    [block] = _blocks("toml")
    data = tomllib.loads(block)
    group = data["project"]["entry-points"]["stagecraft.providers.backend"]
    assert group == {"rails": "stagecraft_rails:RailsBackend"}


def test_doctor_example_is_marked_for_the_docs_runner() -> None:
    text = DOC.read_text()
    assert "<!-- doctest: cwd=examples/minimal -->\n```console\n$ stagecraft doctor\n```" in text


def _provider_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(stagecraft.providers.__path__, "stagecraft.providers."):
        if not any(info.name == o or info.name.startswith(o + ".") for o in OTHERS):
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("module", _provider_modules())
def test_doctests(module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    mod = importlib.import_module(module)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    out = io.StringIO()
    for test in finder.find(mod, module):
        runner.run(test, out=out.write)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, out.getvalue()


def _builtin_classes() -> list[tuple[str, str, type[Any]]]:
    found = []
    for kind in KINDS:
        if kind == "migration":
            continue
        for pid in registry(kind).ids():
            cls = registry(kind).get(pid)
            if cls.__module__.startswith("stagecraft.providers.builtin."):
                found.append((kind, pid, cls))
    return found


@pytest.mark.parametrize(
    ("kind", "pid", "cls"), _builtin_classes(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_docstring_config_examples_validate(kind: str, pid: str, cls: type[Any]) -> None:
    doc = cls.__doc__ or ""
    assert doc.splitlines()[0].strip(), "the first docstring line is the doctor summary"
    examples = re.findall(r"::\n\n((?:(?: {8}.*)?\n)+)", doc)
    selections = []
    for example in examples:
        text = "\n".join(line[8:] for line in example.splitlines())
        try:
            parsed = _load_yaml(text)
        except Exception:
            continue  # a non-YAML literal block (a JS snippet)
        if isinstance(parsed, dict) and "secrets_provider" in parsed:
            parsed = {"environments": {"x": parsed}}
        selections += [s for s in _selections(parsed) if s[:2] == (kind, pid)]
    assert selections, f"{kind}/{pid}: no stagecraft.yml example in the docstring"
    for _, _, raw in selections:
        cls.Config.model_validate(raw)


def test_docs_mention_every_builtin() -> None:
    text = DOC.read_text()
    for kind, pid, _ in _builtin_classes():
        assert f"`{pid}`" in text, f"{kind}/{pid} is not documented in {DOC.name}"
