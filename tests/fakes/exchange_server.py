"""A local aiohttp server speaking the public market-data REST APIs of the ten scanner markets.

Per spec/exchanges.md: every market lives under ``http://127.0.0.1:<port>/<market>``, answers its
listing, klines and 24h-ticker endpoints in the exchange's own shapes, units and order, enforces the
exchange's published rate budget (scalable / overridable) with its own over-limit answers and usage
headers, and can inject faults. Candles are deterministic (see exchange_data.py).

Usage::

    async with FakeExchangeServer(symbols=200, now=datetime(2025, 1, 1, tzinfo=UTC)) as server:
        url = server.base_url("binance_spot")          # http://127.0.0.1:<port>/binance_spot

    with FakeExchangeServer(symbols=2000, latency=0.05).run_in_thread() as server:
        os.environ.update(server.env())                 # server runs in its own thread and loop

    python -m tests.fakes.exchange_server --port 8765 --symbols 2000 --latency-ms 50
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import replace
from datetime import datetime
from typing import Any, Iterator, Mapping

import numpy as np
from aiohttp import web

from tests.fakes.exchange_data import DAY_MS, SeriesStore, SymbolInfo, base_names, make_symbol
from tests.fakes.exchange_faults import (
    BODY_KINDS,
    DEFAULT_SHORT_BARS,
    DEFAULT_TIMEOUT_SECONDS,
    STATUS_KINDS,
    Fault,
    FaultBook,
    spoil_values,
)
from tests.fakes.exchange_limits import Decision, RateLimiter, RateRule
from tests.fakes.exchange_markets import (
    KLINES,
    LISTING,
    MARKET_CLASSES,
    MARKETS,
    TICKERS,
    BadRequest,
    Context,
    Market,
    Reply,
)

HOST = "127.0.0.1"
DEFAULT_SYMBOLS = 50
DEFAULT_429_RETRY_AFTER = 1
DEFAULT_418_RETRY_AFTER = 120
SHUTDOWN_TIMEOUT = 0.5
HTML_PAGE = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"
QUERY_LOG_SIZE = 100_000  # klines queries remembered for tests (the newest ones)
_UNSET: Any = object()


def _to_ms(now: datetime | float | None) -> int:
    if now is None:
        return int(time.time() * 1000)
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware (UTC)")
        return int(now.timestamp() * 1000)
    return int(float(now) * 1000)


class FakeExchangeServer:
    """The fake exchanges on one local port; see the module docstring."""

    def __init__(
        self,
        symbols: int | dict[str, int] = DEFAULT_SYMBOLS,
        now: datetime | float | None = None,
        latency: float = 0.0,
        seed: int = 0,
        markets: list[str] | None = None,
        history_days: int = 1200,
        *,
        rate_limit_scale: float = 1.0,
        rate_limits: bool = True,
        port: int = 0,
    ) -> None:
        unknown = set(markets or ()) - set(MARKETS)
        if unknown:
            raise ValueError(f"unknown markets {sorted(unknown)}; known: {MARKETS}")
        self.markets: list[str] = list(markets or MARKETS)
        self.seed = seed
        self.history_days = history_days
        self.latency = latency
        self.market_latency: dict[str, float] = {}
        self._symbol_counts = symbols
        self._protocols: dict[str, Market] = {m: MARKET_CLASSES[m]() for m in self.markets}
        self.rules: dict[str, RateRule] = {
            m: replace(p.rule.scaled(rate_limit_scale), enabled=rate_limits) for m, p in self._protocols.items()
        }
        self._limiter = RateLimiter()
        self._faults = FaultBook(seed)
        self._store = SeriesStore()
        self._origin_day: int | None = None  # listing days count back from the first clock setting
        self._port = port
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self.set_now(now)
        self.reset_counters()

    # -- data -------------------------------------------------------------------------------------
    @property
    def now_ms(self) -> int:
        return self._now_ms

    def set_now(self, now: datetime | float | None) -> None:
        """Move the server clock (the forming bar follows it); symbol tables are rebuilt.

        Listing days stay where the first clock put them and each series extends without changing
        its past, so moving the clock a day on is "one simulated day later" of the same markets.
        """
        self._now_ms = _to_ms(now)
        if self._origin_day is None:
            self._origin_day = self._now_ms // DAY_MS
        now_day = self._origin_day
        self.symbols: dict[str, list[SymbolInfo]] = {}
        self._by_name: dict[str, dict[str, SymbolInfo]] = {}
        for market, proto in self._protocols.items():
            count = self._symbol_counts
            count = count.get(market, DEFAULT_SYMBOLS) if isinstance(count, dict) else count
            common = dict(seed=self.seed, now_day=now_day, history_days=self.history_days,
                          contract_volume=proto.contract_volume)
            infos = [make_symbol(market, proto.symbol_name(b, "USDT"), b, "USDT", usdt=True, **common)
                     for b in base_names(count)]
            infos += [make_symbol(market, sym or proto.symbol_name(b, q), b, q, usdt=False, attrs=attrs, **common)
                      for b, q, sym, attrs in proto.distractors()]
            self.symbols[market] = infos
            self._by_name[market] = {i.symbol: i for i in infos}

    def usdt_symbols(self, market: str) -> list[str]:
        """The symbols a correct client keeps (tradable USDT markets, no distractors)."""
        return [i.symbol for i in self.symbols[market] if i.usdt]

    def symbol_info(self, market: str, symbol: str) -> SymbolInfo:
        return self._by_name[market][symbol]

    def bars(self, market: str, symbol: str, interval: str):
        """The full generated series (``exchange_data.Bars``) of one symbol, for test expectations."""
        return self._store.bars(market, self.symbol_info(market, symbol), interval, self._now_ms)

    # -- configuration ----------------------------------------------------------------------------
    def set_rate_limit(
        self,
        market: str,
        capacity: float | None = None,
        window: float | None = None,
        *,
        ban_seconds: float | None = _UNSET,
        enabled: bool | None = None,
    ) -> None:
        """Override a market's budget (and of every market sharing its budget, e.g. Bybit spot+linear)."""
        budget = self.rules[market].budget
        for name, rule in self.rules.items():
            if rule.budget != budget:
                continue
            changes: dict[str, Any] = {}
            if capacity is not None:
                changes["capacity"] = float(capacity)
            if window is not None:
                changes["window"] = float(window)
            if ban_seconds is not _UNSET:
                changes["ban_seconds"] = ban_seconds
            if enabled is not None:
                changes["enabled"] = enabled
            self.rules[name] = replace(rule, **changes)
        self._limiter.reset()

    def set_latency(self, seconds: float, market: str | None = None) -> None:
        if market is None:
            self.latency = seconds
        else:
            self.market_latency[market] = seconds

    def add_fault(
        self,
        kind: str,
        market: str | None = None,
        path: str | None = None,
        symbol: str | None = None,
        times: int | None = None,
        probability: float | None = None,
        **kw: Any,
    ) -> Fault:
        """Inject a fault (kinds in exchange_faults.FAULT_KINDS); returns the rule (``.fired`` counts hits)."""
        return self._faults.add(Fault(kind, market, path, symbol, times, probability, dict(kw)))

    def clear_faults(self) -> None:
        self._faults.clear()

    def reset_counters(self) -> None:
        self.requests = 0
        self.requests_by_market: Counter[str] = Counter()
        self.requests_by_kind: Counter[tuple[str, str]] = Counter()
        self.requests_by_symbol: Counter[tuple[str, str]] = Counter()
        self.status_counts: defaultdict[str, Counter[int]] = defaultdict(Counter)
        self.rate_limited: Counter[str] = Counter()  # over-limit answers, whatever their HTTP status
        self.bans: Counter[str] = Counter()
        self.weight_by_market: Counter[str] = Counter()  # the exchange's own weight of each request
        self.bytes_by_market: Counter[str] = Counter()  # response body bytes sent
        # (market, symbol, query parameters) of klines requests, oldest first.
        self.klines_queries: deque[tuple[str, str, dict[str, str]]] = deque(maxlen=QUERY_LOG_SIZE)

    # -- lifecycle --------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._port

    def base_url(self, market: str) -> str:
        return f"http://{HOST}:{self._port}/{market}"

    def env(self) -> dict[str, str]:
        """``SCANNER_<MARKET>_BASE_URL`` for every served market (utils.config.get_base_url)."""
        return {f"SCANNER_{m.upper()}_BASE_URL": self.base_url(m) for m in self.markets}

    async def start(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_route("GET", "/{market}/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, self._port)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeExchangeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @contextlib.contextmanager
    def run_in_thread(self) -> Iterator[FakeExchangeServer]:
        """Serve from a separate thread and event loop (benchmarks time only the client's loop)."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # reported to the caller below
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        thread = threading.Thread(target=serve, name="fake-exchange-server", daemon=True)
        thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)

    # -- request handling -------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        market = request.match_info["market"]
        proto = self._protocols.get(market)
        if proto is None:
            return web.json_response({"error": f"unknown market {market}"}, status=404)
        path = "/" + request.match_info["tail"]
        query: Mapping[str, str] = request.query
        kind = proto.kind_of(path)
        symbol = proto.klines_symbol(path, query) if kind == KLINES else None
        self._count(market, kind, symbol)
        if kind is not None:
            self.weight_by_market[market] += proto.weight(kind, query)
        if kind == KLINES:
            self.klines_queries.append((market, symbol or "", dict(query)))

        delay = self.market_latency.get(market, self.latency)
        if delay > 0:
            await asyncio.sleep(delay)
        fault = self._faults.pick(market, path, kind, symbol)
        if fault is not None and fault.kind == "timeout":
            await self._sleep(float(fault.params.get("seconds", DEFAULT_TIMEOUT_SECONDS)))
            fault = None
        if fault is not None and self._drops_connection(fault):
            self.status_counts[market][0] += 1
            return await self._drop(request, fault)
        reply = self._fault_reply(proto, fault) if fault is not None and fault.kind not in BODY_KINDS else None
        if reply is None:
            reply, headers = self._limit(market, proto, kind, query)
            if reply is None:
                reply = self._answer(market, proto, kind, path, query, fault)
                reply.headers.update(headers)
        self.status_counts[market][reply.status] += 1
        self.bytes_by_market[market] += len(reply.body)
        return web.Response(status=reply.status, text=reply.body, headers=reply.headers,
                            content_type=reply.content_type)

    def _count(self, market: str, kind: str | None, symbol: str | None) -> None:
        self.requests += 1
        self.requests_by_market[market] += 1
        self.requests_by_kind[(market, kind or "other")] += 1
        if symbol:
            self.requests_by_symbol[(market, symbol)] += 1

    async def _sleep(self, seconds: float) -> None:
        assert self._stopping is not None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    @staticmethod
    async def _drop(request: web.Request, fault: Fault) -> web.StreamResponse:
        """Abort the TCP connection: mid-body by default (aiohttp clients silently retry a request whose
        connection closed before any response byte), or before the response with ``when="before"``."""
        if fault.params.get("when", "during") == "during":
            resp = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": "4096"})
            await resp.prepare(request)
            await resp.write(b'[[1700000000000,"1.0"')
        request.transport.abort()
        raise asyncio.CancelledError

    @staticmethod
    def _drops_connection(fault: Fault) -> bool:
        return fault.kind == "reset" or fault.kind == "down" and fault.params.get("mode") == "refuse"

    def _fault_reply(self, proto: Market, fault: Fault) -> Reply:
        kind, kw = fault.kind, fault.params
        if kind == "html":
            return Reply(int(kw.get("status", 200)), HTML_PAGE, content_type="text/html")
        if kind == "envelope_error":
            return proto.error("envelope", str(kw.get("message", "System error, please retry later")))
        if kind == "down":
            return Reply(503, HTML_PAGE.replace("502 Bad Gateway", "503 Service Unavailable"), content_type="text/html")
        assert kind in STATUS_KINDS
        status = int(kind)
        if status == 429:
            retry = int(kw.get("retry_after", DEFAULT_429_RETRY_AFTER))
            reply = proto.over_limit(_decision(retry))
            reply.status = 429 if kw.get("literal", False) else reply.status
            return reply
        if status == 418:
            reply = proto.banned(_decision(int(kw.get("retry_after", DEFAULT_418_RETRY_AFTER))))
            reply.status = 418
            return reply
        return proto.error("server", str(kw.get("message", "Internal error; unable to process your request.")), status)

    def _limit(
        self, market: str, proto: Market, kind: str | None, query: Mapping[str, str]
    ) -> tuple[Reply | None, dict[str, str]]:
        """Charge the market's budget: (over-limit reply or None, usage headers for a good reply)."""
        rule = self.rules[market]
        if not rule.enabled or kind is None:
            return None, {}
        decision = self._limiter.check(rule, kind, proto.weight(kind, query))
        if decision.allowed:
            return None, proto.usage_headers(decision)
        self.rate_limited[market] += 1
        if decision.banned:
            self.bans[market] += 1
            return proto.banned(decision), {}
        reply = proto.over_limit(decision)
        reply.headers.update(proto.usage_headers(decision))
        return reply, {}

    def _answer(self, market: str, proto: Market, kind: str | None, path: str, query: Mapping[str, str],
                fault: Fault | None) -> Reply:
        ctx = Context(self._now_ms, lambda info: self._store.summary(market, info, self._now_ms), self.rules[market])
        try:
            if kind == LISTING:
                reply = proto.listing(self.symbols[market], query, ctx)
            elif kind == TICKERS:
                reply = proto.tickers(self.symbols[market], query, ctx)
            elif kind == KLINES:
                reply = self._klines(market, proto, path, query, fault)
            else:
                reply = proto.error("param", f"Unknown path {path}", 404)
        except BadRequest as exc:
            reply = exc.reply
        if fault is not None and fault.kind == "truncated_json" and reply.status == 200:
            reply.body = reply.body[: max(len(reply.body) // 2, 1)]
        return reply

    def _klines(self, market: str, proto: Market, path: str, query: Mapping[str, str], fault: Fault | None) -> Reply:
        q = proto.parse_klines(path, query, self._now_ms)
        info = self._by_name[market].get(q.symbol)
        if info is None:
            return proto.error("symbol", f"Invalid currency pair {q.symbol}")
        bars = self._store.bars(market, info, q.interval, self._now_ms)
        kind = fault.kind if fault is not None else None
        if kind == "short":
            bars = bars.take(slice(-int(fault.params.get("bars", DEFAULT_SHORT_BARS)), None))
        page = q.select(bars)
        if kind == "empty":
            page = page.take(slice(0, 0))
        columns = proto.columns(info, page, q.interval, self._now_ms)
        order = np.arange(len(page))[::-1] if proto.newest_first else None
        reorder = self._faults.row_order(fault, len(page))
        if reorder is not None:
            order = reorder if order is None else order[reorder]
        if order is not None:
            columns = {k: v[order] for k, v in columns.items()}
        if kind == "bad_values":
            spoil_values(columns, str(fault.params.get("variant", "all")), fault.params.get("row"))
        return Reply(200, proto.assemble(columns, q, self._now_ms))


def _decision(retry_after: int) -> Decision:
    """A synthetic over-limit decision for injected 429/418 faults."""
    return Decision(False, False, 0.0, 0.0, 0.0, float(retry_after), retry_after)


def main(argv: list[str] | None = None) -> None:
    """CLI: serve the fake exchanges until interrupted and print their base URLs."""
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.exchange_server", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--symbols", type=int, default=DEFAULT_SYMBOLS)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--history-days", type=int, default=1200)
    parser.add_argument("--now", type=float, default=None, help="server clock, epoch seconds (default: real time)")
    parser.add_argument("--markets", nargs="*", default=None, choices=MARKETS)
    parser.add_argument("--rate-limit-scale", type=float, default=1.0)
    parser.add_argument("--no-rate-limits", action="store_true")
    parser.add_argument("--binance-weight-limit", type=float, default=None, help="binance_spot weight per window")
    parser.add_argument("--rate-limit", action="append", default=[], metavar="MARKET=CAPACITY[/WINDOW]",
                        help="override one market's budget, e.g. bybit_spot=60/5")
    args = parser.parse_args(argv)
    server = FakeExchangeServer(args.symbols, args.now, args.latency_ms / 1000.0, args.seed, args.markets,
                                args.history_days, rate_limit_scale=args.rate_limit_scale,
                                rate_limits=not args.no_rate_limits, port=args.port)
    if args.binance_weight_limit is not None and "binance_spot" in server.markets:
        server.set_rate_limit("binance_spot", capacity=args.binance_weight_limit)
    for item in args.rate_limit:
        market, _, spec = item.partition("=")
        capacity, _, window = spec.partition("/")
        server.set_rate_limit(market, capacity=float(capacity), window=float(window) if window else None)

    async def serve() -> None:
        async with server:
            for key, url in server.env().items():
                print(f"{key}={url}", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
