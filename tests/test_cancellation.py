"""The gateway must stop on SIGTERM. On Python 3.11, ``asyncio.wait_for`` swallows a cancel that
lands in the same loop pass as the awaited event is set (checked: 200 of 200 times), so a loop
waiting on an often-set event (a fence every second, an engine wake on every commit) could go on
running after its task was cancelled, and the gateway's stop hung (two CI tests timed out
waiting for it). Loops wait with ``asyncio.timeout`` instead; this keeps ``wait_for`` out."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_no_wait_for_in_the_gateway_or_the_tui() -> None:
    found = [
        f"{p.relative_to(ROOT)}:{n}"
        for d in ("gateway", "dashboard_tui")
        for p in sorted((ROOT / d).rglob("*.py"))
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(r"\bwait_for\(", line) and not line.lstrip().startswith("#")
    ]
    assert found == [], f"asyncio.wait_for can swallow a cancel on 3.11: {found}"


def test_a_loop_waiting_with_timeout_stops_when_cancelled_as_its_event_is_set() -> None:
    async def main() -> int:
        survived = 0
        for _ in range(50):
            ev = asyncio.Event()

            async def loop(ev: asyncio.Event = ev) -> None:
                while True:
                    try:
                        async with asyncio.timeout(5):
                            await ev.wait()
                    except TimeoutError:
                        pass
                    ev.clear()
                    await asyncio.sleep(0)

            task = asyncio.create_task(loop())
            await asyncio.sleep(0.001)
            ev.set()
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=1.0)
            if not done:
                survived += 1
                task.cancel()
        return survived

    assert asyncio.run(main()) == 0
