"""Read a YAML file into plain data plus the line of every key and list item."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stagecraft.errors import ConfigIssue

Path_ = tuple[str | int, ...]
"""A key path into the data: mapping keys and list indices."""

_DUPLICATE = re.compile(r'found duplicate key "(?P<key>.*)" with value')

MAX_ALIAS_COPIES = 10_000
"""Lists and mappings that YAML aliases may copy into a document (a billion-laughs file: 10**8)."""
MAX_ALIAS_SIZE = 1_000_000
"""Nodes plus string characters that YAML aliases may add to a document."""
ALIAS_HINT = (
    "an alias (*name) repeats the whole value of its anchor (&name); "
    "write the values out or nest fewer aliases"
)


@dataclass
class Document:
    """Plain data (dicts, lists, str, int, float, bool, None) and where each node is."""

    file: str
    data: Any = None
    lines: dict[Path_, int] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)

    def line_of(self, path: Path_) -> int:
        """Line of the deepest node on ``path`` that exists (0 if none)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line:
                return line
        return 0

    def issue(self, path: Path_, message: str, hint: str | None = None) -> None:
        """Record a problem at ``path`` (located at its deepest existing node)."""
        self.issues.append(
            ConfigIssue(self.file, self.line_of(path), render_path(path), message, hint)
        )


def render_path(path: Path_) -> str:
    """``("environments", "staging", "hosts", "web-1", "roles", 0)`` -> dotted, ``[0]`` for items.

    >>> render_path(("environments", "staging", "hosts", "web-1", "roles", 0))
    'environments.staging.hosts.web-1.roles[0]'
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def parse_document(text: str, file: str) -> Document:
    """Parse ``text`` (the contents of ``file``); YAML problems become issues, never exceptions."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    doc = Document(file)
    yaml = YAML(typ="rt", pure=True)
    try:
        node = yaml.load(text)
    except MarkedYAMLError as exc:
        doc.issues.append(_yaml_issue(exc, text, file))
        return doc
    except (YAMLError, ValueError, TypeError, RecursionError) as exc:
        doc.issues.append(ConfigIssue(file, 1, "", f"invalid YAML: {exc}"))
        return doc
    if node is None:
        doc.issues.append(
            ConfigIssue(file, 1, "", "the file is empty", "start with `project: <name>`")
        )
        return doc
    if not isinstance(node, dict):
        line = _node_line(node) or 1
        doc.issues.append(
            ConfigIssue(
                file, line, "", f"expected a mapping at the top level, got {describe(node)}"
            )
        )
        return doc
    doc.lines[()] = 1
    too_large = alias_expansion_issue(node, file)
    if too_large is not None:
        doc.issues.append(too_large)
        return doc
    doc.data = _convert(node, (), doc, 1, set())
    return doc


def check_yaml_aliases(path: Path, shown: str | None = None) -> ConfigIssue | None:
    """The issue if YAML aliases in the file at ``path`` expand beyond the limits (else None).

    For files that other tools parse (``docker compose config`` expands every
    alias without a limit). Unreadable or invalid YAML is left to that tool.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if "&" not in text or "*" not in text:  # no anchor or no alias: nothing to expand
        return None
    try:
        node = YAML(typ="rt", pure=True).load(text)
    except (YAMLError, ValueError, TypeError, RecursionError):
        return None
    return alias_expansion_issue(node, shown or display_path(path))


@dataclass
class _Expanded:
    """The size of one list or mapping once every alias inside it is copied out."""

    containers: int
    size: int
    aliased: bool


def alias_expansion_issue(node: Any, file: str) -> ConfigIssue | None:
    """An issue when aliases in loaded YAML ``node`` expand past the limits; None otherwise.

    Counts on the shared objects the loader builds for aliases (each list or
    mapping once), so a file that would expand to gigabytes costs no more than
    its own size. Located at the innermost value whose expansion is too large.
    """
    memo: dict[int, _Expanded] = {}
    distinct = _Expanded(0, 0, False)
    found: list[tuple[Any, Path_, _Expanded]] = []

    def too_large(expanded: _Expanded) -> bool:
        return expanded.containers > MAX_ALIAS_COPIES or expanded.size > MAX_ALIAS_SIZE

    def walk(value: Any, path: Path_) -> tuple[int, int, bool]:
        if not isinstance(value, dict | list):
            return 0, 1 + (len(value) if isinstance(value, str) else 0), False
        known = memo.get(id(value))
        if known is not None:  # a second reference: an alias
            return known.containers, known.size, True
        memo[id(value)] = _Expanded(0, 0, True)  # a recursive alias counts as nothing here
        own = _Expanded(1, 1, False)
        distinct.containers += 1
        distinct.size += 1
        children: list[tuple[Any, Path_]]
        if isinstance(value, dict):
            children = [(item, (*path, str(key))) for key, item in value.items()]
            keys = sum(len(key) for key in value if isinstance(key, str))
            own.size += keys
            distinct.size += keys
        else:
            children = [(item, (*path, index)) for index, item in enumerate(value)]
        for child, where in children:
            containers, size, aliased = walk(child, where)
            own.containers += containers
            own.size += size
            own.aliased = own.aliased or aliased
            if not isinstance(child, dict | list):
                distinct.size += size
        memo[id(value)] = own
        if own.aliased and not found and too_large(own):
            found.append((value, path, own))
        return own.containers, own.size, own.aliased

    try:
        total = _Expanded(*walk(node, ()))
    except RecursionError:
        return None  # nested too deeply to measure: the conversion reports it
    excess = _Expanded(total.containers - distinct.containers, total.size - distinct.size, True)
    if not too_large(excess):
        return None
    value, path, expanded = found[0] if found else (node, (), total)
    if expanded.containers > MAX_ALIAS_COPIES:
        what = f"{expanded.containers:,} lists and mappings (more than {MAX_ALIAS_COPIES:,})"
    else:
        what = f"{expanded.size:,} values and characters (more than {MAX_ALIAS_SIZE:,})"
    return ConfigIssue(
        file,
        _node_line(value) or 1,
        render_path(path),
        f"YAML aliases expand this value to {what}",
        ALIAS_HINT,
    )


def _yaml_issue(exc: Any, text: str, file: str) -> ConfigIssue:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 1
    tab_line = _tab_indented_line(text, line)
    if tab_line:
        return ConfigIssue(
            file, tab_line, "", "tab character in indentation", "YAML indents with spaces only"
        )
    problem = str(exc.problem or "syntax error")
    duplicate = _DUPLICATE.search(problem)
    if duplicate:
        first = exc.context_mark.line + 1 if exc.context_mark is not None else 0
        where = f" (the mapping starts on line {first})" if first else ""
        return ConfigIssue(file, line, "", f"duplicate key '{duplicate['key']}'{where}")
    context = ""
    if exc.context and exc.context_mark is not None and exc.context_mark.line + 1 != line:
        context = f" ({exc.context} started on line {exc.context_mark.line + 1})"
    elif exc.context:
        context = f" ({exc.context})"
    return ConfigIssue(file, line, "", f"invalid YAML: {problem}{context}")


def _tab_indented_line(text: str, upto: int) -> int:
    """First line up to ``upto`` whose indentation contains a tab (0 if none)."""
    for number, line in enumerate(text.splitlines()[:upto], start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent and line.strip():
            return number
    return 0


def _node_line(node: Any) -> int:
    lc = getattr(node, "lc", None)
    return int(lc.line) + 1 if lc is not None and lc.line is not None else 0


def _key_line(node: Any, key: Any, default: int) -> int:
    try:
        return int(node.lc.key(key)[0]) + 1
    except (AttributeError, KeyError, TypeError, IndexError):
        return default  # keys pulled in by a `<<` merge have no position of their own


def _item_line(node: Any, index: int, default: int) -> int:
    try:
        return int(node.lc.item(index)[0]) + 1
    except (AttributeError, KeyError, TypeError, IndexError):
        return default


def _convert(node: Any, path: Path_, doc: Document, line: int, stack: set[int]) -> Any:
    """Plain data for ``node``; records lines and reports unsupported values."""
    if isinstance(node, dict | list) and id(node) in stack:
        doc.issue(path, "recursive YAML alias")
        return None
    if isinstance(node, dict):
        stack.add(id(node))
        own = _node_line(node) or line
        result: dict[str, Any] = {}
        for key, value in node.items():
            key_line = _key_line(node, key, own)
            if not isinstance(key, str) or isinstance(key, bool):
                doc.lines.setdefault(path, own)
                doc.issues.append(
                    ConfigIssue(
                        doc.file,
                        key_line,
                        render_path(path),
                        f"keys must be strings, got {describe(_plain_scalar(key))}",
                        "quote the key",
                    )
                )
                continue
            name = str(key)
            doc.lines[(*path, name)] = key_line
            result[name] = _convert(value, (*path, name), doc, key_line, stack)
        stack.discard(id(node))
        return result
    if isinstance(node, list):
        stack.add(id(node))
        own = _node_line(node) or line
        items = []
        for index, value in enumerate(node):
            item_line = _item_line(node, index, own)
            doc.lines[(*path, index)] = item_line
            items.append(_convert(value, (*path, index), doc, item_line, stack))
        stack.discard(id(node))
        return items
    value = _plain_scalar(node)
    if value is _UNSUPPORTED:
        doc.issue(
            path,
            f"unsupported YAML value {_yaml_type(node)}",
            "use a string, number, boolean, list or mapping",
        )
        return None
    return value


def _yaml_type(node: Any) -> str:
    """How an unsupported node is named: its tag (``!ip``, ``!!set``, ``!!binary``)."""
    tag = getattr(getattr(node, "tag", None), "value", None)
    if isinstance(tag, str) and tag:
        return tag.replace("tag:yaml.org,2002:", "!!")
    if isinstance(node, bytes):
        return "!!binary"
    if isinstance(node, set | frozenset) or type(node).__name__ == "CommentedSet":
        return "!!set"
    return f"of type {type(node).__name__}"


_UNSUPPORTED = object()


def _plain_scalar(node: Any) -> Any:
    """ruamel's scalar subclasses -> plain Python scalars (``_UNSUPPORTED`` for others)."""
    from ruamel.yaml.scalarbool import ScalarBoolean

    if node is None or type(node) in (str, int, float, bool):
        return node
    if isinstance(node, ScalarBoolean):
        return bool(node)
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, dt.datetime | dt.date):
        return node.isoformat()
    return _UNSUPPORTED


def describe(value: Any) -> str:
    """How a value is named in messages: ``'abc'``, ``12``, ``true``, ``null``, ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return repr(shown)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def display_path(path: Path, cwd: Path | None = None) -> str:
    """``path`` relative to ``cwd`` when inside it (as users typed it), else absolute."""
    try:
        base = (cwd or Path.cwd()).resolve()
    except OSError:  # the working directory was removed
        return str(path)
    full = path if path.is_absolute() else base / path
    try:
        return str(full.resolve().relative_to(base))
    except (ValueError, OSError):
        return str(full)
