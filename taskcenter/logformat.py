"""Log formatters: plain text with the structured fields appended, or one JSON object a line
(``LOG_FORMAT=json``). Structured fields are the ``extra={…}`` of a logging call."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def _extra(record: logging.LogRecord) -> dict:
    return {key: value for key, value in vars(record).items() if key not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_extra(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    #: (second, its text), replaced as one value: threads share the formatter.
    _cached_second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        # The default format with the local time of each second formatted once (a busy process
        # logs many lines a second; time.strftime was a sixth of a line's cost).
        second = int(record.created)
        cached, text = self._cached_second
        if cached != second:
            text = time.strftime(self.default_time_format, self.converter(second))
            self._cached_second = (second, text)
        return self.default_msec_format % (text, record.msecs)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _extra(record)
        if fields:
            text += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        return text
