"""``${VAR}`` interpolation in string values, with Compose's syntax.

Supported: ``${VAR}``, ``${VAR:-default}`` (unset or empty), ``${VAR-default}``
(unset), ``${VAR:?message}`` / ``${VAR?message}`` (required), ``$$`` for a
literal ``$``. Defaults may themselves contain references. A ``$`` followed by
anything else is kept as is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stagecraft.config.document import Path_

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", ":?", "-", "?")
_SYNTAX = "write ${NAME}, ${NAME:-default}, or $$ for a literal '$'"


class InterpolationError(ValueError):
    """A reference is malformed or names an unset variable without a default."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass
class Interpolated:
    """The data with references replaced, which variables fed each value, and the problems."""

    data: Any
    sources: dict[Path_, tuple[str, ...]] = field(default_factory=dict)
    errors: list[tuple[Path_, InterpolationError]] = field(default_factory=list)


def interpolate_tree(data: Any, environ: Mapping[str, str]) -> Interpolated:
    """Interpolate every string value (not keys) in ``data``."""
    result = Interpolated(None)
    result.data = _walk(data, (), environ, result)
    return result


def _walk(node: Any, path: Path_, environ: Mapping[str, str], out: Interpolated) -> Any:
    if isinstance(node, dict):
        return {key: _walk(value, (*path, key), environ, out) for key, value in node.items()}
    if isinstance(node, list):
        return [_walk(value, (*path, index), environ, out) for index, value in enumerate(node)]
    if isinstance(node, str) and "$" in node:
        used: list[str] = []
        try:
            value = interpolate(node, environ, used)
        except InterpolationError as exc:
            out.errors.append((path, exc))
            return node
        if used:
            out.sources[path] = tuple(dict.fromkeys(used))
        return value
    return node


def interpolate(
    text: str,
    environ: Mapping[str, str],
    used: list[str] | None = None,
    *,
    lenient: bool = False,
) -> str:
    """``text`` with references replaced; names looked up are appended to ``used``.

    ``lenient`` reads like Compose's own warnings-only mode: an unset variable
    without a default, required or not, becomes empty instead of an error
    (``init`` guessing from a compose file uses it; configs never do).

    >>> interpolate("db-${ENV:-dev}-$$1", {})
    'db-dev-$1'
    >>> interpolate("${REG}/api:${TAG:?tag}", {}, lenient=True)
    '/api:'
    """
    used = used if used is not None else []
    value, end = _scan(text, 0, environ, used, nested=False, live=True, lenient=lenient)
    assert end == len(text)
    return value


def _scan(
    text: str,
    pos: int,
    env: Mapping[str, str],
    used: list[str],
    *,
    nested: bool,
    live: bool,
    lenient: bool = False,
) -> tuple[str, int]:
    """Expand from ``pos`` to the end (or, when ``nested``, to the unmatched ``}``).

    With ``live`` false the text is only checked (an unused default is never evaluated).
    """
    out: list[str] = []
    while pos < len(text):
        char = text[pos]
        if nested and char == "}":
            return "".join(out), pos
        if char != "$":
            out.append(char)
            pos += 1
            continue
        following = text[pos + 1 : pos + 2]
        if following == "$":
            out.append("$")
            pos += 2
        elif following == "{":
            value, pos = _reference(text, pos + 2, env, used, live=live, lenient=lenient)
            out.append(value)
        else:
            out.append("$")
            pos += 1
    if nested:
        raise InterpolationError(
            f"unterminated variable reference in {text!r}", "close it with '}'"
        )
    return "".join(out), pos


def _reference(
    text: str, pos: int, env: Mapping[str, str], used: list[str], *, live: bool, lenient: bool
) -> tuple[str, int]:
    """Expand the reference whose name starts at ``pos`` (just after ``${``)."""
    match = _NAME.match(text, pos)
    if match is None:
        raise InterpolationError(f"invalid variable reference in {text!r}", _SYNTAX)
    name = match.group()
    pos = match.end()
    value = env.get(name)
    if live:
        used.append(name)
    if text.startswith("}", pos):
        if value is None and live and not lenient:
            raise InterpolationError(
                f"variable {name} is not set",
                f"export {name}, or give a default: ${{{name}:-value}}",
            )
        return value or "", pos + 1
    operator = next((op for op in _OPERATORS if text.startswith(op, pos)), None)
    if operator is None:
        if pos >= len(text):
            raise InterpolationError(
                f"unterminated variable reference in {text!r}", "close it with '}'"
            )
        raise InterpolationError(f"invalid variable reference in {text!r}", _SYNTAX)
    missing = value is None or (operator.startswith(":") and value == "")
    word, end = _scan(
        text, pos + len(operator), env, used, nested=True, live=live and missing, lenient=lenient
    )
    if operator in (":-", "-"):
        return (word if missing else value) or "", end + 1
    if missing and live and not lenient:
        detail = f": {word}" if word else ""
        raise InterpolationError(f"variable {name} is required{detail}", f"export {name}")
    return value or "", end + 1
