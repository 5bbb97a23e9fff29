"""ANSI colours of a log line as HTML: the text escaped first, colours as CSS classes.

Only SGR sequences (``ESC [ ... m``) are turned into ``<span class="...">``:
bold, dim, italic, underline and the 16 foreground and background colours (also
when written as ``38;5;N`` with N < 16). Every other escape sequence (cursor
moves, OSC titles and links, 256-colour and RGB values) is dropped. Classes,
not inline styles, so the dashboard's Content-Security-Policy can forbid
inline styles.

>>> to_html("\\x1b[31merror\\x1b[0m <b>")
'<span class="ansi-fg1">error</span> &lt;b&gt;'
"""

from __future__ import annotations

import html
import re

_ESCAPES = re.compile(
    r"\x1b\[(?P<sgr>[0-9;]*)m"  # SGR: colours and attributes
    r"|\x1b\[[0-9;?]*[ -/]*[@-~]"  # other CSI sequences
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC (title, hyperlink), BEL or ST terminated
    r"|\x1b[@-Z\\-_]"  # two-character escapes
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_ATTRIBUTES = {1: "ansi-bold", 2: "ansi-dim", 3: "ansi-italic", 4: "ansi-underline"}
_ATTRIBUTE_OFF = {22: ("ansi-bold", "ansi-dim"), 23: ("ansi-italic",), 24: ("ansi-underline",)}


_ERROR = re.compile(
    r"\b(?:error|err|fatal|panic|critical|exception|traceback|failed|crashed)\b"
    r"|level\W{0,3}(?:error|fatal|crit)",
    re.IGNORECASE,
)
_WARNING = re.compile(r"\b(?:warn|warning|deprecated)\b|level\W{0,3}warn", re.IGNORECASE)


def level(text: str) -> str:
    """The severity a log line reads as: ``error``, ``warning`` or ``info`` (the level filter).

    Words and ``level=``/``"level":`` fields, since dev servers print no common format.

    >>> level("Error: listen EADDRINUSE"), level('{"level":"warn","msg":"slow"}'), level("GET /")
    ('error', 'warning', 'info')
    """
    plain = strip(text)
    if _ERROR.search(plain):
        return "error"
    if _WARNING.search(plain):
        return "warning"
    return "info"


def strip(text: str) -> str:
    """``text`` without any escape sequence or control character (what search matches)."""
    return _CONTROL.sub("", _ESCAPES.sub("", text))


def to_html(text: str) -> str:
    """``text`` as safe HTML: escaped, with its SGR colours as ``ansi-*`` classes."""
    out: list[str] = []
    classes: list[str] = []
    fg: str | None = None
    bg: str | None = None
    position = 0
    for match in _ESCAPES.finditer(text):
        out.append(_chunk(text[position : match.start()], classes, fg, bg))
        position = match.end()
        if match.group("sgr") is not None:
            fg, bg = _apply(match.group("sgr"), classes, fg, bg)
    out.append(_chunk(text[position:], classes, fg, bg))
    return "".join(out)


def _chunk(text: str, classes: list[str], fg: str | None, bg: str | None) -> str:
    if not text:
        return ""
    escaped = html.escape(_CONTROL.sub("", text), quote=True)
    names = [*classes, *(c for c in (fg, bg) if c)]
    if not names:
        return escaped
    return f'<span class="{" ".join(names)}">{escaped}</span>'


def _apply(
    params: str, classes: list[str], fg: str | None, bg: str | None
) -> tuple[str | None, str | None]:
    """Update the current attributes (``classes``, in place) and colours for one SGR."""
    codes = [int(p) if p.isdigit() else 0 for p in params.split(";")] if params else [0]
    index = 0
    while index < len(codes):
        code = codes[index]
        index += 1
        if code == 0:
            classes.clear()
            fg = bg = None
        elif code in _ATTRIBUTES:
            if _ATTRIBUTES[code] not in classes:
                classes.append(_ATTRIBUTES[code])
        elif code in _ATTRIBUTE_OFF:
            classes[:] = [c for c in classes if c not in _ATTRIBUTE_OFF[code]]
        elif 30 <= code <= 37:
            fg = f"ansi-fg{code - 30}"
        elif 90 <= code <= 97:
            fg = f"ansi-fg{code - 90 + 8}"
        elif code == 39:
            fg = None
        elif 40 <= code <= 47:
            bg = f"ansi-bg{code - 40}"
        elif 100 <= code <= 107:
            bg = f"ansi-bg{code - 100 + 8}"
        elif code == 49:
            bg = None
        elif code in (38, 48):
            colour, index = _extended(codes, index)
            if code == 38:
                fg = f"ansi-fg{colour}" if colour is not None else fg
            else:
                bg = f"ansi-bg{colour}" if colour is not None else bg
    return fg, bg


def _extended(codes: list[int], index: int) -> tuple[int | None, int]:
    """``5;N`` (a palette index; only the first 16 have a class) or ``2;R;G;B`` (dropped)."""
    if index < len(codes) and codes[index] == 5 and index + 1 < len(codes):
        value = codes[index + 1]
        return (value if value < 16 else None), index + 2
    if index < len(codes) and codes[index] == 2:
        return None, index + 4
    return None, index
