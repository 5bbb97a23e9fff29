"""Merged dev-server output: aligned ``name | line`` prefixes, coloured on a terminal.

The supervisor hands every output line to a sink as ``(name, stream, line)``;
:class:`LinePrefixer` turns that into the text a person reads, and
:func:`stream_sink` writes it to a stream. Colours are assigned per name in a
fixed order (the order names were given), so the same project always looks the
same. When the target is not a terminal (CI, a pipe, a file) the output is
plain: no colour codes, and the colour codes dev servers print are removed.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TextIO

OutputSink = Callable[[str, str, str], None]
"""Called as ``sink(name, stream, line)``; ``stream`` is ``"stdout"`` or ``"stderr"``."""

# CSI sequences (colours, cursor moves), OSC sequences (titles, links), and
# two-character escapes (ESC 7, ESC =, ...).
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[0-~]")

PALETTE = ("36", "35", "32", "33", "34", "31", "96", "95", "92", "93", "94", "91")
"""ANSI foreground colours, in the order names get them."""

RESET = "\x1b[0m"


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences."""
    return ANSI.sub("", text)


class LinePrefixer:
    """Render output lines as ``name | line`` with names padded to one width.

    Example::

        prefixer = LinePrefixer(["api", "frontend"], color=False)
        prefixer.format("api", "stdout", "listening on :4000")
        # 'api      | listening on :4000'
    """

    def __init__(self, names: Iterable[str], *, color: bool) -> None:
        self.color = color
        self._colors: dict[str, str] = {}
        self.width = 0
        for name in names:
            self._register(name)

    def _register(self, name: str) -> str:
        code = self._colors.get(name)
        if code is None:
            code = PALETTE[len(self._colors) % len(PALETTE)]
            self._colors[name] = code
            self.width = max(self.width, len(name))
        return code

    def prefix(self, name: str) -> str:
        """``name`` padded to the common width, coloured when colour is on, plus `` | ``."""
        code = self._register(name)
        padded = name.ljust(self.width)
        if self.color:
            return f"\x1b[{code}m{padded}{RESET} | "
        return f"{padded} | "

    def format(self, name: str, stream: str, line: str) -> str:
        """One output line of process ``name``, ready to write (without newline)."""
        if not self.color:
            return self.prefix(name) + strip_ansi(line)
        # A line that changes colours ends with a reset, so colour never bleeds on.
        tail = RESET if "\x1b[" in line else ""
        return self.prefix(name) + line + tail


def wants_color(
    stream: TextIO, *, no_color: bool = False, environ: Mapping[str, str] | None = None
) -> bool:
    """Colour for ``stream``: a terminal, unless ``no_color``, ``NO_COLOR`` or ``TERM=dumb``."""
    env = os.environ if environ is None else environ
    if no_color or env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def stream_sink(stream: TextIO, prefixer: LinePrefixer) -> OutputSink:
    """A sink writing each line to ``stream`` through ``prefixer`` (thread-safe, flushed)."""
    lock = threading.Lock()

    def sink(name: str, kind: str, line: str) -> None:
        text = prefixer.format(name, kind, line) + "\n"
        with lock:
            stream.write(text)
            stream.flush()

    return sink
