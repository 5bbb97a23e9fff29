"""CI providers: the ``ci`` provider kind (the workflow that tests and deploys on push).

``stagecraft ci init`` writes a CI workflow into the repository. The provider
renders it as text with :meth:`CIProvider.render_workflow`, a pure function of
the project name and its environments (:class:`CiEnvironment`: name and the
*names* of its secrets); :attr:`CIProvider.workflow_path` says where the file
goes. Secret values never enter the workflow: it refers to the CI system's own
secret store by name, and passes each secret to ``stagecraft deploy`` as an
environment variable of the same name (what the ``env`` secrets provider reads).

:func:`dump_yaml` writes the block-style YAML most CI systems read, from plain
dicts and lists, quoting every string that YAML could read as something else.

A third-party CI provider::

    class GitLabCI(CIProvider):
        \"\"\"GitLab CI/CD.\"\"\"

        id = "gitlab"

        class Config(ProviderConfig):
            branches: dict[str, str] = {}

        @property
        def workflow_path(self) -> str:
            return ".gitlab-ci.yml"

        def render_workflow(self, project, environments):
            jobs = {f"deploy-{e.name}": {"script": [f"stagecraft deploy --env {e.name}"]}
                    for e in environments}
            return dump_yaml({"stages": ["test", "deploy"], **jobs})

    # pyproject.toml:
    # [project.entry-points."stagecraft.providers.ci"]
    # gitlab = "stagecraft_gitlab:GitLabCI"
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from stagecraft.errors import ProviderError
from stagecraft.providers.base import Provider

_PLAIN = re.compile(r"^[A-Za-z_/.][A-Za-z0-9_ ./@+-]*$")
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}
_SHORT_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
_SECRET = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")


class CIError(ProviderError):
    """The workflow cannot be rendered (an unknown environment, a bad name)."""


@dataclass(frozen=True)
class CiEnvironment:
    """An environment the workflow deploys, with the names of the secrets it needs."""

    name: str
    secrets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _ENV.fullmatch(self.name):
            raise CIError(f"environment name {self.name!r} cannot be used in a CI job name")
        bad = [s for s in self.secrets if not _SECRET.fullmatch(s)]
        if bad:
            raise CIError(f"environment {self.name}: invalid secret name(s) {', '.join(bad)}")


class CIProvider(Provider, ABC):
    """Base class of CI providers (provider kind ``ci``)."""

    kind: ClassVar[str] = "ci"

    @property
    @abstractmethod
    def workflow_path(self) -> str:
        """Where the workflow file goes, relative to the repository root."""

    @abstractmethod
    def render_workflow(self, project: str, environments: Sequence[CiEnvironment]) -> str:
        """The workflow file's text."""


def dump_yaml(data: Mapping[str, Any]) -> str:
    """Block-style YAML for ``data`` (dicts, lists, str, int, bool, None), keys in order.

    >>> print(dump_yaml({"on": {"push": {"branches": ["main"]}}, "run": "a\\nb\\n"}), end="")
    "on":
      push:
        branches:
          - main
    run: |
      a
      b
    """
    return "\n".join(_mapping(data, 0)) + "\n"


def _mapping(data: Mapping[str, Any], indent: int) -> list[str]:
    pad = "  " * indent
    lines: list[str] = []
    for key, value in data.items():
        head = f"{pad}{_scalar(str(key))}:"
        if isinstance(value, str) and _literal_ok(value):
            lines.append(f"{head} |")
            lines += _literal(value, indent + 1)
        elif isinstance(value, Mapping) and value:
            lines.append(head)
            lines += _mapping(value, indent + 1)
        elif isinstance(value, list) and value:
            lines.append(head)
            lines += _sequence(value, indent + 1)
        else:
            lines.append(f"{head} {_inline(value)}")
    return lines


def _sequence(items: list[Any], indent: int) -> list[str]:
    pad = "  " * indent
    lines: list[str] = []
    for item in items:
        if isinstance(item, Mapping) and item:
            nested = _mapping(item, indent + 1)
            lines.append(f"{pad}- {nested[0].lstrip()}")
            lines += nested[1:]
        elif isinstance(item, str) and _literal_ok(item):
            lines.append(f"{pad}- |")
            lines += _literal(item, indent + 1)
        elif isinstance(item, list) and item:
            nested = _sequence(item, indent + 1)
            lines.append(f"{pad}- {nested[0].lstrip()}")
            lines += nested[1:]
        else:
            lines.append(f"{pad}- {_inline(item)}")
    return lines


def _literal_ok(text: str) -> bool:
    """Whether ``text`` reads back unchanged as a ``|`` block (else it is quoted)."""
    return (
        "\n" in text
        and text.endswith("\n")
        and not text.endswith("\n\n")
        and not text.startswith((" ", "\t", "\n"))
        and all(ch == "\n" or (ch.isprintable() and ch != "\ufeff") for ch in text)
        and not any(line.endswith((" ", "\t")) for line in text.split("\n"))
    )


def _literal(text: str, indent: int) -> list[str]:
    pad = "  " * indent
    return [f"{pad}{line}" if line else "" for line in text[:-1].split("\n")]


def _inline(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(str(value))


def _scalar(text: str) -> str:
    """``text`` plain when YAML reads it back as the same string, else double-quoted."""
    plain = (
        _PLAIN.fullmatch(text)
        and text.lower() not in _RESERVED
        and not re.match(r"\.(\d|inf|nan)", text.lower())
        and not text.endswith(" ")
        and " #" not in text
        and ": " not in text
    )
    return text if plain else _quoted(text)


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar: printable characters as they are, the rest escaped."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ch.isprintable() and ch != "\ufeff":
            out.append(ch)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)
