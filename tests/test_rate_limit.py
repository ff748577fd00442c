"""Budget logic of exchanges/rate_limit.py: windows never over the limit, flight cap, usage headers,
pauses, bans and the environment override. Pure asyncio: no server, tiny periods."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from exchanges import rate_limit
from exchanges.rate_limit import HostBudget, UsageHeaders, configure_budget, get_budget, limit_override

USED = UsageHeaders(used="X-Used")
REMAINING = UsageHeaders(remaining="X-Left", limit="X-Limit", reset="X-Reset", reset_kind="delta_ms")


pytestmark = pytest.mark.usefixtures("fresh_exchange_state")


async def _request(budget: HostBudget, weight: float, answer_after: float, log: list) -> None:
    """Acquire, 'send', get the answer after ``answer_after`` s; log (admitted, answered, weight)."""
    await budget.acquire(weight)
    admitted = time.time()
    await asyncio.sleep(answer_after)
    budget.observe(None, {})
    log.append((admitted, time.time(), weight))


def _worst_window(times_weights: list[tuple[float, float]], period: float) -> float:
    """Largest total weight charged within any window [t, t + period) (fixed at any phase, or sliding)."""
    points = sorted(times_weights)
    return max(sum(w for t, w in points if start <= t < start + period) for start, _ in points)


async def test_a_burst_of_concurrent_acquires_never_puts_more_than_the_limit_in_any_window() -> None:
    period, limit = 0.3, 10
    budget = configure_budget("burst", limit, period, margin=1.0)
    rng = random.Random(7)
    log: list = []
    await asyncio.gather(*(_request(budget, rng.choice([1, 2]), rng.uniform(0, 0.03), log) for _ in range(60)))
    total = sum(w for _, _, w in log)
    # Whichever instant in [admitted, answered] the exchange charges a request at, no window is over.
    assert _worst_window([(a, w) for a, _, w in log], period) <= limit
    assert _worst_window([(b, w) for _, b, w in log], period) <= limit
    # ... and the budget was really binding: the last request waited for the windows it needed.
    first = min(a for a, _, _ in log)
    assert max(a for a, _, _ in log) - first >= (total / limit - 1) * period * 0.9


async def test_full_bursts_are_allowed_up_to_the_allowance() -> None:
    budget = configure_budget("full", 20, 5.0, margin=0.5)  # allowance 10
    await budget.acquire(1)  # the first request probes alone
    budget.observe(None, {})
    started = time.perf_counter()
    await asyncio.gather(*(budget.acquire(1) for _ in range(9)))
    assert time.perf_counter() - started < 0.5
    assert budget.in_use() == pytest.approx(10)


async def test_requests_in_flight_are_capped_per_budget() -> None:
    budget = HostBudget("cap", 1000, 1.0, margin=1.0, max_in_flight=3)
    peak = 0

    async def one() -> None:
        nonlocal peak
        await budget.acquire(1)
        peak = max(peak, budget.in_flight())
        await asyncio.sleep(0.01)
        budget.observe(None, {})

    await asyncio.gather(*(one() for _ in range(20)))
    assert peak == 3
    assert budget.in_flight() == 0


async def test_a_task_that_ends_without_an_answer_frees_its_flight() -> None:
    budget = HostBudget("lost", 1000, 1.0, margin=1.0, max_in_flight=1)

    async def lost() -> None:
        await budget.acquire(1)
        raise ConnectionError("no answer")

    with pytest.raises(ConnectionError):
        await asyncio.create_task(lost())
    await asyncio.sleep(0)  # done callbacks run
    await asyncio.wait_for(budget.acquire(1), 0.5)


async def test_a_used_weight_header_above_our_own_use_holds_other_users_weight_for_a_period() -> None:
    budget = configure_budget("shared", 10, 0.4, margin=1.0)
    budget.observe(USED, {"x-used": "8"})  # nothing of ours in flight: 8 is someone else's
    assert budget.in_use() == pytest.approx(8)
    started = time.perf_counter()
    await budget.acquire(2)  # fits beside the 8
    assert time.perf_counter() - started < 0.1
    budget.observe(None, {})
    await budget.acquire(1)  # 8 + 2 + 1 > 10: waits for the other users' weight to expire
    assert time.perf_counter() - started >= 0.35


async def test_a_used_weight_header_that_our_own_requests_explain_adds_no_pause() -> None:
    budget = configure_budget("own", 10, 60.0, margin=1.0)
    for _ in range(3):
        await budget.acquire(2)
        budget.observe(USED, {"X-Used": str(int(budget.in_use()))})
    assert budget.paused_until == 0.0
    assert budget.in_use() == pytest.approx(6)


async def test_a_used_weight_header_at_the_limit_pauses_until_room_frees() -> None:
    budget = configure_budget("full-window", 4, 30.0, margin=1.0)
    budget.observe(USED, {"X-Used": "4"})
    assert time.time() + 29 < budget.paused_until <= time.time() + 30


async def test_a_remaining_header_limits_admissions_to_the_room_it_reports() -> None:
    budget = configure_budget("room", 1000, 10.0, margin=0.9)  # our allowance would allow far more
    await budget.acquire(1)
    budget.observe(REMAINING, {"X-Left": "103", "X-Limit": "1000", "X-Reset": "300"})  # room 103 - 100 = 3
    await asyncio.gather(*(budget.acquire(1) for _ in range(3)))
    started = time.perf_counter()
    await budget.acquire(1)  # no room left until the window resets (0.3 s + slack)
    assert time.perf_counter() - started >= 0.3


async def test_a_remaining_header_at_the_reserve_pauses_until_the_reset() -> None:
    budget = configure_budget("reserve", 100, 10.0, margin=0.9)
    budget.observe(REMAINING, {"X-Left": "10", "X-Limit": "100", "X-Reset": "2000"})
    assert time.time() + 1.9 < budget.paused_until <= time.time() + 2.0 + rate_limit.PAUSE_SLACK_S


async def test_a_retry_after_pause_holds_every_request() -> None:
    budget = configure_budget("retry", 1000, 1.0, margin=1.0)
    budget.pause(0.2)
    started = time.perf_counter()
    await budget.acquire(1)
    assert time.perf_counter() - started >= 0.2


def test_a_ban_is_shared_and_ends_at_its_time() -> None:
    budget = get_budget("banned", 10, 1.0)
    budget.ban(time.time() + 5)
    assert 4 < get_budget("banned", 10, 1.0).ban_remaining() <= 5
    budget.ban(time.time() - 1)  # an earlier end never shortens a ban
    assert budget.ban_remaining() > 4


def test_env_override_replaces_the_published_limit(monkeypatch) -> None:
    monkeypatch.setenv("SCANNER_BINANCE_SPOT_RATE_LIMIT", "120/6")
    budget = get_budget("binance_spot", 6000, 60.0)
    assert (budget.limit, budget.period, budget.capacity) == (120, 6, pytest.approx(108))
    monkeypatch.setenv("SCANNER_BYBIT_RATE_LIMIT", "50/2/1")
    assert get_budget("bybit", 600, 5.0).capacity == 50


@pytest.mark.parametrize("value", ["120", "abc/6", "120/0", "120/6/1.5", "1/2/3/4"])
def test_a_malformed_env_override_is_an_error_naming_the_variable(monkeypatch, value) -> None:
    monkeypatch.setenv("SCANNER_KUCOIN_RATE_LIMIT", value)
    with pytest.raises(ValueError, match="SCANNER_KUCOIN_RATE_LIMIT"):
        limit_override("kucoin")


def test_no_env_override_keeps_the_published_limit() -> None:
    assert limit_override("gateio_spot") is None
    assert get_budget("gateio_spot", 200, 10.0).limit == 200
