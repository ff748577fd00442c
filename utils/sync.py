"""Run a coroutine from synchronous code (scripts, an old notebook habit of calling without await).

Notebook cells should ``await`` the scan functions directly. This wrapper exists for plain scripts
and for older habits: with no running loop it uses ``asyncio.run``; inside a running loop (Jupyter)
it applies nest_asyncio where that works (Python < 3.12) and otherwise says to use ``await``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion and return its result."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    if sys.version_info >= (3, 12):
        coro.close()
        raise RuntimeError(
            "an event loop is already running (Jupyter?): use `await` on the scan function instead"
        )
    import nest_asyncio

    nest_asyncio.apply(loop)
    return loop.run_until_complete(coro)
