"""MkDocs hooks of the docs site (``hooks:`` in mkdocs.yml): one Markdown for GitHub and the site.

GitHub needs a pipe inside a table cell escaped even within backticks (`` `a\\|b` ``)
and shows it as ``a|b``; Python-Markdown never splits a cell at a pipe inside
backticks, so it would show the backslash. The hook drops that backslash in table
rows before the page is converted; the Markdown files stay as GitHub wants them.
"""

from __future__ import annotations

import re
from typing import Any

CODE_SPAN = re.compile(r"(`+)(.+?)\1")
FENCE = re.compile(r"^\s*(```|~~~)")


def unescape_table_pipes(markdown: str) -> str:
    """``\\|`` inside code spans of table rows becomes ``|``; fenced code is left alone."""
    lines = []
    in_fence = False
    for line in markdown.split("\n"):
        if FENCE.match(line):
            in_fence = not in_fence
        in_table = not in_fence and line.lstrip().startswith("|")
        lines.append(CODE_SPAN.sub(_unescape_pipes, line) if in_table else line)
    return "\n".join(lines)


def _unescape_pipes(span: re.Match[str]) -> str:
    return span[1] + span[2].replace("\\|", "|") + span[1]


def on_page_markdown(markdown: str, **_: Any) -> str:
    return unescape_table_pipes(markdown)
