"""The queue of sign-outs that could not be written yet, with the store's calls in memory."""

from __future__ import annotations

from proxy.store.pending import PendingRevocations


async def test_a_drop_while_the_store_begins_again_needs_another_beginning() -> None:
    written: list[list[str]] = []
    began = 0

    async def write(session_ids: list[str]) -> None:
        written.append(session_ids)

    async def begin_again() -> None:
        nonlocal began
        began += 1
        if began == 1:  # more sign-outs arrive, and overflow, while it runs
            queue.add(["sess_4", "sess_5", "sess_6"])

    queue = PendingRevocations(write, begin_again=begin_again, max_pending=2)
    queue.add(["sess_1", "sess_2", "sess_3"])
    assert queue.dropped
    assert not await queue.flush(), "sess_4 was dropped after the beginning was dated"
    assert queue.dropped
    assert await queue.flush()
    assert not queue.dropped
    assert began == 2
    assert written == [["sess_2", "sess_3"], ["sess_5", "sess_6"]]
    await queue.close()
