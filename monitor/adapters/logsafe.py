"""No log line carries a bearer token or a whole ID number: every log record is redacted as it is created,
whatever logger or handler writes it (uvicorn's access log included)."""

from __future__ import annotations

import json
import logging
import os
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

# The request a log record was written for (monitor/api/http.py RequestIds sets it per request; threads the request
# runs in inherit it), so one request's lines can be found among all the processes' logs.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

TOKEN = re.compile(r"mon_[A-Za-z0-9_\-]{6,}")
ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[0-9Xx])(?![0-9A-Za-z])|"
                       r"(?<![0-9A-Za-z])(\d{6})\d{6}(\d{3})(?![0-9A-Za-z])")
QUERY_TOKEN = re.compile(r"(token=)[^&\s\"']+")


def redact(text: str) -> str:
    """`text` with tokens replaced by mon_*** and ID numbers (18 or 15 digits) shown as 530102********123X."""
    text = QUERY_TOKEN.sub(r"\1***", text)
    text = TOKEN.sub("mon_***", text)
    return ID_NUMBER.sub(lambda m: f"{m.group(1) or m.group(3)}{'*' * (8 if m.group(1) else 6)}"
                                   f"{m.group(2) or m.group(4)}", text)


def _redact_value(value: Any) -> Any:
    """A log argument redacted: strings as themselves; another object (a URL, a request) as its redacted text when
    its text holds something to redact (its str() is what the message would print)."""
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, (int, float, bool, bytes)):
        return value
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - an object that cannot print itself is left to the handler
        return value
    cleaned = redact(text)
    return cleaned if cleaned != text else value


_installed = False


def install_redaction() -> None:
    """Wrap the log record factory (once per process) so that every record's message, string arguments and
    exception text are redacted before any handler sees them."""
    global _installed  # noqa: PLW0603 - one wrapper per process
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = REQUEST_ID.get()
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_value(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redact_value(v) for k, v in record.args.items()}
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(redacting_factory)
    _installed = True


class JsonLines(logging.Formatter):
    """One JSON object per line: UTC time, level, logger, message (redacted like every record), the request id, the
    process, and the exception's text when there is one; for log collectors (MONITOR_LOG_FORMAT=json)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None), "pid": os.getpid(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self.formatException(record.exc_info))
        if record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False)
