"""Structured logging for the engine.

The engine logs through the standard library (``logging.getLogger(__name__)``)
and attaches context with ``extra={"host": ..., "service": ..., "phase": ...}``.
The CLI installs one handler on the ``stagecraft`` logger: human lines, or one
JSON object per event (``--log-format json``). The engine never prints.
Every record goes through :func:`stagecraft.redact.redact` on its way out
(:class:`RedactingFilter`): no password syntax, and no secret value this
process resolved, reaches a log line -- ``--verbose`` argv included.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import IO, Any

from stagecraft.redact import redact

CONTEXT_FIELDS = ("host", "service", "phase")


def event(
    logger: logging.Logger,
    level: int,
    message: str,
    *,
    host: str | None = None,
    service: str | None = None,
    phase: str | None = None,
    **fields: Any,
) -> None:
    """Log ``message`` with the structured context fields Stagecraft uses."""
    extra: dict[str, Any] = {"host": host, "service": service, "phase": phase}
    if fields:
        extra["fields"] = fields
    logger.log(level, message, extra=extra)


class RedactingFilter(logging.Filter):
    """Passes every record on with its message, string fields and traceback redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # bad %-args: logging reports it, we still redact
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = {
                key: redact(value) if isinstance(value, str) else value
                for key, value in fields.items()
            }
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: timestamp, level, host, service, phase, message."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        for name in CONTEXT_FIELDS:
            data[name] = getattr(record, name, None)
        data["message"] = record.getMessage()
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                data.setdefault(key, value)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exception"] = record.exc_text
        return json.dumps(data, default=str, sort_keys=False)


class HumanFormatter(logging.Formatter):
    """``[host] service: message`` lines for people."""

    def format(self, record: logging.LogRecord) -> str:
        parts = []
        host = getattr(record, "host", None)
        service = getattr(record, "service", None)
        if host:
            parts.append(f"[{host}]")
        if service:
            parts.append(f"{service}:")
        prefix = " ".join(parts)
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        text = f"{level}{record.getMessage()}"
        return f"{prefix} {text}" if prefix else text


def configure(
    *, stream: IO[str], fmt: str = "human", verbose: bool = False, quiet: bool = False
) -> None:
    """Install the single Stagecraft handler on the ``stagecraft`` logger."""
    logger = logging.getLogger("stagecraft")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else HumanFormatter())
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
