"""Shared base of every exchange client: session, rate budget, retries, errors, candle parsing.

Contract used by the rest of the project (keep these names and signatures):

- ``BaseExchangeClient(timeframe="1d", base_url=None, session=None)``; async context manager;
  ``await client.close()``. Extra keyword-only options: ``retry`` (a ``RetryPolicy``; tests pass
  tiny delays; without it the process default of ``set_default_retry`` applies) and ``clock``
  (epoch seconds, for the paging windows).
- class attributes: ``name`` (registry name), ``default_base_url``, ``page_limit`` (max candles per
  request), ``weekly_monday_aligned`` (native 1w bars open Monday 00:00 UTC).
- ``await client.get_all_spot_symbols() -> list[str]``: tradable USDT markets (perpetuals for
  futures clients), leveraged tokens excluded; a failed listing raises.
- ``await client.fetch_klines(symbol, interval=None, limit=None) -> pd.DataFrame``: ``interval`` is
  one of our native names ``"4h" | "1d" | "1w"`` (default: the native interval of ``timeframe``),
  ``limit`` the number of most recent bars wanted (paginated when above ``page_limit``); keyword
  ``since`` (UTC ms, a bar's open time) asks for the bars from that one on, in the smallest pages
  that cover them (the candle store's incremental fetch). Returns a
  UTC DatetimeIndex of bar opens (unit ms, named ``timestamp``), oldest first, unique; float64
  ``open high low close volume`` in base units; the forming bar last.
  ``await client.fetch_candles(...)`` is the same as ``utils.candles.Candles`` arrays (what the kline
  cache and the candle store hold): the pages are parsed straight into arrays (``parse_candles``),
  checked by ``utils.candles.check_candles`` and tidied once; no DataFrame is built on the way.
- ``client.request_count``: HTTP requests sent by this client (for summaries and benchmarks);
  ``exchanges.rate_limit.host_request_counts()`` has the per-host totals.

A market subclass is declarations (paths, interval names, page size, row layout, time units, costs,
budget, error envelope) plus the listing parser (spec/exchanges.md, STYLE.md point 1). The paging
is uniform: windows of at most ``page_limit`` buckets going back from now, each sent with the
market's start/end parameters (and ``limit`` where it does not conflict), so KuCoin futures'
"oldest 200 of a wider window" and MEXC futures' 2000 cap never truncate a page.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import aiohttp
import numpy as np
import pandas as pd

from exchanges.errors import (
    BadCandles,
    BadResponse,
    BadSymbol,
    ExchangeError,
    IPBanned,
    RateLimited,
    RequestTimeout,
    TemporaryError,
)
from exchanges.rate_limit import (
    CONNECTIONS_PER_CLIENT,
    DEFAULT_BAN_S,
    HostBudget,
    RetryPolicy,
    UsageHeaders,
    get_budget,
    weight_limits,
)
from exchanges.retry import backoff_delay, call_with_retries
from utils.candles import (
    BAD_TIME,
    INVERTED,
    TIME_OUT_OF_RANGE,
    CandleProblem,
    Candles,
    check_candles,
    empty_candles,
    tidy,
)
from utils.config import get_base_url
from utils.time_slice import yield_if_slice_used
from utils.timeframes import OHLCV_COLUMNS, daily_bars_needed, empty_ohlcv, get_timeframe

COLUMNS: tuple[str, ...] = OHLCV_COLUMNS
_MS_PER_UNIT: dict[str, int] = {"s": 1000, "ms": 1}  # open-time units of candle rows
INTERVAL_MS: dict[str, int] = {"4h": 4 * 3_600_000, "1d": 86_400_000, "1w": 7 * 86_400_000}
LEVERAGED_SUFFIXES: tuple[str, ...] = ("UP", "DOWN", "BULL", "BEAR")
LEVERAGED_PATTERN = re.compile(r"\d+[LS]$")
ERROR_SNIPPET_CHARS = 200

RowField = int | str

# Retry policy of clients built without one (None: RetryPolicy()'s defaults); see set_default_retry.
_default_retry: RetryPolicy | None = None


def set_default_retry(policy: RetryPolicy | None) -> None:
    """Use ``policy`` for every client created from now on without an explicit ``retry``.

    Scan-level code builds its clients from the registry, so this is how tests (tiny delays) and
    unattended runs (a different timeout or attempt count) tune retries; ``None`` restores the
    defaults.
    """
    global _default_retry
    _default_retry = policy


def default_retry() -> RetryPolicy:
    """The retry policy a client gets when none is passed."""
    return _default_retry or RetryPolicy()


def is_leveraged(base: str, listed_bases: set[str] | frozenset[str] = frozenset()) -> bool:
    """A leveraged token's base: ``BTC3L``/``ETH5S``, or ``<listed base>UP/DOWN/BULL/BEAR``.

    The suffix rule needs the remainder to be a base listed in the same market (``BTCUP`` when
    ``BTC`` trades) so that real coins ending in those letters (``JUP``, ``SYRUP``) stay; with no
    listing given it applies to any remainder of two or more letters.
    """
    if LEVERAGED_PATTERN.search(base):
        return True
    for suffix in LEVERAGED_SUFFIXES:
        stem = base[: -len(suffix)]
        if base.endswith(suffix) and len(stem) >= 2 and (not listed_bases or stem in listed_bases):
            return True
    return False


def without_leveraged(
    markets: Sequence[dict], symbol: Callable[[dict], str], base: Callable[[dict], str]
) -> list[str]:
    """Symbols of ``markets`` (listing entries already selected as tradable USDT) minus leveraged tokens.

    The bases listed in the same selection decide the UP/DOWN/BULL/BEAR rule (``is_leveraged``).
    """
    bases = {base(m) for m in markets}
    return [symbol(m) for m in markets if not is_leveraged(base(m), bases)]


def empty_frame() -> pd.DataFrame:
    """The frame of a market without candles: the right columns, dtypes and index type."""
    return empty_ohlcv("ms")


def _floats(values: list[Any]) -> np.ndarray:
    """Numbers or numeric strings -> float64; anything unreadable (null, "abc") becomes NaN.

    numpy parses numeric strings in C; only a column holding something else takes pandas' slower
    element-wise coercion.
    """
    try:
        return np.asarray(values, dtype="float64")
    except (TypeError, ValueError):
        return pd.to_numeric(pd.Series(values, dtype="object"), errors="coerce").to_numpy("float64")


def connection_reason(exc: aiohttp.ClientError) -> str:
    """A short reason a trader reads (``DNS lookup of api.binance.com failed``), not aiohttp's repr."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"DNS lookup of {exc.host} failed"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port} ({exc.strerror or exc.os_error})"
    return str(exc) or type(exc).__name__


def _snippet(text: str) -> str:
    return " ".join(text.split())[:ERROR_SNIPPET_CHARS]


def _header_seconds(headers: Any, name: str) -> float | None:
    value = headers.get(name)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


# Contract sizes of futures markets, filled by listing calls: (market, base_url) -> symbol -> size.
_CONTRACT_SIZES: dict[tuple[str, str], dict[str, float]] = {}


def reset_contract_sizes() -> None:
    """Forget cached contract sizes (tests)."""
    _CONTRACT_SIZES.clear()


class BaseExchangeClient(ABC):
    """HTTP plumbing and candle normalisation shared by all markets (see the module docstring)."""

    name: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    page_limit: ClassVar[int] = 1000
    weekly_monday_aligned: ClassVar[bool] = True

    # The exchange states its limit (its listing publishes it, Binance's ``rateLimits``): until it
    # has, the table's limit is a guess and is probed (exchanges.rate_limit). Where an exchange
    # states nothing, the documented table is all there is and is trusted until a 429.
    states_limits: ClassVar[bool] = False
    # Our interval names -> the exchange's.
    intervals: ClassVar[dict[str, str]] = {}
    listing_path: ClassVar[str] = ""
    listing_params: ClassVar[dict[str, str]] = {}
    listing_weight: ClassVar[float] = 1
    klines_path: ClassVar[str] = ""
    klines_params: ClassVar[dict[str, str]] = {}
    klines_weight: ClassVar[float] = 1
    # Cost of one klines request by bars asked (ccxt-style): (at most this many bars, weight), ascending;
    # a request for more bars than the last row costs its weight; empty: ``klines_weight`` always.
    klines_cost: ClassVar[tuple[tuple[int, float], ...]] = ()
    # Closed bars never change between runs, so the candle store may keep them (False: the demo).
    stable_history: ClassVar[bool] = True
    symbol_param: ClassVar[str | None] = "symbol"
    interval_param: ClassVar[str] = "interval"
    start_param: ClassVar[str] = "startTime"
    end_param: ClassVar[str] = "endTime"
    limit_param: ClassVar[str | None] = "limit"  # None: the window alone sizes the page
    request_time_unit: ClassVar[str] = "ms"  # unit of start/end parameters: "ms" or "s"
    end_exclusive: ClassVar[bool] = False
    # Candle rows: positions (or keys) of time, open, high, low, close, volume; time unit of rows.
    row_fields: ClassVar[tuple[RowField, ...]] = (0, 1, 2, 3, 4, 5)
    row_time_unit: ClassVar[str] = "ms"
    contract_volume: ClassVar[bool] = False  # volume counted in contracts: x contract size
    # Rate budget shared by every client with the same key.
    budget_key: ClassVar[str] = ""
    budget_limit: ClassVar[float] = 1
    budget_period: ClassVar[float] = 1.0
    usage_headers: ClassVar[UsageHeaders | None] = None
    ban_statuses: ClassVar[frozenset[int]] = frozenset({418})
    rate_limit_codes: ClassVar[frozenset[str]] = frozenset()
    bad_symbol_codes: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        timeframe: str = "1d",
        base_url: str | None = None,
        session: aiohttp.ClientSession | None = None,
        *,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.timeframe = timeframe
        self.base_url = (base_url or get_base_url(self.name, self.default_base_url)).rstrip("/")
        self._session = session
        self._owns_session = session is None
        self.retry = retry or default_retry()
        self.clock = clock
        self.request_count = 0
        self._listing_lock: asyncio.Lock | None = None
        self._symbols_lock: asyncio.Lock | None = None
        self._symbols: list[str] | None = None
        # Tasks inside _get right now: close() cancels them, so that a request whose caller has gone
        # (a shielded shared fetch after a cancelled scan) cannot open a fresh, never-closed session.
        self._requesting: set[asyncio.Task] = set()
        # Set by close(): a request started afterwards (a shared fetch that was waiting on the candle
        # store when its scan was cancelled) fails instead of opening a session nobody closes.
        self._closed = False

    async def __aenter__(self) -> BaseExchangeClient:
        self._closed = False
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Cancel requests still in flight on this client, then close the session if it created it."""
        self._closed = True
        current = asyncio.current_task()
        orphans = [t for t in self._requesting if t is not current and not t.done()]
        for task in orphans:
            task.cancel()
        if orphans:
            await asyncio.wait(orphans)
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------------ declarations as methods

    def _get_interval_map(self) -> dict[str, str]:
        """Our native interval names (``4h``, ``1d``, ``1w``) -> the exchange's names."""
        return dict(self.intervals)

    def native_interval(self, timeframe: str | None = None) -> str:
        """The interval fetched for ``timeframe`` (utils.timeframes); 1d where 1w is not Monday aligned."""
        native = get_timeframe(timeframe or self.timeframe).native
        if native == "1w" and not (self.weekly_monday_aligned and "1w" in self._get_interval_map()):
            return "1d"
        return native

    def _get_fetch_limit(self) -> int:
        """Default number of bars fetched for ``self.timeframe`` (daily bars when built from them)."""
        tf = get_timeframe(self.timeframe)
        if self.native_interval() == "1d" and tf.daily_based:
            return daily_bars_needed(tf)
        return tf.bars

    @property
    def budget(self) -> HostBudget:
        return get_budget(self.budget_key or self.name, self.budget_limit, self.budget_period,
                          confirmed=not self.states_limits)

    def _klines_weight(self, count: int) -> float:
        """Cost of one klines request of ``count`` bars in the budget's units (``klines_cost``)."""
        for most, weight in self.klines_cost:
            if count <= most:
                return weight
        return self.klines_cost[-1][1] if self.klines_cost else self.klines_weight

    def _klines_url_path(self, symbol: str) -> str:
        return self.klines_path

    def _kline_query(self, symbol: str, interval: str, start_ms: int, end_ms: int, count: int) -> dict:
        """Query of one page: bars opening in ``[start_ms, end_ms]``, at most ``count`` of them."""
        end = end_ms + 1 if self.end_exclusive else end_ms
        if self.request_time_unit == "s":
            start, end = -(-start_ms // 1000), end // 1000
        else:
            start = start_ms
        params: dict[str, Any] = dict(self.klines_params)
        if self.symbol_param:
            params[self.symbol_param] = symbol
        params[self.interval_param] = interval
        params[self.start_param] = str(start)
        params[self.end_param] = str(end)
        if self.limit_param:
            params[self.limit_param] = str(count)
        return params

    # ------------------------------------------------------------------ error envelope hooks

    def _error_fields(self, body: Any) -> tuple[str | None, str | None]:
        """The exchange's own (code, message) in an error body; Binance style by default."""
        if isinstance(body, dict):
            code = body.get("code")
            msg = body.get("msg") or body.get("message")
            return (None if code is None else str(code)), (None if msg is None else str(msg))
        return None, None

    def _envelope_error(self, body: Any) -> bool:
        """True when an HTTP 200 body is an error envelope (Binance style: a ``code``/``msg`` dict)."""
        if not (isinstance(body, dict) and "code" in body and "msg" in body):
            return False
        return str(body["code"]) not in ("0", "200")

    def _unwrap(self, body: Any) -> Any:
        """The payload inside a successful envelope (the body itself by default)."""
        return body

    def _is_bad_symbol(self, code: str | None, message: str | None, status: int) -> bool:
        return code in self.bad_symbol_codes

    # ------------------------------------------------------------------ HTTP

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ExchangeError(self.name, "client closed: its scan ended before this request")
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=CONNECTIONS_PER_CLIENT)
            self._session = aiohttp.ClientSession(connector=connector)
            self._owns_session = True
        return self._session

    def _check_ban(self, budget: HostBudget, symbol: str | None) -> None:
        left = budget.ban_remaining()
        if left > 0:
            raise IPBanned(
                self.name, f"IP banned, no request sent ({left:.0f}s left)", until=budget.banned_until,
                symbol=symbol,
            )

    def _wait_seconds(self, exc: Exception, attempt: int) -> float:
        """Seconds before the next attempt: the exchange's Retry-After, else the policy's backoff."""
        if isinstance(exc, RateLimited) and exc.retry_after:
            return float(exc.retry_after)
        return backoff_delay(self.retry, attempt)

    def _should_retry(self, exc: Exception) -> bool:
        """Only temporary errors, and no Retry-After longer than the policy sits through."""
        if not isinstance(exc, TemporaryError):
            return False
        return not (isinstance(exc, RateLimited) and (exc.retry_after or 0) > self.retry.max_retry_after)

    async def _get(self, path: str, params: dict | None = None, *, weight: float = 1,
                   symbol: str | None = None) -> Any:
        """GET ``path`` within the budget, retrying temporary errors; the unwrapped JSON payload."""
        task = asyncio.current_task()
        if task is not None:
            self._requesting.add(task)
        try:
            return await call_with_retries(
                lambda: self._send(path, params or {}, weight, symbol),
                self.retry.attempts,
                self._should_retry,
                self._wait_seconds,
            )
        finally:
            self._requesting.discard(task)

    async def _send(self, path: str, params: dict, weight: float, symbol: str | None) -> Any:
        budget = self.budget
        self._check_ban(budget, symbol)
        await budget.acquire(weight)
        self._check_ban(budget, symbol)
        self.request_count += 1
        budget.request_count += 1
        timeout = aiohttp.ClientTimeout(total=self.retry.timeout)
        headers = None
        try:
            async with self._get_session().get(self.base_url + path, params=params, timeout=timeout) as resp:
                raw = await resp.read()
                status, headers = resp.status, resp.headers
        except TimeoutError:
            message = f"no answer within {self.retry.timeout}s"
            raise RequestTimeout(self.name, message, symbol=symbol) from None
        except aiohttp.ClientError as exc:
            raise TemporaryError(self.name, f"connection failed: {connection_reason(exc)}", symbol=symbol) from None
        finally:
            # The request's flight ends now, answered or not; only an answer carries usage headers.
            answer = budget.observe(self.usage_headers if headers is not None else None, dict(headers or {}))
        await yield_if_slice_used()  # decoding is the loop's heaviest work: take turns (utils.time_slice)
        payload = self._interpret(status, headers, raw.decode("utf-8", errors="replace"), symbol)
        budget.accept(answer)  # served: neither an error nor a rate-limit envelope
        return payload

    def _rate_limited(self, message: str, retry_after: float | None, headers: Any, kw: dict) -> RateLimited:
        """A RateLimited error. The budget lowers the limit it believes (from the usage the answer
        reports, else by halving it), and a Retry-After holds every client of the budget that long."""
        budget = self.budget
        usage = self.usage_headers
        budget.rate_limited(usage.stated_limit(dict(headers or {})) if usage is not None else None)
        if retry_after:
            budget.pause(retry_after)
        return RateLimited(self.name, message, retry_after=retry_after, **kw)

    def _interpret(self, status: int, headers: Any, text: str, symbol: str | None) -> Any:
        """Translate one HTTP answer into the payload or a typed error (STYLE.md point 2)."""
        retry_after = _header_seconds(headers, "Retry-After")
        try:
            body: Any = json.loads(text)
            parsed = True
        except ValueError:
            body, parsed = None, False
        code, message = self._error_fields(body) if parsed else (None, None)
        message = message or _snippet(text) or f"HTTP {status}"
        kw = {"status": status, "code": code, "symbol": symbol}
        if status in self.ban_statuses:
            until = time.time() + (retry_after if retry_after is not None else DEFAULT_BAN_S)
            self.budget.ban(until)
            raise IPBanned(self.name, f"IP banned: {message}", until=until, **kw)
        if status == 429:
            raise self._rate_limited(message, retry_after, headers, kw)
        if status >= 500:
            raise TemporaryError(self.name, message, **kw)
        if not parsed:
            raise BadResponse(self.name, f"body is not JSON: {_snippet(text)!r}", **kw)
        if status >= 400 or self._envelope_error(body):
            if code is not None and code in self.rate_limit_codes:
                raise self._rate_limited(message, retry_after, headers, kw)
            if self._is_bad_symbol(code, message, status):
                raise BadSymbol(self.name, message, **kw)
            raise BadResponse(self.name, message, **kw)
        try:
            return self._unwrap(body)
        except (KeyError, TypeError, IndexError) as exc:
            message = f"unexpected body shape ({exc!r}): {_snippet(text)!r}"
            raise BadResponse(self.name, message, **kw) from None

    def parse_body(self, text: str, symbol: str | None = None) -> Any:
        """The payload of an HTTP 200 body, or the typed error its envelope carries (fixture tests)."""
        return self._interpret(200, {}, text, symbol)

    # ------------------------------------------------------------------ candles

    def _candle_rows(self, payload: Any) -> Sequence[Any]:
        """The candle rows in ``payload`` (a list of arrays or objects by default)."""
        return payload

    def parse_candles(self, payload: Any, symbol: str | None = None, contract_size: float = 1.0) -> Candles:
        """Normalise one klines payload into compact candles: oldest first, unique open times (UTC ms).

        Values may be strings or numbers. What ``utils.candles.check_candles`` rejects (non-finite or
        negative values, high < low, open times missing or out of range) raises ``BadCandles`` (a
        ``BadResponse``); zero volume is kept (the scanner decides). ``contract_size`` converts
        contract volume to base units. No DataFrame is built on the way.
        """
        try:
            rows = list(self._candle_rows(payload))
            if not rows:
                return empty_candles()
            columns = [[row[f] for row in rows] for f in self.row_fields]
        except (KeyError, TypeError, IndexError) as exc:
            message = f"candle rows have an unexpected shape ({exc!r})"
            raise BadCandles(self.name, message, symbol=symbol) from None
        numbers = [_floats(col) for col in columns]
        times, values = numbers[0], np.column_stack(numbers[1:])
        opens_ms = times * _MS_PER_UNIT[self.row_time_unit]
        problem = check_candles(values, opens_ms)
        if problem is not None:
            raise BadCandles(self.name, self._problem_message(problem, times, columns), symbol=symbol)
        if contract_size != 1.0:
            values[:, 4] *= contract_size
        return tidy(opens_ms.astype("int64"), values)

    @staticmethod
    def _problem_message(problem: CandleProblem, times: np.ndarray, columns: list[list[Any]]) -> str:
        """What a trader reads about a bad payload: the open time (as sent) and the value at fault."""
        if problem.kind == BAD_TIME:
            return "candle with a missing or non-numeric open time"
        if problem.kind == TIME_OUT_OF_RANGE:
            return "candle with an open time out of range"
        opened = int(times[problem.row])
        if problem.kind == INVERTED:
            return f"candle {opened} has high < low"
        raw = columns[problem.column + 1][problem.row]
        return f"candle {opened} has {COLUMNS[problem.column]}={raw!r}"

    def parse_klines(
        self, payload: Any, symbol: str | None = None, contract_size: float = 1.0
    ) -> pd.DataFrame:
        """``parse_candles`` as a normalised OHLCV frame (float64 columns, UTC ms index)."""
        return self.parse_candles(payload, symbol=symbol, contract_size=contract_size).frame()

    async def _contract_size(self, symbol: str) -> float:
        """Base units per contract of ``symbol``; fetches the listing once when it is not known."""
        if not self.contract_volume:
            return 1.0
        key = (self.name, self.base_url)
        sizes = _CONTRACT_SIZES.get(key, {})
        if symbol not in sizes:
            if self._listing_lock is None:
                self._listing_lock = asyncio.Lock()
            async with self._listing_lock:
                if symbol not in _CONTRACT_SIZES.get(key, {}):
                    await self._list_symbols()
            sizes = _CONTRACT_SIZES.get(key, {})
        if symbol not in sizes:
            raise BadSymbol(self.name, "not in the contract listing", symbol=symbol)
        return sizes[symbol]

    async def fetch_klines(
        self, symbol: str, interval: str | None = None, limit: int | None = None, *, since: int | None = None
    ) -> pd.DataFrame:
        """``fetch_candles`` as a normalised OHLCV frame (see the module docstring)."""
        return (await self.fetch_candles(symbol, interval, limit, since=since)).frame()

    async def fetch_candles(
        self, symbol: str, interval: str | None = None, limit: int | None = None, *, since: int | None = None
    ) -> Candles:
        """The last ``limit`` bars of ``symbol`` (fewer for a younger market) as compact candles.

        With ``since`` (the open time in UTC ms of a bar, usually the last one the caller stored) the
        bars from that one to the forming one: each page asks for just the bars it covers (the
        smallest ``limit``, which is the cheapest on Binance USDⓈ-M) and the oldest page starts
        exactly at ``since`` in the exchange's own start parameter.
        """
        interval = interval or self.native_interval()
        names = self._get_interval_map()
        if interval not in names or interval not in INTERVAL_MS:
            raise ValueError(f"{self.name}: interval {interval!r} not one of {sorted(names)}")
        step = INTERVAL_MS[interval]
        end = int(self.clock() * 1000)
        if since is not None:
            missing = max((end - int(since)) // step + 1, 1)
            limit = missing if limit is None else min(int(limit), missing)
        limit = int(limit or self._get_fetch_limit())
        if limit <= 0:
            return empty_candles()
        size = await self._contract_size(symbol)
        pages: list[Candles] = []
        remaining = limit
        while remaining > 0:
            count = min(remaining, self.page_limit)
            start = end - count * step + 1
            if since is not None and remaining == count:
                start = max(start, int(since))
            payload = await self._get(
                self._klines_url_path(symbol),
                self._kline_query(symbol, names[interval], start, end, count),
                weight=self._klines_weight(count),
                symbol=symbol,
            )
            page = self.parse_candles(payload, symbol=symbol, contract_size=size)
            if not len(page):
                break
            pages.append(page)
            remaining -= count
            if int(page.stamps[0]) >= start + step:
                break  # nothing at the start of the window: the market is younger than that
            end = start - 1
        if not pages:
            return empty_candles()
        if len(pages) > 1:
            pages = [tidy(np.concatenate([p.stamps for p in pages[::-1]]),
                          np.concatenate([p.values for p in pages[::-1]]))]
        return pages[0].tail(limit)

    # ------------------------------------------------------------------ listing

    async def _fetch_listing(self) -> Any:
        """The raw listing payload (one request by default; Bybit linear follows its cursor)."""
        return await self._get(self.listing_path, dict(self.listing_params), weight=self.listing_weight)

    @abstractmethod
    def parse_symbols(self, payload: Any) -> list[str]:
        """Tradable USDT markets (perpetuals on futures) in a listing payload, leveraged tokens excluded."""

    def parse_contract_sizes(self, payload: Any) -> dict[str, float]:
        """Symbol -> base units per contract, for markets whose volume is counted in contracts."""
        return {}

    def _published_limits(self, payload: Any) -> list[tuple[float, float]]:
        """``(weight, seconds)`` request-weight limits the listing publishes (Binance style by default).

        Binance spot and USD-M (and MEXC spot, where it fills the list) put them in
        ``exchangeInfo.rateLimits``; a listing without them gives none. Unreadable entries are
        skipped: the limits only ever lower the budget, they never fail a listing.
        """
        rules = payload.get("rateLimits") if isinstance(payload, dict) else None
        return weight_limits(rules) if isinstance(rules, list) else []

    async def get_all_spot_symbols(self) -> list[str]:
        """Tradable USDT markets of this client (perpetuals for futures clients), sorted.

        Listed once per client: every timeframe scanned with one client shares one listing call
        (MEXC futures' listing alone costs as much as 100 klines calls). A failed listing is not
        remembered, so the next caller asks again.
        """
        if self._symbols_lock is None:
            self._symbols_lock = asyncio.Lock()
        async with self._symbols_lock:
            if self._symbols is None:
                self._symbols = await self._list_symbols()
        return list(self._symbols)

    async def _list_symbols(self) -> list[str]:
        """One listing call: the symbols, the contract sizes of futures markets, the published limits.

        Only the reading of the exchange's payload is translated into ``BadResponse``: a listing
        page without the fields it should have (``_fetch_listing`` following a cursor) or entries
        of the wrong type. The request itself (budget, retries, session) runs outside that
        handler, so a fault of our own surfaces as itself, never as "an unexpected shape".
        """
        try:
            payload = await self._fetch_listing()
        except (KeyError, TypeError, IndexError) as exc:
            raise BadResponse(self.name, f"listing page has an unexpected shape ({exc!r})") from None
        try:
            symbols = self.parse_symbols(payload)
            sizes = self.parse_contract_sizes(payload) if self.contract_volume else {}
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise BadResponse(self.name, f"listing has an unexpected shape ({exc!r})") from None
        if sizes:
            _CONTRACT_SIZES.setdefault((self.name, self.base_url), {}).update(sizes)
        published = self._published_limits(payload)
        for limit, period in published:
            self.budget.learn_limit(limit, period, "the exchange's published rateLimits")
        if not published:
            self.budget.trust_table()  # the listing states no limit: the table is all there is
        return sorted(symbols)


__all__ = [
    "BaseExchangeClient",
    "COLUMNS",
    "INTERVAL_MS",
    "backoff_delay",
    "default_retry",
    "empty_frame",
    "is_leveraged",
    "without_leveraged",
    "reset_contract_sizes",
    "set_default_retry",
]
