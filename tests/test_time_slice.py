"""Cooperative time slices (utils/time_slice.py): CPU work on the loop takes turns with timers and I/O."""

from __future__ import annotations

import asyncio
import time

from utils import time_slice


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def test_work_beyond_the_slice_waits_for_a_later_step() -> None:
    order: list[str] = []

    async def piece(name: str) -> None:
        await time_slice.yield_if_slice_used()
        busy(time_slice.SLICE_S * 0.6)
        order.append(name)

    # All four start in one loop step, with a plain callback (a timer, a socket) queued behind them.
    tasks = [asyncio.ensure_future(piece(f"p{i}")) for i in range(4)]
    asyncio.get_running_loop().call_soon(order.append, "other")
    await asyncio.gather(*tasks)
    # Two pieces fit in one slice; the other two waited for a later step, after the callback.
    assert order == ["p0", "p1", "other", "p2", "p3"]


async def test_work_within_the_slice_runs_without_yielding() -> None:
    ran: list[str] = []

    async def marker() -> None:
        ran.append("other")

    asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(marker()))
    for _ in range(5):
        await time_slice.yield_if_slice_used()  # no CPU spent: never a reason to wait
    assert ran == []
