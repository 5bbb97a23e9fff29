"""Split a SQL file into statements, as psql does, remembering where each one starts."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Statement:
    """One SQL statement of a file and the line it starts on."""

    sql: str
    line: int


_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*)?\$")
_WORD = re.compile(r"[A-Za-z_\x80-\uffff][A-Za-z0-9_$\x80-\uffff]*")


def split_sql(text: str) -> list[Statement]:
    """Split ``text`` into statements at top-level semicolons, as psql does.

    Quotes (``'..'``, ``E'..'``, ``".."``), dollar quotes (``$tag$..$tag$``),
    comments (``--``, nested ``/* */``) and ``BEGIN ATOMIC .. END`` bodies of
    ``CREATE FUNCTION/PROCEDURE`` are respected. Empty statements are dropped.
    """
    line_starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    statements: list[Statement] = []
    scanner = _Scanner(text)
    start: int | None = None
    for kind, begin, _end in scanner.tokens():
        if kind == ";":
            if start is not None:
                sql_text = text[start:begin].rstrip()
                statements.append(Statement(sql_text, bisect_right(line_starts, start)))
            start = None
        elif kind != "comment" and start is None:
            start = begin
    if start is not None and text[start:].strip():
        statements.append(Statement(text[start:].rstrip(), bisect_right(line_starts, start)))
    return statements


class _Scanner:
    """A small tokenizer: enough of PostgreSQL's lexer to find statement ends."""

    def __init__(self, text: str) -> None:
        self.text = text

    def tokens(self) -> Iterator[tuple[str, int, int]]:
        """Yield ``(kind, start, end)`` for ``;`` and everything else that matters."""
        text, n, i = self.text, len(self.text), 0
        words: list[str] = []
        paren = begin_depth = 0
        while i < n:
            ch = text[i]
            if ch.isspace():
                i += 1
                continue
            if text.startswith("--", i):
                end = text.find("\n", i)
                end = n if end < 0 else end
                yield "comment", i, end
                i = end
            elif text.startswith("/*", i):
                end = self._block_comment_end(i)
                yield "comment", i, end
                i = end
            elif ch == "'":
                escapes = i > 0 and text[i - 1] in "eE" and not self._ident_char(i - 2)
                end = self._quoted_end(i, "'", escapes)
                yield "string", i, end
                i = end
            elif ch == '"':
                end = self._quoted_end(i, '"', False)
                yield "ident", i, end
                i = end
            elif ch == "$" and not self._ident_char(i - 1) and (m := _DOLLAR_TAG.match(text, i)):
                close = text.find(m.group(0), m.end())
                end = n if close < 0 else close + len(m.group(0))
                yield "string", i, end
                i = end
            elif ch == ";" and begin_depth == 0:
                yield ";", i, i + 1
                words, paren = [], 0
                i += 1
            elif m := _WORD.match(text, i):
                word = m.group(0).lower()
                words.append(word)
                if paren == 0 and _is_create_routine(words):
                    if word == "begin" or (word == "case" and begin_depth > 0):
                        begin_depth += 1
                    elif word == "end" and begin_depth > 0:
                        begin_depth -= 1
                yield "word", i, m.end()
                i = m.end()
            else:
                paren += 1 if ch == "(" else -1 if ch == ")" else 0
                yield "other", i, i + 1
                i += 1

    def _ident_char(self, index: int) -> bool:
        if index < 0:
            return False
        ch = self.text[index]
        return ch.isalnum() or ch in "_$"

    def _block_comment_end(self, i: int) -> int:
        text, depth = self.text, 0
        while i < len(text):
            if text.startswith("/*", i):
                depth, i = depth + 1, i + 2
            elif text.startswith("*/", i):
                depth, i = depth - 1, i + 2
                if depth == 0:
                    return i
            else:
                i += 1
        return len(text)

    def _quoted_end(self, i: int, quote: str, backslash: bool) -> int:
        text, i = self.text, i + 1
        while i < len(text):
            ch = text[i]
            if backslash and ch == "\\":
                i += 2
            elif ch == quote:
                if text.startswith(quote * 2, i):
                    i += 2
                else:
                    return i + 1
            else:
                i += 1
        return len(text)


def _is_create_routine(words: Sequence[str]) -> bool:
    """CREATE [OR REPLACE] FUNCTION|PROCEDURE: where BEGIN ATOMIC .. END may appear."""
    if len(words) < 2 or words[0] != "create":
        return False
    if words[1] in ("function", "procedure"):
        return True
    return (
        len(words) >= 4
        and words[1:3] == ["or", "replace"]
        and words[3]
        in (
            "function",
            "procedure",
        )
    )
