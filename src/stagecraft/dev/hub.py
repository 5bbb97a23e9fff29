"""What the supervised processes share: the state lock, the sinks, the stop flags."""

from __future__ import annotations

import logging
import threading

from stagecraft import log
from stagecraft.dev.logprefix import OutputSink
from stagecraft.dev.model import EventKind, EventSink, ProcessEvent

logger = logging.getLogger("stagecraft.dev.supervisor")

_BAD_EVENTS = (EventKind.FAILED, EventKind.CRASHED)


class Hub:
    """What all supervised processes share: the state lock, the sinks, the stop flags."""

    def __init__(self, on_output: OutputSink | None, on_event: EventSink | None) -> None:
        # Re-entrant: a signal handler running stop() may interrupt a holder in the main thread.
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._emit_lock = threading.RLock()
        self._on_output = on_output
        self._on_event = on_event
        self.stopping = threading.Event()
        self.forced = threading.Event()

    def output(self, name: str, stream: str, line: str) -> None:
        if self._on_output is None:
            return
        with self._emit_lock:
            try:
                self._on_output(name, stream, line)
            except Exception:  # a broken sink must not stop the readers
                logger.exception("dev output sink failed")

    def event(self, event: ProcessEvent) -> None:
        level = logging.WARNING if event.kind in _BAD_EVENTS else logging.INFO
        log.event(logger, level, event.message, service=event.name, phase="dev")
        if self._on_event is None:
            return
        with self._emit_lock:
            try:
                self._on_event(event)
            except Exception:
                logger.exception("dev event sink failed")

    def notify(self) -> None:
        with self.changed:
            self.changed.notify_all()
