"""The one place errors become output and exit codes."""

from __future__ import annotations

import json
import sys
import traceback

from stagecraft.cli.context import AppContext
from stagecraft.errors import ExitCode, StagecraftError

REPORT_HINT = (
    "this is a bug in stagecraft; please report it with the output above and `stagecraft --version`"
)


def render_error(exc: BaseException, app: AppContext) -> int:
    """Print ``exc`` for people (and for machines with --json); return the exit code."""
    if isinstance(exc, StagecraftError):
        for line in exc.lines():
            sys.stderr.write(f"error: {line}\n")
        if exc.hint:
            sys.stderr.write(f"hint: {exc.hint}\n")
        if app.json:
            payload = {
                "error": {
                    "type": type(exc).__name__,
                    "message": exc.message,
                    "lines": exc.lines(),
                    "hint": exc.hint,
                    "exit_code": int(exc.exit_code),
                }
            }
            sys.stdout.write(json.dumps(payload) + "\n")
        return int(exc.exit_code)
    traceback.print_exception(exc, file=sys.stderr)
    sys.stderr.write(f"error: unexpected {type(exc).__name__}: {exc}\nhint: {REPORT_HINT}\n")
    return int(ExitCode.INTERNAL)
