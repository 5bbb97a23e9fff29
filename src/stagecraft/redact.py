"""One redaction for everything Stagecraft shows: DSN passwords and declared secret values.

Two kinds of knowledge, one function (:func:`redact`):

- **password syntax** -- a DSN's password is found the way libpq finds it
  (:func:`parse_dsn`): in a URI the userinfo password (percent-decoded; ``#``
  and ``?`` are ordinary characters there, unlike in :func:`urllib.parse.urlsplit`)
  and ``?password=`` query parameters; in a ``key=value`` conninfo string the
  ``password`` value with libpq's quoting (single quotes, backslash escapes).
  For display the userinfo is taken up to the *last* ``@``, so a password with
  an unencoded ``@`` or ``/`` is hidden whole even though libpq would split it.
- **declared secret values** -- every value handed to :func:`remember` (the
  secrets providers do it for each value they resolve) or to a
  :class:`Redactor`, found also in the forms it travels in: JSON-escaped
  (``\\"``, ``\\\\``, ``\\t``, ``\\u00e9``), shell-quoted, backslash-escaped and
  percent-encoded.

Example::

    from stagecraft import redact

    redact.redact_dsn("postgresql://app:pa#ss?w@db/shop")   # 'postgresql://app:***@db/shop'
    redact.parse_dsn("host=db password='a \\\\' b'")["password"]   # "a ' b"
    guard = redact.Redactor([SecretValue('k"ey\\t1', name="API_KEY")])
    guard.find(json.dumps({"error": 'bad k"ey\\t1'}))          # 'API_KEY'
    redact.remember("s3cret-value")
    redact.redact("login with s3cret-value")                    # 'login with ***'
"""

from __future__ import annotations

import json
import re
import shlex
import threading
from collections.abc import Iterable
from typing import Protocol
from urllib.parse import quote, quote_plus

from stagecraft.errors import ExitCode, StagecraftError

MASK = "***"
MIN_SECRET_LENGTH = 4
"""Shorter declared values would match ordinary text; they are not searched for."""

URI_PREFIXES = ("postgresql://", "postgres://")
_SPACE = " \t\n\v\f\r"  # C isspace(), what libpq skips
_HEX = "0123456789abcdefABCDEF"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_LONG_SECRET = 256  # past this, only whole-value encodings are searched (a per-character
# pattern of a 4 KB key would be slow to compile and to match)


class DsnError(StagecraftError):
    """A DSN that libpq cannot parse, or would split where its author did not mean to."""

    exit_code = ExitCode.USAGE


class Revealable(Protocol):
    """A secret holder (:class:`stagecraft.providers.secrets.SecretValue`)."""

    name: str | None

    def reveal(self) -> str: ...


# -- libpq's connection-string grammar -------------------------------------------------


def parse_dsn(dsn: str, *, where: str = "") -> dict[str, str]:
    """``dsn``'s keywords and values as libpq reads them; :class:`DsnError` if it cannot.

    A ``postgresql://`` or ``postgres://`` URI, else a ``key=value`` conninfo
    string, following libpq's ``conninfo_uri_parse_options`` and
    ``conninfo_parse`` (libpq 18: spaces around a URI part are dropped, inside
    one refused). Two URIs that libpq accepts are refused because it would
    split them somewhere else than their author meant, and its later error
    would print a part of the password: an ``@`` after the userinfo (an
    unencoded ``@`` in the password; write ``%40``, in a query value too) and
    a non-numeric port (an unencoded ``/`` in the password). ``where`` names
    the DSN's source in the message, which never shows the password.

    >>> parse_dsn("postgresql://app:pa#ss?w@db:5433/shop?sslmode=off")["password"]
    'pa#ss?w'
    """
    try:
        if dsn.startswith(URI_PREFIXES):
            return _parse_uri(dsn)
        return _parse_conninfo(dsn)
    except _Malformed as exc:
        source = f"{where}: " if where else ""
        # A URI is shown redacted; a conninfo string that does not parse may not redact.
        shown = f"URL {redact_dsn(dsn)}" if _SCHEME.match(dsn) else "connection string"
        raise DsnError(
            f"{source}malformed database {shown}: {exc}",
            hint="write it as postgresql://USER:PASSWORD@HOST:PORT/DB with special characters "
            "in USER and PASSWORD percent-encoded (@ as %40, / as %2F, % as %25), or as "
            "key=value pairs (host=... password='...')",
        ) from None


def check_dsn(dsn: str, *, where: str = "") -> str:
    """``dsn`` unchanged when libpq can parse it (see :func:`parse_dsn`); else DsnError."""
    parse_dsn(dsn, where=where)
    return dsn


class _Malformed(ValueError):
    """Why a DSN does not parse (never quotes the password)."""


def _parse_uri(dsn: str) -> dict[str, str]:
    prefix = next(p for p in URI_PREFIXES if dsn.startswith(p))
    s = dsn[len(prefix) :]
    n = len(s)
    options: dict[str, str] = {}
    i = 0
    ahead = 0
    while ahead < n and s[ahead] not in "@/":
        ahead += 1
    if ahead < n and s[ahead] == "@":
        end_user = 0
        while s[end_user] not in ":@":
            end_user += 1
        _store(options, "user", s[:end_user], "the user name")
        if s[end_user] == ":":
            _store(options, "password", s[end_user + 1 : ahead], "the password")
        i = ahead + 1
    if "@" in s[i:]:
        raise _Malformed("an '@' after the user name and password (write it as %40)")
    hosts: list[str] = []
    ports: list[str] = []
    terminator = ""
    while True:
        if i < n and s[i] == "[":
            close = s.find("]", i + 1)
            if close < 0:
                raise _Malformed('no "]" closes the IPv6 host address')
            if close == i + 1:
                raise _Malformed("the IPv6 host address is empty")
            hosts.append(s[i + 1 : close])
            i = close + 1
            if i < n and s[i] not in ":/?,":
                raise _Malformed(f'unexpected character "{s[i]}" after the IPv6 host address')
        else:
            start = i
            while i < n and s[i] not in ":/?,":
                i += 1
            hosts.append(s[start:i])
        terminator = s[i] if i < n else ""
        port = ""
        if terminator == ":":
            i += 1
            start = i
            while i < n and s[i] not in "/?,":
                i += 1
            port = s[start:i]
            terminator = s[i] if i < n else ""
        ports.append(port)
        if terminator != ",":
            break
        i += 1
    host = ",".join(hosts)
    if any(not (p.isascii() and p.isdigit()) for p in ports if p):
        raise _Malformed("the port is not a number (a '/' in the password must be written %2F)")
    _store(options, "host", host, "the host")
    _store(options, "port", ",".join(ports), "the port")  # libpq keeps "," for h1,h2
    if terminator == "/":
        i += 1
        start = i
        while i < n and s[i] != "?":
            i += 1
        _store(options, "dbname", s[start:i], "the database name")
        terminator = s[i] if i < n else ""
    if terminator == "?":
        _parse_query(s[i + 1 :], options)
    return options


def _parse_query(params: str, options: dict[str, str]) -> None:
    """libpq's ``conninfo_uri_parse_params``: ``k=v`` pairs split on ``&``, both decoded."""
    while params:
        eq = -1
        p = 0
        while True:
            c = params[p] if p < len(params) else ""
            if c == "=":
                if eq >= 0:
                    raise _Malformed("a query parameter has a second '='")
                eq = p
            elif c in ("&", ""):
                break
            p += 1
        if eq < 0:
            raise _Malformed("a query parameter has no '='")
        keyword = _uri_decode(params[:eq], "a query parameter name")
        value = _uri_decode(params[eq + 1 : p], f"query parameter {keyword}")
        if keyword == "ssl" and value == "true":
            keyword, value = "sslmode", "require"
        options[keyword] = value
        params = params[p + 1 :]


def _store(options: dict[str, str], keyword: str, raw: str, what: str) -> None:
    """libpq's ``conninfo_storeval`` for URI parts: empty parts are not stored."""
    if raw:
        options[keyword] = _uri_decode(raw, what)


def _uri_decode(text: str, what: str) -> str:
    """Percent-decoding as libpq (18) does it: ``+`` stays ``+``, ``%00`` is refused, and
    spaces around the part are dropped while spaces inside it are refused."""
    text = text.strip(" ")
    if " " in text:
        raise _Malformed(f"a space in {what} (write it as %20)")
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c != "%":
            out += c.encode()
            i += 1
            continue
        digits = text[i + 1 : i + 3]
        if len(digits) != 2 or any(d not in _HEX for d in digits):
            raise _Malformed(f"invalid percent-encoding in {what} (write % as %25)")
        if digits == "00":
            raise _Malformed(f"%00 is not allowed in {what}")
        out.append(int(digits, 16))
        i += 3
    return out.decode(errors="replace")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _parse_conninfo(dsn: str) -> dict[str, str]:
    return {key: value for key, value, _ in _conninfo_tokens(dsn, strict=True)}


def _conninfo_tokens(dsn: str, *, strict: bool) -> list[tuple[str, str, tuple[int, int]]]:
    """libpq's ``conninfo_parse``: (keyword, unquoted value, span of the raw value).

    Lenient (``strict=False``, for display): a name without ``=`` is skipped and
    an unterminated quote runs to the end.
    """
    tokens: list[tuple[str, str, tuple[int, int]]] = []
    n = len(dsn)
    i = 0
    while i < n:
        if dsn[i] in _SPACE:
            i += 1
            continue
        start = i
        while i < n and dsn[i] != "=" and dsn[i] not in _SPACE:
            i += 1
        name = dsn[start:i]
        while i < n and dsn[i] in _SPACE:
            i += 1
        if i >= n or dsn[i] != "=":
            if strict:
                raise _Malformed(f'the {_ordinal(len(tokens) + 1)} setting has no "="')
            continue
        i += 1
        while i < n and dsn[i] in _SPACE:
            i += 1
        value_start = i
        chars: list[str] = []
        if i < n and dsn[i] == "'":
            i += 1
            while True:
                if i >= n:
                    if strict:
                        raise _Malformed(f"the quoted value of {name[:40]} is not terminated")
                    break
                c = dsn[i]
                if c == "\\":
                    i += 1
                    if i < n:
                        chars.append(dsn[i])
                        i += 1
                    continue
                i += 1
                if c == "'":
                    break
                chars.append(c)
            value_end = i
        else:
            while i < n and dsn[i] not in _SPACE:
                if dsn[i] == "\\":
                    i += 1
                    if i < n:
                        chars.append(dsn[i])
                        i += 1
                else:
                    chars.append(dsn[i])
                    i += 1
            value_end = i
        tokens.append((name, "".join(chars), (value_start, value_end)))
    return tokens


# -- DSNs for display -------------------------------------------------------------------


def is_dsn(text: str) -> bool:
    """Whether ``text`` as a whole is a URL or a conninfo string with a password."""
    if "\n" in text:
        return False
    head = _SCHEME.match(text)
    if head:
        # A space is prose after a URL ("http://web:8080/ up, by alice@laptop") unless it
        # comes while still in the userinfo ("postgresql://app:pa ss@db": older libpq takes it).
        first = re.split(r"\s", text[head.end() :].strip(), maxsplit=1)[0]
        return first == text[head.end() :].strip() or ("@" not in first and "/" not in first)
    if "=" not in text:
        return False
    return any(_is_password_key(key) for key, _, _ in _conninfo_tokens(text, strict=False))


def redact_dsn(dsn: str) -> str:
    """``dsn`` with every password in it replaced by ``***``; never raises.

    >>> redact_dsn("postgresql://app:s3cret@db:5432/shop")
    'postgresql://app:***@db:5432/shop'
    >>> redact_dsn("host=db password='a b' dbname=shop")
    'host=db password=*** dbname=shop'
    """
    if _SCHEME.match(dsn):
        return _redact_url(dsn)
    return _redact_conninfo(dsn)


def dsn_password(dsn: str) -> str | None:
    """The password libpq would send for ``dsn`` (the display reading when it does not parse)."""
    try:
        password = parse_dsn(dsn).get("password")
    except DsnError:
        found = dsn_secrets(dsn)
        return found[0] if found else None
    return password


def dsn_secrets(dsn: str) -> list[str]:
    """Every string in ``dsn`` that is, or may be read as, its password; longest first.

    The userinfo password as written and decoded (up to the last ``@``), libpq's
    own reading, query ``password`` values, conninfo ``password`` values, and
    those of a DSN nested in a conninfo ``dbname`` (libpq expands it).
    """
    found: set[str] = set()
    if _SCHEME.match(dsn):
        userinfo = _url_password_span(dsn)
        if userinfo is not None:
            raw = dsn[userinfo[0] : userinfo[1]]
            found |= {raw, _lenient_decode(raw)}
        for span in _query_password_spans(dsn):
            raw = dsn[span[0] : span[1]]
            found |= {raw, _lenient_decode(raw)}
    else:
        for key, value, (start, end) in _conninfo_tokens(dsn, strict=False):
            if _is_password_key(key):
                found |= {value, dsn[start:end]}
            elif key == "dbname" and _nested(value):
                found |= set(dsn_secrets(value))
    try:
        password = parse_dsn(dsn).get("password")
    except DsnError:
        password = None
    if password:
        found.add(password)
    found.discard("")
    return sorted(found, key=lambda s: (-len(s), s))


def _redact_url(url: str) -> str:
    spans = list(_query_password_spans(url))
    userinfo = _url_password_span(url)
    if userinfo is not None:
        spans.append(userinfo)
    out = url
    for start, end in sorted(spans, reverse=True):
        out = out[:start] + MASK + out[end:]
    return out


def _url_password_span(url: str) -> tuple[int, int] | None:
    """Where the userinfo password is: after the user's ``:``, up to the last ``@``."""
    head = _SCHEME.match(url)
    assert head is not None
    at = url.rfind("@", head.end())
    if at < 0:
        return None
    colon = url.find(":", head.end(), at)
    if colon < 0:
        return None
    return colon + 1, at


def _query_password_spans(url: str) -> Iterable[tuple[int, int]]:
    """Spans of the values of query parameters named ``password`` (percent-decoded name)."""
    head = _SCHEME.match(url)
    assert head is not None
    at = url.rfind("@", head.end())
    question = url.find("?", at + 1 if at >= 0 else head.end())
    if question < 0:
        return
    position = question + 1
    for param in url[question + 1 :].split("&"):
        key, eq, _ = param.partition("=")
        if eq and _is_password_key(_lenient_decode(key)):
            yield position + len(key) + 1, position + len(param)
        position += len(param) + 1


def _redact_conninfo(dsn: str) -> str:
    out = dsn
    for key, value, (start, end) in reversed(_conninfo_tokens(dsn, strict=False)):
        if _is_password_key(key):
            out = out[:start] + MASK + out[end:]
        elif key == "dbname" and _nested(value):
            shown = redact_dsn(value)
            if shown != value:
                quoted = "'" + shown.replace("\\", "\\\\").replace("'", "\\'") + "'"
                out = out[:start] + quoted + out[end:]
    return out


def _nested(value: str) -> bool:
    """libpq expands a ``dbname`` that is itself a connection string."""
    return value.startswith(URI_PREFIXES) or "=" in value


def _is_password_key(key: str) -> bool:
    return key.strip().lower() == "password"


def _lenient_decode(text: str) -> str:
    try:
        return _uri_decode(text, "")
    except _Malformed:
        return text


# -- declared secret values --------------------------------------------------------------


class Redactor:
    """Known secret values, found and replaced in every encoding they travel in.

    >>> guard = Redactor()
    >>> guard.add('pa"ss\\\\word', name="DB_PASSWORD")
    >>> guard.redact('{"error": "pa\\\\"ss\\\\\\\\word rejected"}')
    '{"error": "*** rejected"}'
    """

    def __init__(
        self, secrets: Iterable[Revealable | str] = (), *, min_length: int = MIN_SECRET_LENGTH
    ) -> None:
        self._min_length = min_length
        self._names: dict[str, str | None] = {}
        self._patterns: dict[str, re.Pattern[str]] = {}
        self._combined: re.Pattern[str] | None = None
        self._lock = threading.Lock()
        for secret in secrets:
            if isinstance(secret, str):
                self.add(secret)
            else:
                self.add(secret.reveal(), name=secret.name)

    def add(self, value: str, *, name: str | None = None) -> None:
        """Redact ``value`` (and its encodings) from now on; short values are ignored."""
        if len(value) < self._min_length:
            return
        with self._lock:
            if value in self._names and (name is None or self._names[value] is not None):
                return
            self._names[value] = name
            self._patterns.setdefault(value, re.compile(_value_pattern(value)))
            self._combined = None

    def add_dsn(self, dsn: str) -> None:
        """Redact every password of ``dsn`` (see :func:`dsn_secrets`)."""
        for secret in dsn_secrets(dsn):
            self.add(secret)

    def find(self, text: str) -> str | None:
        """The name of a known value that ``text`` contains (``"a declared secret"`` if unnamed)."""
        with self._lock:
            patterns = list(self._patterns.items())
            names = dict(self._names)
        for value, pattern in patterns:
            if pattern.search(text):
                return names[value] or "a declared secret"
        return None

    def redact(self, text: str) -> str:
        """``text`` with every known value replaced by ``***``."""
        with self._lock:
            if not self._patterns:
                return text
            if self._combined is None:
                longest_first = sorted(self._patterns, key=len, reverse=True)
                self._combined = re.compile(
                    "|".join(self._patterns[v].pattern for v in longest_first)
                )
            combined = self._combined
        return combined.sub(MASK, text)


def _value_pattern(value: str) -> str:
    """A regex matching ``value`` with each character in any of its usual encodings."""
    if len(value) > _LONG_SECRET:
        forms = {
            value,
            json.dumps(value)[1:-1],
            json.dumps(value, ensure_ascii=False)[1:-1],
            shlex.quote(value),
            value.replace("'", "'\"'\"'"),
            quote(value, safe=""),
            quote_plus(value),
        }
        return "(?:" + "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)) + ")"
    return "".join(_char_pattern(c) for c in value)


def _char_pattern(c: str) -> str:
    forms = [re.escape(c)]
    encoded = c.encode(errors="surrogatepass")
    forms.append("(?i:" + "".join(f"%{b:02x}" for b in encoded) + ")")
    for escaped in (json.dumps(c)[1:-1], repr(c)[1:-1]):
        if escaped != c:
            forms.append("(?i:" + re.escape(escaped) + ")")
    if c == " ":
        forms.append(r"\+")
    if c == "'":
        forms += [re.escape("'\"'\"'"), re.escape("'\\''")]
    return r"(?:\\?(?:" + "|".join(dict.fromkeys(forms)) + "))"


# -- free text and the process-wide registry ---------------------------------------------

KNOWN = Redactor()
"""Every secret value this process has resolved (secrets providers, DSNs of databases)."""

_URL_USERINFO = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:'\"]*:)"
    r"(?P<password>(?:\\.|[^\s'\"\\])*)@"
)
_PASSWORD_ASSIGNMENT = re.compile(
    r"(?P<head>\b\w*password\s*=\s*)(?P<value>'(?:\\.|[^'\\])*'?|(?:\\.|[^\s&'\"\\])+)",
    re.IGNORECASE,
)
_PASSWORD_JSON = re.compile(r'(?P<head>"\w*password"\s*:\s*)"(?:\\.|[^"\\])*"', re.IGNORECASE)


def remember(value: str, *, name: str | None = None) -> None:
    """Redact ``value`` from every log line and message from now on (this process)."""
    KNOWN.add(value, name=name)


def remember_dsn(dsn: str) -> None:
    """Redact every password of ``dsn`` from now on (this process)."""
    KNOWN.add_dsn(dsn)


def redact(text: str, *also: Redactor) -> str:
    """``text`` safe to show: known secret values and every password syntax replaced by ``***``.

    The one redaction: log lines, ``config show`` values, error messages and DSNs
    shown by ``migrate`` all go through it.
    """
    for redactor in (*also, KNOWN):
        text = redactor.redact(text)
    if is_dsn(text):
        return redact_dsn(text)
    return redact_passwords(text)


def redact_passwords(text: str) -> str:
    """Free text with URL userinfo passwords and ``password=`` values replaced by ``***``."""
    text = _URL_USERINFO.sub(lambda m: m["head"] + MASK + "@", text)
    text = _PASSWORD_ASSIGNMENT.sub(lambda m: m["head"] + MASK, text)
    return _PASSWORD_JSON.sub(lambda m: m["head"] + f'"{MASK}"', text)
