"""Turn pydantic validation errors into located, human :class:`ConfigIssue` lines."""

from __future__ import annotations

import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from stagecraft.config.document import Document, Path_, describe
from stagecraft.suggest import closest, suggestion

_EXPECTED = {
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "mapping_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "iterable_type": "a list",
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}
_COMPARISONS = {
    "greater_than_equal": ("at least", "ge"),
    "greater_than": ("greater than", "gt"),
    "less_than_equal": ("at most", "le"),
    "less_than": ("less than", "lt"),
}


def report_validation_error(
    doc: Document,
    error: ValidationError,
    *,
    root: type[BaseModel],
    data: Any,
    base: Path_ = (),
) -> None:
    """Add one issue per error of ``error`` (raised validating ``data`` at ``base``) to ``doc``."""
    errors = error.errors(include_url=False)
    # A misspelt key is reported once: "unknown key 'hots' (did you mean 'hosts'?)",
    # not also as "hosts: required key missing".
    misspelt = set()
    for details in errors:
        if details["type"] == "extra_forbidden":
            loc = details["loc"]
            for match in closest(str(loc[-1]), _allowed_keys(root, loc[:-1])):
                misspelt.add((*loc[:-1], match))
    for details in errors:
        if details["type"] == "missing" and tuple(details["loc"]) in misspelt:
            continue
        path, missing = _data_path(data, details["loc"], details["type"])
        message, hint = _message(details, root, details["loc"])
        doc.issue((*base, *path, *missing), message, hint)


def _data_path(data: Any, loc: Sequence[str | int], kind: str) -> tuple[Path_, Path_]:
    """The part of ``loc`` that exists in ``data``, and the missing key (for ``missing``)."""
    node = data
    path: list[str | int] = []
    for index, part in enumerate(loc):
        if part == "[key]":
            break
        if _has(node, part):
            node = node[part]
            path.append(part)
        elif kind == "missing" and index == len(loc) - 1 and isinstance(node, dict):
            return tuple(path), (part,)
        # anything else is a tag pydantic adds (union member, validator name): skip it
    return tuple(path), ()


def _has(node: Any, part: str | int) -> bool:
    if isinstance(node, dict):
        return isinstance(part, str) and part in node
    return isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)


def _message(
    details: ErrorDetails, root: type[BaseModel], loc: Sequence[str | int]
) -> tuple[str, str | None]:
    kind = details["type"]
    value = details.get("input")
    ctx: dict[str, Any] = dict(details.get("ctx") or {})
    if kind == "missing":
        return "required key missing", None
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _allowed_keys(root, loc[:-1])
        near = suggestion(key, allowed)
        if near:
            return f"unknown key '{key}'{near}", None
        hint = f"known keys: {', '.join(allowed)}" if allowed else None
        return f"unknown key '{key}'", hint
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {describe(value)}", None
    if kind in ("literal_error", "enum"):
        options = [o.strip().strip("'") for o in _split_expected(str(ctx.get("expected", "")))]
        shown = ", ".join(f"'{o}'" for o in options)
        near = suggestion(str(value), options) if isinstance(value, str) else ""
        return f"expected one of {shown}, got {describe(value)}{near}", None
    if kind in _COMPARISONS:
        words, key = _COMPARISONS[kind]
        return f"must be {words} {ctx.get(key)}, got {describe(value)}", None
    if kind == "too_short":
        count = ctx.get("min_length", 1)
        noun = "entry" if isinstance(value, dict) else "item"
        return f"expected at least {count} {noun}{'s' if count != 1 else ''}", None
    if kind == "too_long":
        return f"expected at most {ctx.get('max_length')} items", None
    if kind == "string_too_short":
        return "must not be empty", None
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"]), None
    text = details["msg"]
    return (text[:1].lower() + text[1:]) if text else kind, None


def _split_expected(text: str) -> list[str]:
    """``"'a', 'b' or 'c'"`` -> ``["'a'", "'b'", "'c'"]``."""
    head, _, last = text.rpartition(" or ")
    parts = [p for p in head.split(",") if p.strip()] if head else []
    return [*parts, last] if last else parts


def _allowed_keys(root: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """Field names of the model found at ``loc`` below ``root`` (empty if not a model)."""
    model = _model_at(root, loc)
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_at(root: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                continue  # a tag pydantic put into the location
            current = field.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        elif get_origin(current) in (list, tuple):
            current = get_args(current)[0]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    """Strip ``Annotated`` and ``Optional``; for other unions, prefer a model member."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin is Union or origin is types.UnionType:
            members = [a for a in get_args(tp) if a is not type(None)]
            models = [a for a in members if isinstance(a, type) and issubclass(a, BaseModel)]
            tp = (models or members)[0]
        else:
            return tp
