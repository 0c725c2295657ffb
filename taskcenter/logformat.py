"""Log formatters: plain text with the structured fields appended, or one JSON object a line
(``LOG_FORMAT=json``). Structured fields are the ``extra={…}`` of a logging call.

A plain record is one line whatever text a client sent: the message and the fields' values
have their control characters escaped, and a value with a space, a quote or an ``=`` is
quoted; the lines of a traceback that follows are indented. A line that starts in the first
column therefore always starts a record."""

from __future__ import annotations

import json
import logging
import re
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


# Control characters (C0, DEL, C1) and the Unicode line and paragraph separators.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# A field value with any of these is quoted (with its backslashes and quotes escaped).
_NEEDS_QUOTES = re.compile(r'[\s"=\\\x00-\x1f\x7f-\x9f]')


def escape(text: str) -> str:
    """``text`` on one line: control characters and line separators as Python escapes
    (``\\n``, ``\\x1b``, ``\\u2028``)."""
    return _UNSAFE.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


def _value(value) -> str:
    text = str(value)
    if text and not _NEEDS_QUOTES.search(text):
        return text
    return '"' + escape(text.replace("\\", "\\\\").replace('"', '\\"')) + '"'


class PlainFormatter(logging.Formatter):
    #: (second, its text), replaced as one value: threads share the formatter.
    _cached_second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        # The default format with the local time of each second formatted once: a busy process
        # logs many lines a second, and time.strftime is a large part of formatting one.
        second = int(record.created)
        cached, text = self._cached_second
        if cached != second:
            text = time.strftime(self.default_time_format, self.converter(second))
            self._cached_second = (second, text)
        return self.default_msec_format % (text, record.msecs)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape(record.message)
        text = super().formatMessage(record)
        fields = _extra(record)
        if fields:
            text += " " + " ".join(f"{key}={_value(value)}" for key, value in fields.items())
        return text

    def format(self, record: logging.LogRecord) -> str:
        # What follows the record's line (traceback, stack) is indented: it cannot pass for a record.
        return super().format(record).replace("\n", "\n  ")
