"""One output object per invocation: human text on stderr, machine JSON on stdout.

Tests build it with explicit streams and a width; the CLI builds it from the
global flags. Rich is imported only when something is printed.
"""

from __future__ import annotations

import json
import sys
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


class Output:
    """Where command results go."""

    def __init__(
        self,
        *,
        json_mode: bool = False,
        quiet: bool = False,
        verbose: bool = False,
        no_color: bool = False,
        stdout: IO[str] | None = None,
        stderr: IO[str] | None = None,
        width: int | None = None,
    ) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self.verbose = verbose
        self.no_color = no_color
        self._stdout = stdout
        self._stderr = stderr
        self.width = width
        self._console: Console | None = None

    @property
    def stdout(self) -> IO[str]:
        return self._stdout or sys.stdout

    @property
    def stderr(self) -> IO[str]:
        return self._stderr or sys.stderr

    @property
    def console(self) -> Console:
        """Rich console for human output: stdout normally, stderr in --json mode."""
        if self._console is None:
            from rich.console import Console

            stream = self.stderr if self.json_mode else self.stdout
            self._console = Console(
                file=stream,
                width=self.width,
                no_color=self.no_color,
                highlight=False,
                soft_wrap=True,
                force_terminal=None if not self.no_color else False,
            )
        return self._console

    def print(self, *objects: Any, style: str | None = None) -> None:
        """Human output (suppressed by --quiet)."""
        if not self.quiet:
            self.console.print(*objects, style=style)

    def result(self, text: str) -> None:
        """A human result line that --quiet keeps."""
        self.console.print(text, markup=False)

    def json(self, data: Any) -> None:
        """Machine output on stdout."""
        self.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        self.stdout.flush()
