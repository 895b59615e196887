"""The loop batch under the edge's signatures: one batch per turn, shared calls, callers gone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from proxy.batch import LoopBatch


def recorder(ran: list[str], name: str) -> Callable[[], str]:
    def call() -> str:
        ran.append(name)
        return f"result of {name}"

    return call


async def test_the_calls_of_one_turn_run_together_in_the_next_in_order() -> None:
    batch, ran = LoopBatch(), []
    futures = [batch.run(recorder(ran, name)) for name in ("a", "b", "c")]
    assert ran == [], "nothing runs in the turn that asked"
    assert len(batch) == 3
    assert await asyncio.gather(*futures) == ["result of a", "result of b", "result of c"]
    assert ran == ["a", "b", "c"]
    assert (batch.batches, batch.calls, len(batch)) == (1, 3, 0)


async def test_calls_asked_in_later_turns_form_later_batches() -> None:
    batch, ran = LoopBatch(), []
    assert await batch.run(recorder(ran, "first")) == "result of first"
    assert await batch.run(recorder(ran, "second")) == "result of second"
    assert ran == ["first", "second"]
    assert (batch.batches, batch.calls) == (2, 2)


async def test_calls_sharing_a_key_run_once_and_all_get_its_result() -> None:
    batch, ran = LoopBatch(), []
    tabs = [batch.run(recorder(ran, f"tab{n}"), share="same clone") for n in range(3)]
    other = batch.run(recorder(ran, "other"), share="another clone")
    assert await asyncio.gather(*tabs, other) == ["result of tab0"] * 3 + ["result of other"]
    assert ran == ["tab0", "other"]
    assert (batch.calls, batch.shared) == (2, 2)
    later = await batch.run(recorder(ran, "next turn"), share="same clone")
    assert later == "result of next turn", "a key is shared within one batch only"


async def test_a_call_whose_callers_are_gone_is_skipped() -> None:
    batch, ran = LoopBatch(), []
    gone = batch.run(recorder(ran, "gone"))
    gone.cancel()  # what cancelling the task that awaits it does
    assert await batch.run(recorder(ran, "kept")) == "result of kept"
    assert ran == ["kept"]
    assert batch.calls == 1


async def test_a_caller_going_away_takes_nothing_from_those_sharing_its_call() -> None:
    batch, ran = LoopBatch(), []
    first = batch.run(recorder(ran, "first"), share="clone")
    second = batch.run(recorder(ran, "second"), share="clone")
    first.cancel()
    assert await second == "result of first"
    assert ran == ["first"]
    assert first.cancelled()


async def test_an_exception_reaches_each_caller_and_the_batch_goes_on() -> None:
    batch, ran = LoopBatch(), []

    def broken() -> str:
        raise ValueError("no key")

    failing = [batch.run(broken, share="k"), batch.run(broken, share="k")]
    after = batch.run(recorder(ran, "after"))
    for future in failing:
        with pytest.raises(ValueError, match="no key"):
            await future
    assert await after == "result of after"
    assert ran == ["after"]
