from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.stack import FakeClock, Stack, running_stack


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(time.time())


@pytest.fixture
async def stack(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path, clock) as running:
        yield running
