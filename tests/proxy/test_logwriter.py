"""The log writer on real pipes: order, the bound, drops and their count, flush, fork, exit.

A pipe the test does not read stands for a stalled stderr; the pipe is made
as small as the kernel allows (one page) so that a few kilobytes fill it.
Waiting is on the pipe's state (bytes unread) or on the writer's own flush,
each bounded by `TIMEOUT_S`.
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import os
import subprocess
import sys
import termios
import threading
import time
import warnings
from collections.abc import Callable, Iterator

import pytest

from proxy import logwriter
from proxy.logwriter import LogWriter
from tests.proxy.served import TIMEOUT_S, read_until


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    yield read_end, write_end
    for fd in (read_end, write_end):
        os.close(fd)


def unread(fd: int) -> int:
    count = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, count)
    return count[0]


def eventually(condition: Callable[[], bool], what: str) -> None:
    """Poll a condition another thread makes true (bounded)."""
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def stall(writer: LogWriter, read_end: int) -> bytes:
    """Put more than the pipe holds and wait until the writer is stuck on the full pipe."""
    capacity = fcntl.fcntl(read_end, fcntl.F_GETPIPE_SZ)
    big = "".join(f"stalled line {n:05d} " + "x" * 40 + "\n" for n in range(capacity // 50 + 40))
    writer.put(big)
    eventually(lambda: unread(read_end) > capacity - 64, "the pipe to fill")
    return big.encode()


def test_lines_keep_their_order_and_stay_whole_from_many_threads(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    writer = LogWriter(write_end)

    def log(name: str) -> None:
        for n in range(500):
            writer.put(f"{name} {n} {'y' * (n % 97)}\n")

    threads = [threading.Thread(target=log, args=(f"t{i}",)) for i in range(4)]
    got = b""
    for thread in threads:
        thread.start()
    while len(got.splitlines()) < 2000:  # reading as it is written
        got += read_until(read_end, b"\n")
    for thread in threads:
        thread.join()
    assert writer.flush(TIMEOUT_S)
    assert writer.dropped_total == 0
    seen: dict[str, list[int]] = {}
    for line in got.decode().splitlines():
        name, n, tail = line.split(" ")
        assert tail == "y" * (int(n) % 97), "a whole line, nothing of another in it"
        seen.setdefault(name, []).append(int(n))
    assert seen == {f"t{i}": list(range(500)) for i in range(4)}


def test_a_full_queue_drops_counts_and_reports_the_gap_where_it_is(
    pipe: tuple[int, int],
) -> None:
    read_end, write_end = pipe
    writer = LogWriter(write_end, max_bytes=100)
    first = stall(writer, read_end)
    writer.put("kept: fits in the empty queue\n")
    for n in range(10):  # the queue is full now: each is dropped, none waited for
        writer.put(f"dropped {n}: {'z' * 60}\n")
    writer.put("two lines\nin one put\n")
    assert writer.dropped_total == 12
    # Reading again: what was taken, what was kept, then the gap, in that order.
    notice = b"12 log lines dropped: stderr was not read fast enough\n"
    got = read_until(read_end, notice)
    assert got == first + b"kept: fits in the empty queue\n" + notice
    writer.put("after the gap\n")
    assert read_until(read_end, b"after the gap\n") == b"after the gap\n"
    assert writer.dropped_total == 12, "the count is a running total, not reset by the notice"


def test_an_empty_queue_takes_a_chunk_larger_than_the_bound(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    writer = LogWriter(write_end, max_bytes=10)
    writer.put("one loop turn's lines, longer than the bound\n")
    assert read_until(read_end, b"bound\n") == b"one loop turn's lines, longer than the bound\n"
    assert writer.dropped_total == 0


def test_flush_waits_for_the_queue_and_gives_up_on_a_stalled_reader(
    pipe: tuple[int, int],
) -> None:
    read_end, write_end = pipe
    writer = LogWriter(write_end)
    assert writer.flush(0.0), "nothing queued: flushed"
    first = stall(writer, read_end)
    writer.put("queued behind the stall\n")
    assert not writer.flush(0.05), "the reader does not read: flush gives up"
    assert not writer.flush(TIMEOUT_S), "still stuck where the last flush gave up: at once"
    got = read_until(read_end, b"queued behind the stall\n")
    assert writer.flush(TIMEOUT_S), "read again: everything is out"
    assert got == first + b"queued behind the stall\n"


def test_a_forked_child_writes_with_a_writer_of_its_own(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    writer = LogWriter(write_end)
    writer.put("parent before the fork\n")
    assert read_until(read_end, b"fork\n") == b"parent before the fork\n"
    first = stall(writer, read_end)  # the parent's writer thread is stuck mid-write, lock free
    writer.put("parent queued at the fork\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:  # the child: the parent's queue is not its own, its thread is gone
        code = 1
        try:
            writer.put("child line\n")
            code = 0 if writer.flush(TIMEOUT_S) and writer.dropped_total == 0 else 3
        finally:
            os._exit(code)
    got = b""
    while b"parent queued at the fork\n" not in got or b"child line\n" not in got:
        got += read_until(read_end, b"\n")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child flushed its own line"
    lines = got.splitlines(keepends=True)
    # Each line once and whole (the parent's queue was not the child's to write),
    # the parent's in their order; the child's anywhere between them.
    assert lines.count(b"child line\n") == 1
    parents = [*first.splitlines(keepends=True), b"parent queued at the fork\n"]
    assert [line for line in lines if line != b"child line\n"] == parents


EXITING = """
import os, sys
from proxy.logwriter import install
writer = install(2, max_bytes=1 << 20)
for n in range({lines}):
    writer.put(f"line {{n}}\\n")
print("queued", flush=True)
"""  # then the interpreter exits: the atexit flush writes what is queued


def test_queued_lines_are_written_at_interpreter_exit() -> None:
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", EXITING.format(lines=2000)],
        capture_output=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode().splitlines() == [f"line {n}" for n in range(2000)]


def test_a_stalled_reader_cannot_hold_the_exit(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe
    process = subprocess.Popen(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", EXITING.format(lines=2000)],
        stdout=subprocess.PIPE,
        stderr=write_end,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == b"queued\n"
    assert process.wait(timeout=TIMEOUT_S) == 0, "exited with its stderr never read"
    process.stdout.close()
    written = os.read(read_end, 65536)
    assert written.startswith(b"line 0\n"), "it wrote what the pipe would take"
    assert b"line 1999\n" not in written, "and the rest was still queued when it gave up"


def test_lines_the_reader_is_gone_for_are_counted_and_the_writer_goes_on() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # EPIPE from now on (Python ignores SIGPIPE)
    try:
        writer = LogWriter(write_end)
        writer.put("lost\nlost too\n")
        assert writer.flush(TIMEOUT_S), "given up on, not stuck"
        assert writer.dropped_total == 2
        writer.put("lost again\n")
        assert writer.flush(TIMEOUT_S)
        assert writer.dropped_total == 3, "the thread is still writing (and counting)"
    finally:
        os.close(write_end)


def test_a_notice_that_fails_to_format_falls_back_to_plain_text(pipe: tuple[int, int]) -> None:
    read_end, write_end = pipe

    def broken(dropped: int) -> str:
        raise ValueError(dropped)

    writer = LogWriter(write_end, max_bytes=100, notice=broken)
    first = stall(writer, read_end)
    writer.put("kept\n")
    writer.put("dropped " + "z" * 200 + "\n")
    notice = b"1 log lines dropped: stderr was not read fast enough\n"
    assert read_until(read_end, notice) == first + b"kept\n" + notice
    writer.put("still writing\n")
    assert read_until(read_end, b"still writing\n") == b"still writing\n"


def test_a_non_blocking_fd_select_cannot_take_keeps_the_writer_alive(
    pipe: tuple[int, int],
) -> None:
    # EAGAIN on a full non-blocking pipe: the writer waits for room. On an fd that
    # select() refuses (numbered past FD_SETSIZE here; a closed one likewise) that
    # wait raised inside the `except BlockingIOError` clause, past the clause meant
    # to catch it, and ended the writer thread: every later line was lost.
    read_end, write_end = pipe
    high = fcntl.fcntl(write_end, fcntl.F_DUPFD, 1100)  # select() takes fds < 1024 only
    try:
        os.set_blocking(high, False)
        writer = LogWriter(high)
        first = stall(writer, read_end)
        writer.put("after the wait\n")
        got = read_until(read_end, b"after the wait\n")
        assert writer.flush(TIMEOUT_S), "the writer is still alive"
        assert got == first + b"after the wait\n"
        assert writer.dropped_total == 0
    finally:
        os.close(high)


def test_a_queue_filling_up_hurries_a_lingering_writer(
    pipe: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A woken writer lingers for more lines; if it lingers on while the queue fills,
    # a healthy reader loses lines (at the 4096-byte minimum bound, ~12 request
    # lines: an edge logging more than that per 20 ms). Past half the bound, the
    # writer must take the queue without waiting out the linger (made endless here).
    monkeypatch.setattr(logwriter, "LINGER_S", 3600.0)
    read_end, write_end = pipe
    writer = LogWriter(write_end, max_bytes=4096)
    for round_ in range(4):  # 4 x 2,500 bytes: more than twice the bound, read as it comes
        lines = [f"round {round_} line {n} {'w' * 480}\n" for n in range(5)]
        for line in lines:
            writer.put(line)
        assert read_until(read_end, lines[-1].encode()) == "".join(lines).encode()
    assert writer.dropped_total == 0


def test_a_notice_the_reader_is_gone_for_is_not_counted_as_a_log_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The count is of lines logged and lost; the writer's own notice about them,
    # when it cannot be written either, is not one more of those.
    monkeypatch.setattr(logwriter, "LINGER_S", 3600.0)  # the writer holds the queue: a drop
    read_end, write_end = os.pipe()
    try:
        writer = LogWriter(write_end, max_bytes=100)
        writer.put("kept\n")
        writer.put("dropped " + "z" * 200 + "\n")
        assert writer.dropped_total == 1
        os.close(read_end)  # EPIPE for the kept line and for the notice
        assert writer.flush(TIMEOUT_S)
        assert writer.dropped_total == 2, "the kept line and the dropped one, not the notice"
    finally:
        os.close(write_end)


async def test_request_lines_and_records_keep_the_order_they_were_logged_in(
    pipe: tuple[int, int],
) -> None:
    """On the event loop, a request line logged before a record comes out before it."""
    import logging

    from proxy.logwriter import WriterHandler
    from proxy.requestlines import RequestLines

    read_end, write_end = pipe
    writer = LogWriter(write_end)
    handler = WriterHandler(writer)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("tests.logwriter.order")
    log.addHandler(handler)
    log.propagate = False
    try:
        lines = RequestLines("text", writer.put)
        lines.write("first", {})
        log.warning("second")
        lines.write("third", {})
        await asyncio.sleep(0)  # the loop turn ends (where batched request lines went out)
        assert writer.flush()
        got = read_until(read_end, b"third \n").decode()
    finally:
        log.removeHandler(handler)
    order = [line.rsplit(": ", 1)[-1].strip() for line in got.splitlines()]
    assert order == ["first", "second", "third"]
