"""Cooperative time slices for CPU work done on the event loop.

asyncio runs, in one step, every callback that is ready when the step starts. When many answers
arrive together (several exchanges at full speed), decoding them all in one step stalled the loop
for 100-190 ms, and timers and other sockets waited that long (5 exchanges at full speed in
bench/scan.py; 69 ms with the slices). ``await yield_if_slice_used()`` before
a piece of CPU work defers it to a later step once the current step has spent ``SLICE_S`` on such
work, so timers and I/O get their turn in between. The total work is the same; only its order
changes.
"""

from __future__ import annotations

import asyncio
import time
import weakref

SLICE_S = 0.01  # CPU work on the loop per step before later pieces are deferred (bench: 20 ms left 116 ms stalls)

_started: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, float] = weakref.WeakKeyDictionary()


def _end_slice(loop: asyncio.AbstractEventLoop) -> None:
    _started.pop(loop, None)


async def yield_if_slice_used() -> None:
    """Return at once while the current loop step has CPU budget left; otherwise wait for a later step."""
    loop = asyncio.get_running_loop()
    while True:
        now = time.perf_counter()
        started = _started.get(loop)
        if started is None:
            _started[loop] = now
            loop.call_soon(_end_slice, loop)  # runs first in the next step: a fresh slice there
            return
        if now - started < SLICE_S:
            return
        await asyncio.sleep(0)
