"""No full garbage collections while a scan runs: they stall the event loop.

A full (generation 2) collection walks every tracked object in the process. During a scan that is
the candle cache, the frames in flight and whatever the caller holds; at about 0.5 us per object it
stopped the event loop for 50 to 280 ms at a time in the 2,000-symbol benchmark (bench/scan.py),
while the loop had requests to answer. Young collections (generations 0 and 1) only walk objects
created since the last one and stay at a few milliseconds, so they keep running.

``full_collections_paused()`` lifts the generation-2 threshold while at least one scan is running
in the process and puts the caller's threshold back when the last one ends. Cycles that reach
generation 2 meanwhile (a few per request, from the retry machinery) wait for the next full
collection after the scans; the memory benchmark shows what that costs.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# A generation-2 threshold that a scan never reaches (it counts generation-1 collections).
PAUSED_THRESHOLD = 1 << 30

_lock = threading.Lock()
_active = 0
_saved: int | None = None


@contextmanager
def full_collections_paused() -> Iterator[None]:
    """While inside, the collector skips full collections; nesting and threads are counted."""
    global _active, _saved
    with _lock:
        if _active == 0:
            thresholds = gc.get_threshold()
            _saved = thresholds[2]
            gc.set_threshold(thresholds[0], thresholds[1], PAUSED_THRESHOLD)
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _saved is not None:
                young, middle, _ = gc.get_threshold()
                gc.set_threshold(young, middle, _saved)
                _saved = None


def active_scans() -> int:
    """How many scans in this process are inside ``full_collections_paused`` (for tests)."""
    return _active
