"""The ``dotenv`` secrets provider, and the dotenv parser Stagecraft uses everywhere."""

from __future__ import annotations

import logging
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from stagecraft import log
from stagecraft.providers.base import ProviderConfig
from stagecraft.providers.secrets import SecretsContext, SecretsError, SecretsProvider

logger = logging.getLogger(__name__)

_ENTRY = re.compile(r"[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*=[ \t]*")
_INLINE_COMMENT = re.compile(r"[ \t]+#.*$")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$"}


class DotenvSyntaxError(ValueError):
    """A dotenv text is malformed at ``line``; the message never quotes a value."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.reason = message


def parse_dotenv(text: str) -> dict[str, str]:
    r"""Parse dotenv text into ``{KEY: value}``; a later key overrides an earlier one.

    Blank lines and ``#`` comment lines are skipped, a leading ``export `` is
    ignored. Values are literal (``$VAR`` is not expanded). Unquoted values end
    at the line's end or at a ``#`` preceded by whitespace, and are trimmed.
    Single-quoted values are taken as they are; double-quoted values understand
    ``\n \r \t \" \\ \$``. Both quoted forms may span several lines.

    >>> parse_dotenv('export A=1\nB = "two\\nlines" # note\nC=\'$HOME\'\n')
    {'A': '1', 'B': 'two\nlines', 'C': '$HOME'}
    """
    text = text.replace("\r\n", "\n")
    values: dict[str, str] = {}
    pos, line, end = 0, 1, len(text)
    while pos < end:
        eol = _line_end(text, pos)
        body = text[pos:eol].strip()
        if not body or body.startswith("#"):
            pos, line = eol + 1, line + 1
            continue
        match = _ENTRY.match(text, pos, eol)
        if match is None:
            raise DotenvSyntaxError(line, "expected KEY=VALUE")
        key, vpos = match.group(1), match.end()
        if vpos < eol and text[vpos] in "'\"":
            value, after = _quoted(text, vpos, key, line)
            eol = _line_end(text, after)
            rest = text[after:eol].strip()
            if rest and not rest.startswith("#"):
                raise DotenvSyntaxError(line, f"unexpected text after the quoted value of {key}")
            line += text.count("\n", pos, eol)
        else:
            value = _INLINE_COMMENT.sub("", text[vpos:eol]).strip()
        values[key] = value
        pos, line = eol + 1, line + 1
    return values


def _line_end(text: str, pos: int) -> int:
    eol = text.find("\n", pos)
    return len(text) if eol == -1 else eol


def _quoted(text: str, start: int, key: str, line: int) -> tuple[str, int]:
    """The value of the quoted string at ``start`` and the index after its closing quote."""
    quote = text[start]
    if quote == "'":
        close = text.find("'", start + 1)
        if close == -1:
            raise DotenvSyntaxError(line, f"unterminated single-quoted value of {key}")
        return text[start + 1 : close], close + 1
    out: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        if char == '"':
            return "".join(out), i + 1
        out.append(char)
        i += 1
    raise DotenvSyntaxError(line, f"unterminated double-quoted value of {key}")


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse the dotenv file at ``path``; SecretsError (naming the file) if unreadable or bad."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SecretsError(
            f"env file {path} does not exist",
            hint="create it with KEY=VALUE lines (and keep it out of git), or fix its path "
            "in stagecraft.yml",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise SecretsError(f"cannot read env file {path}: {reason}") from None
    try:
        return parse_dotenv(text)
    except DotenvSyntaxError as exc:
        raise SecretsError(
            f"{path}:{exc.line}: {exc.reason}",
            hint="each line is KEY=VALUE, `export KEY=VALUE` or a # comment; quote values "
            "that contain newlines",
        ) from None


class DotenvSecretsConfig(ProviderConfig):
    """``secrets_provider: {provider: dotenv, path: ...}``."""

    path: str


class DotenvSecrets(SecretsProvider):
    """Secrets from a dotenv file that stays out of git (``.env.staging``).

    Config keys:

    - ``path`` (required): the file, relative to the project root (``~`` is expanded).

    The file is parsed as dotenv: ``KEY=VALUE`` lines, optional ``export``,
    ``#`` comments, single quotes (literal), double quotes (with ``\\n``-style
    escapes, may span lines). Values are literal: ``$`` is not special. Values
    are never logged; a file readable by other users gets a warning.

    Example ``stagecraft.yml``::

        environments:
          staging:
            secrets: [POSTGRES_PASSWORD, STRIPE_KEY]
            secrets_provider: {provider: dotenv, path: .env.staging}

    >>> import tempfile
    >>> from pathlib import Path
    >>> provider = DotenvSecrets(DotenvSecrets.Config.model_validate({"path": ".env.staging"}))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     env_file = Path(tmp, ".env.staging")
    ...     _ = env_file.write_text("POSTGRES_PASSWORD='s3cret'\\n")
    ...     env_file.chmod(0o600)
    ...     provider.resolve(["POSTGRES_PASSWORD"], SecretsContext(root=Path(tmp)))
    {'POSTGRES_PASSWORD': SecretValue('POSTGRES_PASSWORD', '***')}
    """

    id: ClassVar[str] = "dotenv"
    Config: ClassVar[type[ProviderConfig]] = DotenvSecretsConfig
    config: DotenvSecretsConfig

    def file(self, ctx: SecretsContext) -> Path:
        """The dotenv file for a project rooted at ``ctx.root``."""
        return ctx.root / Path(self.config.path).expanduser()

    def fetch(self, names: list[str], ctx: SecretsContext) -> Mapping[str, str]:
        path = self.file(ctx)
        values = read_dotenv(path)
        _warn_if_shared(path)
        log.event(logger, logging.DEBUG, f"read {len(values)} entries from {path}", phase="secrets")
        return {name: values[name] for name in names if name in values}

    def missing_hint(self, missing: list[str], ctx: SecretsContext) -> str:
        return f"add {missing[0]}=... lines to {self.file(ctx)}"


def _warn_if_shared(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        log.event(
            logger,
            logging.WARNING,
            f"secrets file {path} is readable by other users (mode {stat.S_IMODE(mode):04o}); "
            f"consider `chmod 600 {path}`",
            phase="secrets",
        )
