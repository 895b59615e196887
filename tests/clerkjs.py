"""Run tests/js/clerk_flow.mjs (the real @clerk/clerk-js, headless) from a test.

The script runs as an asyncio subprocess, so the servers of the test keep
serving in the same event loop while clerk-js talks to them.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JS_DIR = Path(__file__).parent / "js"


def clerk_js_installed() -> bool:
    return shutil.which("node") is not None and (JS_DIR / "node_modules" / "@clerk").is_dir()


@dataclass
class ClerkRun:
    returncode: int
    events: list[dict[str, Any]]
    stderr: str
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)

    def requests(self, path_suffix: str) -> list[dict[str, Any]]:
        return [
            event
            for event in self.events
            if event.get("event") == "request" and str(event.get("path", "")).endswith(path_suffix)
        ]


async def run_clerk_js(
    base_url: str,
    steps: list[str],
    *,
    identifier: str = "alice@example.com",
    password: str = "correct-horse",
    extra_args: list[str] | None = None,
    on_pause: Callable[[str], Awaitable[None]] | None = None,
    timeout_s: float = 90.0,
) -> ClerkRun:
    """Run the steps; at each `pause:LABEL` step, await `on_pause(LABEL)`, then resume."""
    process = await asyncio.create_subprocess_exec(
        "node",
        "clerk_flow.mjs",
        "--base-url",
        base_url,
        "--identifier",
        identifier,
        "--password",
        password,
        "--steps",
        ",".join(steps),
        "--trace",
        *(extra_args or []),
        cwd=JS_DIR,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stdin is not None
    events: list[dict[str, Any]] = []

    async def read_events() -> None:
        assert process.stdout is not None
        assert process.stdin is not None
        async for line in process.stdout:
            if not line.startswith(b"{"):
                continue
            event = json.loads(line)
            events.append(event)
            if event.get("event") == "paused":
                if on_pause is not None:
                    await on_pause(str(event.get("label", "")))
                process.stdin.write(b"\n")
                await process.stdin.drain()

    try:
        await asyncio.wait_for(read_events(), timeout_s)
        await asyncio.wait_for(process.wait(), timeout_s)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    stderr = await process.stderr.read() if process.stderr is not None else b""
    run = ClerkRun(process.returncode or 0, events, stderr.decode())
    run.steps = {event["step"]: event for event in events if event.get("event") == "step"}
    return run
