"""The live deploy view: rows per host from progress events, outcomes at the end, no secret."""

from __future__ import annotations

import io
import uuid

from rich.console import Console

from stagecraft import redact
from stagecraft.cli.live import DeployView


def _shown(view: DeployView) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=160, no_color=True).print(view.render())
    return buffer.getvalue()


def test_rows_follow_the_phases_of_each_host_and_end_with_outcomes() -> None:
    view = DeployView(Console(file=io.StringIO()), ["web-1", "web-2"])
    view.progress("web-1", None, "lock taken (deploy v2)")
    view.progress("web-2", None, "shipping: 1/3 layer(s), 12.5 MB sent (10.1 MB/s)")
    view.progress("web-1", "web", "switched in 0.4s")
    text = _shown(view)
    rows = {line.split()[0]: line for line in text.splitlines()[1:] if line.strip()}
    assert text.splitlines()[0].split() == ["HOST", "PHASE", "STEP", "SHIPPED", "TIME", "OUTCOME"]
    assert rows["web-1"].split()[1:3] == ["roll", "out"] and "web: switched" in rows["web-1"]
    assert rows["web-2"].split()[1] == "ship" and "12.5 MB" in rows["web-2"]
    view.progress("web-2", "web", "not healthy after 15s")
    view.finish({"web-1": "success", "web-2": "failed"})
    text = _shown(view)
    assert "success" in text and "failed" in text
    assert text.rstrip().splitlines()[-1] == "web-2: web: not healthy after 15s"  # errors below


def test_a_secret_never_reaches_the_view() -> None:
    canary = f"live-{uuid.uuid4().hex}"
    redact.remember(canary)
    view = DeployView(Console(file=io.StringIO()), ["web-1"])
    view.progress("web-1", "web", f"failed: token {canary} refused")
    buffer = io.StringIO()
    view.console = Console(file=buffer, width=160, no_color=True)
    view.line(f"[hook pre-deploy] {canary}")
    assert canary not in _shown(view) + buffer.getvalue()
    assert "***" in _shown(view)


def test_the_live_table_renders_on_a_terminal_and_stays_after_the_end() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=120, force_terminal=True, no_color=True)
    with DeployView(console, ["web-1"]) as view:
        view.progress("web-1", None, "images on host: sent 1 image(s): 1 layer(s), 2.0 MB in 1s")
        view.finish({"web-1": "success"})
    out = buffer.getvalue()
    assert "web-1" in out and "success" in out and "2.0 MB" in out
