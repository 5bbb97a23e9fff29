"""The live deploy view on a terminal: one row per host, updated in place.

``deploy`` and ``rollback`` report progress as ``(host, service, message)``
events. Not on a terminal (CI, pipes, ``--quiet``, ``--log-format json``) they
are printed line by line, as before; on a terminal this view shows, per host,
the phase it is in, its current step, the megabytes shipped, the time since
the start and, at the end, its outcome, with the errors below the table. The
final aggregate is printed after it, as without the view. Every text shown
goes through :func:`stagecraft.redact.redact`.

Example::

    with DeployView(console, ["web-1", "web-2"]) as view:
        result = deploy(loaded, env, DeployOptions(progress=view.progress))
        view.finish({h.host: h.outcome for h in result.hosts})
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

from stagecraft.redact import redact

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

# The first needle a message contains names the phase it belongs to.
PHASES: tuple[tuple[str, str], ...] = (
    ("lock", "lock"),
    ("image ", "build"),
    ("shipping", "ship"),
    ("images on host", "ship"),
    ("pushed", "ship"),
    ("proxy", "proxy"),
    ("routes", "proxy"),
    ("migration", "migrate"),
    ("ledger", "record"),
    ("pruned", "prune"),
)
_MB = re.compile(r"([\d.]+) MB (?:sent|in )")
_FAILED = re.compile(r"\b(failed|not healthy|error|unreachable|lost)\b", re.I)


@dataclass
class _Row:
    phase: str = "waiting"
    step: str = ""
    shipped: float | None = None
    outcome: str = ""
    errors: list[str] = field(default_factory=list)


class DeployView:
    """A rich ``Live`` table of the hosts of one deploy or rollback (see the module docstring)."""

    def __init__(self, console: Console, hosts: Sequence[str]) -> None:
        self.console = console
        self.rows = {name: _Row() for name in hosts}
        self.started = time.monotonic()
        self._live: Live | None = None

    def __enter__(self) -> DeployView:
        from rich.live import Live

        self._live = Live(
            get_renderable=self.render,
            console=self.console,
            refresh_per_second=4,
            transient=False,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._live.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.__exit__(kind, exc, tb)
            self._live = None

    def progress(self, host: str, service: str | None, message: str) -> None:
        """A progress event (the pipeline's ``Progress`` callback)."""
        text = redact(message)
        row = self.rows.setdefault(host if host not in ("-", "") else "local", _Row())
        row.phase = next(
            (phase for needle, phase in PHASES if needle in text),
            "roll out" if service else row.phase,
        )
        row.step = f"{service}: {text}" if service else text
        shipped = _MB.search(text)
        if shipped and row.phase == "ship":
            row.shipped = float(shipped.group(1))
        if _FAILED.search(text):
            row.errors.append(row.step)

    def line(self, text: str) -> None:
        """Print a line above the table (a hook's output, a warning)."""
        self.console.print(redact(text), markup=False, highlight=False)

    def finish(self, outcomes: Mapping[str, str]) -> None:
        """Each host's final outcome (``success``, ``failed``, ...)."""
        for host, outcome in outcomes.items():
            self.rows.setdefault(host, _Row()).outcome = outcome
            self.rows[host].phase = "done"

    def render(self) -> RenderableType:
        """The table as it stands now."""
        from rich.table import Table

        elapsed = time.monotonic() - self.started
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in ("HOST", "PHASE", "STEP", "SHIPPED", "TIME", "OUTCOME"):
            table.add_column(column, no_wrap=column != "STEP", overflow="ellipsis")
        for name, row in self.rows.items():
            shipped = f"{row.shipped:.1f} MB" if row.shipped is not None else ""
            style = {"success": "green", "failed": "red", "interrupted": "yellow"}.get(row.outcome)
            table.add_row(
                name,
                row.phase,
                row.step,
                shipped,
                f"{elapsed:.0f}s",
                row.outcome,
                style=style,
            )
        errors = [f"{name}: {error}" for name, row in self.rows.items() for error in row.errors]
        if not errors:
            return table
        from rich.console import Group
        from rich.text import Text

        return Group(table, *(Text(e, style="red") for e in errors[-10:]))
