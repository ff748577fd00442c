"""Full collections are paused while scans run and the caller's threshold comes back afterwards."""

from __future__ import annotations

import gc
import threading

from scanner import gc_guard
from scanner.cache import KlineCache
from scanner.main import scan_exchange


def test_full_collections_are_paused_inside_and_restored_after() -> None:
    before = gc.get_threshold()
    with gc_guard.full_collections_paused():
        assert gc.get_threshold()[2] == gc_guard.PAUSED_THRESHOLD
        assert gc.get_threshold()[:2] == before[:2]
    assert gc.get_threshold() == before


def test_overlapping_users_restore_only_when_the_last_one_leaves() -> None:
    before = gc.get_threshold()
    outer = gc_guard.full_collections_paused()
    inner = gc_guard.full_collections_paused()
    outer.__enter__()
    inner.__enter__()
    outer.__exit__(None, None, None)
    assert gc.get_threshold()[2] == gc_guard.PAUSED_THRESHOLD  # the inner user is still running
    inner.__exit__(None, None, None)
    assert gc.get_threshold() == before and gc_guard.active_scans() == 0


def test_users_in_other_threads_are_counted_too() -> None:
    before = gc.get_threshold()
    entered, release = threading.Event(), threading.Event()

    def other() -> None:
        with gc_guard.full_collections_paused():
            entered.set()
            release.wait(5)

    thread = threading.Thread(target=other)
    thread.start()
    entered.wait(5)
    with gc_guard.full_collections_paused():
        pass
    assert gc.get_threshold()[2] == gc_guard.PAUSED_THRESHOLD
    release.set()
    thread.join(5)
    assert gc.get_threshold() == before


async def test_a_scan_pauses_full_collections_while_it_runs_and_restores_them() -> None:
    before = gc.get_threshold()
    seen: list[int] = []
    gc.callbacks.append(lambda phase, info: seen.append(gc.get_threshold()[2]) if phase == "start" else None)
    try:
        result = await scan_exchange("demo", "1d", "test_bar", cache=KlineCache(), progress=False)
    finally:
        gc.callbacks.pop()
    assert result.summaries[0].fetched > 0
    assert gc_guard.PAUSED_THRESHOLD in seen  # collections ran during the scan with the lifted threshold
    assert gc.get_threshold() == before
