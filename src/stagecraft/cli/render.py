"""The one place errors become output and exit codes."""

from __future__ import annotations

import json
import sys
import traceback

from stagecraft.cli.context import AppContext
from stagecraft.errors import ExitCode, StagecraftError
from stagecraft.redact import redact

REPORT_HINT = (
    "this is a bug in stagecraft; please report it with the output above and `stagecraft --version`"
)


def render_error(exc: BaseException, app: AppContext) -> int:
    """Print ``exc`` for people (and for machines with --json); return the exit code.

    Every line goes through :func:`stagecraft.redact.redact` (a failed command's
    argv or output may hold a password or a resolved secret).
    """
    if isinstance(exc, StagecraftError):
        lines = [redact(line) for line in exc.lines()]
        hint = redact(exc.hint) if exc.hint else exc.hint
        for line in lines:
            sys.stderr.write(f"error: {line}\n")
        if hint:
            sys.stderr.write(f"hint: {hint}\n")
        if app.json:
            payload = {
                "error": {
                    "type": type(exc).__name__,
                    "message": redact(exc.message),
                    "lines": lines,
                    "hint": hint,
                    "exit_code": int(exc.exit_code),
                }
            }
            sys.stdout.write(json.dumps(payload) + "\n")
        return int(exc.exit_code)
    text = "".join(traceback.format_exception(exc))
    sys.stderr.write(redact(text))
    sys.stderr.write(f"error: unexpected {type(exc).__name__}: {redact(str(exc))}\n")
    sys.stderr.write(f"hint: {REPORT_HINT}\n")
    return int(ExitCode.INTERNAL)
