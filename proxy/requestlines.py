"""The request log's fast lane: one line per request, without the logging machinery.

A request line is the hottest log there is (one per token refresh), and the
`logging` module spends more on it than the rest of a forwarded request's
Python: a record object, locks, a formatter, a write and a flush per line.
Once `configure_logging` has set up the process's stderr, request lines are
formatted here in the same shapes as `JsonFormatter` / `TextFormatter`
produce (same keys, same order) and handed to the sink: the process's
`LogWriter.put`, which queues them for its writer thread and never blocks.
Each line is handed on as it is logged, so it keeps its place among the
`logging` records, which go through the same queue; the writer gathers
them into few writes. Without that setup (tests, embedding) request lines
go through `logging`.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["RequestLines"]

_LOGGER = "session_minter.request"


class RequestLines:
    def __init__(self, log_format: str, sink: Callable[[str], None]) -> None:
        self._json = log_format == "json"
        self._sink = sink
        self._formatted_second = -1
        self._second_text = ""

    def write(self, summary: str, fields: dict[str, Any]) -> None:
        now = time.time()
        self._sink(
            self._json_line(now, summary, fields)
            if self._json
            else self._text_line(now, summary, fields)
        )

    def _second(self, now: float) -> str:
        """The line's time to the second, formatted once per second."""
        second = int(now)
        if second != self._formatted_second:
            if self._json:
                moment = datetime.datetime.fromtimestamp(second, datetime.UTC)
                self._second_text = moment.strftime("%Y-%m-%dT%H:%M:%S")
            else:
                self._second_text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            self._formatted_second = second
        return self._second_text

    def _json_line(self, now: float, summary: str, fields: dict[str, Any]) -> str:
        document: dict[str, Any] = {
            # As `datetime.isoformat(timespec="milliseconds")` writes it.
            "time": f"{self._second(now)}.{int(now * 1000) % 1000:03d}+00:00",
            "level": "info",
            "logger": _LOGGER,
            "message": summary,
        }
        document.update(fields)
        return orjson.dumps(document, default=str).decode("utf-8") + "\n"

    def _text_line(self, now: float, summary: str, fields: dict[str, Any]) -> str:
        stamp = f"{self._second(now)},{int(now * 1000) % 1000:03d}"
        extra = " ".join([f"{name}={value}" for name, value in fields.items() if value is not None])
        return f"{stamp} INFO {_LOGGER}: {summary} {extra}\n"
