"""Log output that never blocks the caller: a bounded queue and one writer thread.

A process's log lines (request lines and `logging` records) are put on a
queue and written to stderr's file descriptor by a thread of their own. If
the reader of stderr stalls (a log shipper that hangs, a full pipe), only
that thread waits in `os.write`; the event loop goes on serving.

- The queue is bounded in bytes (`server.log_buffer_bytes`, 1 MiB by
  default: about 3,000 JSON request lines, a second or more of a busy
  edge's log, and a fixed ceiling on the memory a stall can take). The
  batch being written when the reader stalled is held on top of that, and
  one chunk always fits in an empty queue (a record with a long traceback
  is one chunk).
- When a chunk does not fit, it is dropped, not waited for: its lines are
  counted (`dropped_total`, exported as
  `session_minter_log_lines_dropped_total`), and so is everything after it
  until the writer takes the queue again, so the lines that are kept stay in
  order and the gap sits in one place. Once the writer gets its batch out,
  it writes one line saying how many lines were dropped there.
- Each `put` is one string (one or more whole lines), written by the one
  writer thread in order, in `os.write`s of whole lines of at most
  PIPE_BUF bytes (atomic on a pipe): lines keep their order, and lines of
  the workers sharing one stderr are never cut into each other.
- `put` takes one uncontended lock, appends to a list and wakes the writer
  only when it sleeps on an empty queue: O(1) on the hot path. Woken, the
  writer lingers `LINGER_S` (20 ms) for more lines before it takes the
  queue, unless a flush hurries it, or the queue passes half its bound
  (else a healthy reader would lose lines to a linger). Waking a thread costs two context
  switches and a handover of the GIL on the event loop's core; waking it
  once per loop turn took about 5% of an edge mint's throughput, once per
  linger takes next to nothing, and a line reaches stderr at most that
  much later.
- A thread does not survive `fork`: in a child the queue and the lock are
  made anew (the parent writes what it had queued) and the thread starts at
  the child's first line.
- `flush(timeout)` waits until what was queued before it is written, for at
  most `timeout` seconds; a flush that finds the writer still stuck where an
  earlier one gave up returns at once, so a dead reader costs one bounded
  wait, not one per flush. The process's writer is flushed at interpreter
  exit, and by `logging.shutdown` through `WriterHandler.flush`.

Kept interpreted (not in setup.py's COMPILED): it is thread code, and tests
fork with it.
"""

from __future__ import annotations

import atexit
import logging
import os
import select
import threading
import time
import weakref
from collections.abc import Callable

__all__ = [
    "DEFAULT_BUFFER_BYTES",
    "FLUSH_TIMEOUT_S",
    "LogWriter",
    "WriterHandler",
    "current",
    "dropped_lines",
    "flush_logs",
    "install",
]

DEFAULT_BUFFER_BYTES = 1024 * 1024
_PIPE_BUF = select.PIPE_BUF  # 4096 on Linux
LINGER_S = 0.02  # a woken writer waits this long for more lines before writing
FLUSH_TIMEOUT_S = 2.0  # at exit, per process: a dead reader cannot hold shutdown longer


def _plain_notice(dropped: int) -> str:
    return f"{dropped} log lines dropped: stderr was not read fast enough\n"


class LogWriter:
    def __init__(
        self,
        fd: int,
        max_bytes: int = DEFAULT_BUFFER_BYTES,
        notice: Callable[[int], str] = _plain_notice,
    ) -> None:
        self._fd = fd
        self._max_bytes = max_bytes
        self._notice = notice
        self._reset()
        _writers.add(self)

    def _reset(self) -> None:
        """A fresh, empty state: at start, and in a forked child."""
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the writer waits for lines
        self._done = threading.Condition(self._lock)  # flushers wait for the writer
        self._queue: list[str] = []
        self._queued_bytes = 0
        self._dropping = False  # since the first drop, until the writer takes the queue
        self._dropped_here = 0  # dropped since the writer last took the queue
        self.dropped_total = 0
        self._put_count = 0  # chunks accepted, ever
        self._written_count = 0  # chunks written (or given up on), ever
        self._gave_up_at = -1  # `_written_count` when a flush last timed out
        self._sleeping = False
        self._hurry = threading.Event()  # a flush is waiting: stop lingering
        self._thread: threading.Thread | None = None

    def put(self, text: str) -> None:
        """Queue `text` (whole lines, each ending in a newline); never waits for the reader."""
        with self._lock:
            if self._thread is None:
                self._start()
            size = len(text)  # characters: bytes for the ASCII a log line mostly is
            # A chunk always fits in an empty queue (a long traceback is one chunk).
            if self._dropping or (self._queue and self._queued_bytes + size > self._max_bytes):
                self._dropping = True
                lines = text.count("\n")
                self._dropped_here += lines
                self.dropped_total += lines
                return
            self._queue.append(text)
            half = self._max_bytes // 2
            if self._queued_bytes <= half < self._queued_bytes + size:
                self._hurry.set()  # filling up: a lingering writer takes the queue now
            self._queued_bytes += size
            self._put_count += 1
            if self._sleeping:
                self._wake.notify()

    def flush(self, timeout: float = FLUSH_TIMEOUT_S) -> bool:
        """Wait (at most `timeout` s) until what is queued now is written; False if it is not."""
        with self._lock:
            target = self._put_count
            if self._written_count >= target:
                return True
            if self._gave_up_at == self._written_count:
                return False  # still stuck where the last flush gave up
            deadline = time.monotonic() + timeout
            self._hurry.set()
            while self._written_count < target:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None:
                    self._gave_up_at = self._written_count
                    return False
                self._done.wait(left)
            return True

    def _start(self) -> None:
        thread = threading.Thread(target=self._run, name="session-minter-log", daemon=True)
        self._thread = thread
        thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue:
                    self._sleeping = True
                    self._wake.wait()
                self._sleeping = False
            self._hurry.wait(LINGER_S)  # more lines come in the meantime: one write
            with self._lock:
                self._hurry.clear()
                chunks, self._queue = self._queue, []
                self._queued_bytes = 0
                dropped, self._dropped_here, self._dropping = self._dropped_here, 0, False
                upto = self._put_count
            # Every line dropped so far came after every chunk taken here: the notice
            # goes right after them, where the gap is.
            self._write("".join(chunks))
            if dropped:
                self._write(self._notice_of(dropped), counted=False)  # not a logged line
            with self._lock:
                self._written_count = upto
                self._done.notify_all()

    def _notice_of(self, dropped: int) -> str:
        try:
            return self._notice(dropped)
        except Exception:  # a broken formatter must not end the writer
            return _plain_notice(dropped)

    def _write(self, text: str, counted: bool = True) -> None:
        """Write `text` out, in pieces of whole lines of at most PIPE_BUF bytes.

        A write of at most PIPE_BUF bytes to a pipe is atomic: the lines of
        processes sharing one stderr (the workers) are never cut into each
        other. Only a single line longer than that is written as it comes.
        """
        data = text.encode("utf-8", "backslashreplace")
        start, size = 0, len(data)
        while start < size:
            end = size
            if end - start > _PIPE_BUF:
                cut = data.rfind(b"\n", start, start + _PIPE_BUF)
                end = cut + 1 if cut >= 0 else (data.find(b"\n", start + _PIPE_BUF) + 1 or size)
            if not self._write_all(memoryview(data)[start:end]):
                if counted:
                    lines = data.count(b"\n", start)
                    with self._lock:
                        self.dropped_total += lines
                return
            start = end

    def _write_all(self, piece: memoryview) -> bool:
        """False when the fd refuses it (the reader is gone: EPIPE)."""
        while piece:
            try:
                written = os.write(self._fd, piece)
            except BlockingIOError:  # a non-blocking stderr: wait until it takes more
                # poll, not select: any fd number; a closed fd (POLLNVAL) fails the write next.
                waiting = select.poll()
                waiting.register(self._fd, select.POLLOUT)
                waiting.poll()
                continue
            except OSError:
                return False
            piece = piece[written:]
        return True


_writers: weakref.WeakSet[LogWriter] = weakref.WeakSet()  # made anew in a forked child
_current: LogWriter | None = None


def install(
    fd: int, max_bytes: int = DEFAULT_BUFFER_BYTES, notice: Callable[[int], str] = _plain_notice
) -> LogWriter:
    """Make a writer on `fd` this process's log writer (flushed at exit) and return it."""
    global _current
    previous = _current
    if previous is not None:
        previous.flush()
    _current = LogWriter(fd, max_bytes, notice)
    return _current


def current() -> LogWriter | None:
    return _current


def dropped_lines() -> int:
    """Lines this process's log writer dropped (0 without one)."""
    return 0 if _current is None else _current.dropped_total


def flush_logs(timeout: float = FLUSH_TIMEOUT_S) -> bool:
    """Write what this process has queued, waiting at most `timeout` s; True when all is out."""
    return True if _current is None else _current.flush(timeout)


def _after_fork_in_child() -> None:
    for writer in list(_writers):
        writer._reset()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(flush_logs)


class WriterHandler(logging.Handler):
    """A `logging` handler that formats a record and puts it on a `LogWriter`."""

    def __init__(self, writer: LogWriter) -> None:
        super().__init__()
        self._writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # as logging's own handlers: report, never raise
            self.handleError(record)
            return
        self._writer.put(text + "\n")

    def flush(self) -> None:
        self._writer.flush()
