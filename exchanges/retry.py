"""The retry loop of every exchange request: bounded attempts, capped exponential backoff with jitter.

Ours rather than tenacity's: the loop is a dozen lines, and the library version it replaced reached
into tenacity 9 internals (``iter_state``, ``_retry_state``) that tenacity 8.2 (allowed by the
requirements) does not have, so every request failed there. What the loop guarantees:

- at most ``policy.attempts`` calls (the first one included); only errors ``should_retry`` accepts
  are retried, anything else (a permanent exchange error, a bug of ours) propagates at once;
- between attempts it sleeps ``wait(error, attempt)`` (the caller's rule: ``Retry-After`` when the
  exchange gave one, else ``backoff_delay``); the sleep happens after the ``except`` block, so no
  traceback or frame of a failed attempt is kept alive meanwhile and a request leaves no cyclic
  garbage behind;
- cancellation is never swallowed or retried: ``CancelledError`` is not an ``Exception``, and a
  cancelled sleep ends the loop.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from exchanges.rate_limit import RetryPolicy

T = TypeVar("T")

__all__ = ["RetryPolicy", "backoff_delay", "call_with_retries"]


def backoff_delay(policy: RetryPolicy, attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): capped exponential plus jitter.

    ``base * 2**(attempt-1)``, at most ``backoff_cap``, plus a uniform ``[0, jitter]`` so that many
    requests failing together do not come back together.
    """
    step = min(policy.backoff_cap, policy.backoff_base * 2 ** (attempt - 1))
    return step + (rng or random).uniform(0.0, policy.jitter)


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    attempts: int,
    should_retry: Callable[[Exception], bool],
    wait: Callable[[Exception, int], float],
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> T:
    """``await call()`` until it returns, at most ``attempts`` times (module docstring).

    ``should_retry(error)`` decides whether a failure is worth another attempt; ``wait(error,
    attempt)`` says how long to sleep first (``attempt`` is the number of the attempt that failed).
    The last error is re-raised unchanged.
    """
    attempt = 1
    while True:
        try:
            return await call()
        except Exception as exc:
            if attempt >= attempts or not should_retry(exc):
                raise
            delay = wait(exc, attempt)
        await sleep(delay)
        attempt += 1
