"""The dashboards' web stack is imported only when a dashboard is served."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("starlette", "uvicorn", "jinja2")


def test_help_and_the_command_modules_do_not_import_the_web_stack() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from stagecraft.cli.main import cli\n"
        "import stagecraft.cli.commands.dashboard, stagecraft.cli.commands.dev\n"
        "import stagecraft.dev.session\n"
        "result = CliRunner().invoke(cli, ['dashboard', '--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert '--port' in result.output and '--open' in result.output\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
