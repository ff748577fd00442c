"""``scanner serve``: scan each timeframe as its bar closes, unattended for weeks.

    python -m scanner serve 4h,1d,1w all binance_spot,bybit_spot default --send

The loop reads the clock at every wake-up (at least every ``MAX_SLEEP_S``), so a suspended laptop
or a clock step leads to the overdue scans, not to a missed day. A close at ``T`` is scanned at
``T + settle`` (``scanner.schedule``) with ``bars="closed"``; timeframes closing at the same instant
share one client and one daily fetch per symbol per exchange. Every exchange is its own unit of
work: it is scanned, its hits go through the alert ledger, one summary line per timeframe is
logged, and the close is recorded in the serve state (``scanner.serve_state``) as scanned. A
failed exchange is retried with backoff until the next close of that timeframe, then recorded as
failed and reported; it never delays the others.

The exchange clients of a close have their clock pinned to ``T + settle``: the bar that closed at
``T`` is the last closed one in what they fetch, even when the scan runs late (catch-up after a
restart, a retry, a machine that slept). A restart therefore scans every close it has no record
of (up to ``CATCH_UP_BARS`` back) and the ledger keeps it from sending anything twice.

SIGTERM/SIGINT: scans are cancelled, a delivery in progress gets ``SHUTDOWN_GRACE_S`` to finish
its message, sessions are closed, and ``main`` returns 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import inspect
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from exchanges import get_client, get_client_class
from exchanges.base_client import BaseExchangeClient
from scanner import schedule
from scanner.cache import KlineCache
from scanner.main import deliver, scan_exchange, validate_min_volume
from scanner.results import AlertReport, ScanResult, ScanSummary
from scanner.serve_state import STATUS_FAILED, STATUS_SCANNED, ServeState, StateError, default_path
from scanner.store import StoreError, StoreOption, open_store
from utils.timeframes import bar_period, closed_bar_label, closes_between

log = logging.getLogger("scanner.serve")

SETTLE_S = 15.0  # default wait after a close before fetching: the exchanges open the next bar
MAX_SLEEP_S = 60.0  # the loop re-reads the clock at least this often
BUSY_POLL_S = 1.0  # while scans are in flight, the loop looks at the clock at most this often
RETRY_BACKOFF_S = 30.0  # first wait before re-scanning a failed exchange, doubled per attempt
RETRY_BACKOFF_CAP_S = 900.0
SHUTDOWN_GRACE_S = 5.0  # a delivery in progress at SIGTERM gets this long to finish its message
HEARTBEAT_EVERY_S = 86_400.0
HEARTBEAT_TIMEOUT_S = 60.0
MIN_FORMING_EVERY_S = 60.0
FAILURES_KEPT = 20  # given-up scans listed in the status record

Notify = Callable[[str, str], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]

CLOSE, RETRY, FORMING = "close", "retry", "forming"


@dataclass(frozen=True)
class ServeConfig:
    """What to serve: validated names (see ``config_from_args``) and the loop's options."""

    timeframes: tuple[str, ...]
    strategies: tuple[str, ...]
    exchanges: tuple[str, ...]
    users: tuple[str, ...] = ("default",)
    send: bool = False
    channel: str | None = None
    min_volume_usd: float | None = None
    settle: float = SETTLE_S
    forming_every: float | None = None
    heartbeat: str | None = None
    store: StoreOption = None  # the scans' ``store=``: a CandleStore, a path, None (default), False (none)


@dataclass
class Unit:
    """One exchange's scan of the timeframes closing at ``close`` (or of the forming bars)."""

    kind: str
    exchange: str
    timeframes: tuple[str, ...]
    close: pd.Timestamp | None
    at: pd.Timestamp  # the instant the exchange client's clock is pinned to
    attempt: int = 1
    next_at: pd.Timestamp | None = None  # when a scheduled retry runs

    def keys(self) -> set[tuple[str, str, pd.Timestamp]]:
        if self.close is None:
            return set()
        return {(self.exchange, tf, self.close) for tf in self.timeframes}


@dataclass
class _Since:
    """What happened since the last heartbeat."""

    started: pd.Timestamp
    scanned: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    alerts_sent: int = 0


def pinned_client(exchange: str, timeframe: str, at: pd.Timestamp) -> BaseExchangeClient:
    """A new client of ``exchange`` whose notion of now is ``at`` (clock, and ``now`` for the demo)."""
    seconds = at.timestamp()
    options: dict[str, Any] = {"clock": lambda: seconds}
    if "now" in inspect.signature(get_client_class(exchange)).parameters:
        options["now"] = at
    return get_client(exchange, timeframe, **options)


def _failed(exchange: str, timeframes: Sequence[str], strategies: Sequence[str], error: str) -> ScanResult:
    summaries = [ScanSummary(exchange, tf, list(strategies), error=error) for tf in timeframes]
    return ScanResult(summaries=summaries)


def _utc(seconds: float) -> pd.Timestamp:
    return pd.Timestamp(seconds, unit="s", tz="UTC")


def _text(stamp: pd.Timestamp | None) -> str:
    return "-" if stamp is None else stamp.strftime("%Y-%m-%d %H:%M UTC")


async def log_notify(user: str, text: str) -> None:
    """Heartbeat delivery to the log only (tests, and runs without an admin user's sink)."""
    log.info("heartbeat for %s:\n%s", user, text)


async def sink_notify(user: str, text: str) -> None:
    """Heartbeat delivery through ``user``'s alert sinks, once per distinct text (the ledger)."""
    from scanner.alerts import send_notice

    log.info("heartbeat for %s:\n%s", user, text)
    key = "heartbeat:" + hashlib.sha256(text.encode()).hexdigest()[:16]
    await send_notice(user, text, key, title="Scanner heartbeat")


class ServeLoop:
    """The loop behind ``scanner serve`` (module docstring); ``await ServeLoop(...).run()``."""

    def __init__(
        self,
        config: ServeConfig,
        *,
        state: ServeState | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Sleep | None = None,
        stop: asyncio.Event | None = None,
        notify: Notify = log_notify,
    ) -> None:
        self.config = config
        self.state = state if state is not None else ServeState()
        self.clock = clock
        self.stop = stop if stop is not None else asyncio.Event()
        self._sleep = sleep if sleep is not None else self._interruptible_sleep
        self.notify = notify
        self._inflight: dict[asyncio.Task[ScanResult], Unit] = {}
        self._retries: list[Unit] = []
        self._failures: list[dict[str, Any]] = []
        self._last_cycle: dict[str, Any] | None = None
        self._next_forming: pd.Timestamp | None = None
        self._since = _Since(started=self.now())
        self._started = self.now()
        self._stopped: pd.Timestamp | None = None
        self._pending_alerts: int | None = None
        self._gaps_warned: set[tuple[str, str, pd.Timestamp]] = set()
        previous = self.state.read_status() or {}
        heartbeat = previous.get("last_heartbeat")
        self._last_heartbeat = pd.Timestamp(heartbeat) if heartbeat else None

    def now(self) -> pd.Timestamp:
        return _utc(self.clock())

    # ------------------------------------------------------------------ the loop

    async def run(self, until: float | None = None) -> None:
        """Serve until ``stop`` is set (or the clock reaches ``until`` and no scan is in flight)."""
        now = self.now()
        if self.config.forming_every:
            self._next_forming = now + pd.Timedelta(seconds=self.config.forming_every)
        nexts = schedule.next_closes(self.config.timeframes, now)
        log.info(
            "serving %s on %s; next closes: %s", ",".join(self.config.timeframes),
            ",".join(self.config.exchanges), ", ".join(f"{tf} {_text(t)}" for tf, t in nexts.items()),
        )
        self._write_status()
        try:
            while not self.stop.is_set():
                self._collect()
                now = self.now()
                if until is not None and now >= _utc(until):
                    if not self._inflight:
                        break
                else:
                    self._launch_due(now)
                    if not self._inflight:
                        await self._heartbeat_if_due(now)
                wake = self._next_wake(self.now(), until)
                await self._pause((wake - self.now()).total_seconds())
        finally:
            await self._shutdown()

    async def _pause(self, seconds: float) -> None:
        """Wait until ``seconds`` have passed, a scan finished or ``stop`` was set.

        While scans are in flight the wait is on them (real time); only an idle loop calls the
        injected ``sleep``, so a simulated clock never jumps over a scan in progress.
        """
        seconds = max(seconds, 0.0)
        if not self._inflight:
            await self._sleep(seconds)
            return
        stopping = asyncio.ensure_future(self.stop.wait())
        try:
            # Work that is due but waits for its exchange wakes nothing: the finishing scan does.
            timeout = min(max(seconds, BUSY_POLL_S), MAX_SLEEP_S)
            await asyncio.wait(
                {*self._inflight, stopping}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stopping.cancel()

    async def _interruptible_sleep(self, seconds: float) -> None:
        """The real-time sleep: ends on ``stop``, and after ``MAX_SLEEP_S`` at most, because the
        monotonic clock asyncio waits on stands still while the machine is suspended."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), min(seconds, MAX_SLEEP_S))

    def _next_wake(self, now: pd.Timestamp, until: float | None) -> pd.Timestamp:
        candidates = [schedule.next_ready(self.config.timeframes, now, self.config.settle)]
        candidates += [unit.next_at for unit in self._retries if unit.next_at is not None]
        if self._next_forming is not None:
            candidates.append(self._next_forming)
        if self.config.heartbeat:
            candidates.append(self._heartbeat_due())
        if until is not None:
            candidates.append(_utc(until))
        return min(candidates)

    # ------------------------------------------------------------------ what is due

    def _busy_keys(self) -> set[tuple[str, str, pd.Timestamp]]:
        keys: set[tuple[str, str, pd.Timestamp]] = set()
        for unit in [*self._inflight.values(), *self._retries]:
            keys |= unit.keys()
        return keys

    def _busy_exchanges(self) -> set[str]:
        return {u.exchange for u in self._inflight.values() if u.kind != FORMING}

    def due_closes(self, now: pd.Timestamp) -> list[schedule.Work]:
        """Closes ready at ``now`` that have no record and are not being scanned or retried."""
        busy = self._busy_keys()
        items = []
        for exchange in self.config.exchanges:
            for tf in self.config.timeframes:
                first = self.state.first_recorded(exchange, tf)
                latest = schedule.ready_close(tf, now, self.config.settle)
                since = latest - bar_period(tf) * schedule.CATCH_UP_BARS
                recorded = self.state.recorded(exchange, tf, since) if first is not None else set()
                due = schedule.catch_up_closes(tf, now, self.config.settle, recorded, first)
                if due and first is not None:
                    self._warn_gap(exchange, tf, due[0])
                items += [(exchange, tf, close) for close in due if (exchange, tf, close) not in busy]
        return schedule.group_work(items)

    def _warn_gap(self, exchange: str, timeframe: str, oldest_due: pd.Timestamp) -> None:
        """Say once which closes were missed beyond the catch-up window (they are not scanned)."""
        last = self.state.last_recorded(exchange, timeframe)
        if last is None or (exchange, timeframe, last) in self._gaps_warned:
            return
        lost = [c for c in closes_between(timeframe, last, oldest_due) if c < oldest_due]
        if lost:
            self._gaps_warned.add((exchange, timeframe, last))
            log.warning(
                "%s %s: %d close(s) from %s to %s passed while the scanner was down and are older than the "
                "catch-up window of %d bars; not scanned", exchange, timeframe, len(lost), _text(lost[0]),
                _text(lost[-1]), schedule.CATCH_UP_BARS,
            )

    def _launch_due(self, now: pd.Timestamp) -> None:
        busy = self._busy_exchanges()
        for close, work in self.due_closes(now):
            for exchange, timeframes in work.items():
                if exchange in busy:
                    continue  # one close at a time per exchange; the older one goes first
                busy.add(exchange)
                at = close + pd.Timedelta(seconds=self.config.settle)
                self._launch(Unit(CLOSE, exchange, timeframes, close, at))
        for unit in [u for u in self._retries if u.next_at is not None and u.next_at <= now]:
            if unit.exchange not in busy:
                busy.add(unit.exchange)
                self._retries.remove(unit)
                self._launch(unit)
        if self._next_forming is not None and now >= self._next_forming and not self._inflight:
            self._next_forming = now + pd.Timedelta(seconds=self.config.forming_every or 0)
            for exchange in self.config.exchanges:
                self._launch(Unit(FORMING, exchange, self.config.timeframes, None, now))

    def _launch(self, unit: Unit) -> None:
        what = "forming bars" if unit.close is None else f"close {_text(unit.close)}"
        log.info("scanning %s %s (%s%s)", unit.exchange, ",".join(unit.timeframes), what,
                 f", attempt {unit.attempt}" if unit.attempt > 1 else "")
        self._inflight[asyncio.ensure_future(self._scan_unit(unit))] = unit

    # ------------------------------------------------------------------ one unit of work

    async def _scan_unit(self, unit: Unit) -> ScanResult:
        """Scan one exchange's timeframes with a client pinned to ``unit.at``, then deliver."""
        bars = "current" if unit.kind == FORMING else "closed"
        strategies = list(self.config.strategies)
        try:
            client = pinned_client(unit.exchange, unit.timeframes[0], unit.at)
        except Exception as exc:  # a broken client must not stop the loop
            return _failed(unit.exchange, unit.timeframes, strategies, f"no client: {exc!r}")
        cache = KlineCache()
        try:
            outcomes = await asyncio.gather(
                *(
                    scan_exchange(
                        unit.exchange, tf, strategies, bars=bars, min_volume_usd=self.config.min_volume_usd,
                        client=client, cache=cache, plan=unit.timeframes, progress=False, store=self.config.store,
                    )
                    for tf in unit.timeframes
                ),
                return_exceptions=True,
            )
        finally:
            await client.close()
        results = []
        for tf, item in zip(unit.timeframes, outcomes):
            if isinstance(item, asyncio.CancelledError):
                raise item
            if isinstance(item, BaseException):
                log.error("scan of %s %s crashed", unit.exchange, tf, exc_info=item)
                item = _failed(unit.exchange, [tf], strategies, f"crashed: {item!r}")
            results.append(item)
        result = ScanResult.combine(results)
        if self.config.send:
            result.alerts = await self._deliver(result)
        return result

    async def _deliver(self, result: ScanResult) -> AlertReport:
        """Send through the ledger; on shutdown the message being sent may finish (bounded)."""
        task = asyncio.ensure_future(deliver(result, list(self.config.users), self.config.channel))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, SHUTDOWN_GRACE_S)
            raise

    def _collect(self) -> None:
        """Handle every finished unit: record, report, schedule retries."""
        for task in [t for t in self._inflight if t.done()]:
            unit = self._inflight.pop(task)
            if task.cancelled():
                continue
            exc = task.exception()
            if exc is not None:
                log.error("scan of %s crashed", unit.exchange, exc_info=exc)
                result = _failed(unit.exchange, unit.timeframes, self.config.strategies, f"crashed: {exc!r}")
            else:
                result = task.result()
            self._finish(unit, result)
        if not self._inflight:
            self._write_status()

    def _finish(self, unit: Unit, result: ScanResult) -> None:
        now = self.now()
        label = "forming" if unit.close is None else f"close {_text(unit.close)}"
        lines = [f"{label}: {summary.line()}" for summary in result.summaries]
        for line, summary in zip(lines, result.summaries):
            (log.warning if summary.error else log.info)("%s", line)
        alerts = result.alerts
        if self.config.send:
            log.info("%s %s %s", unit.exchange, label, alerts.line())
            self._since.alerts_sent += alerts.sent
            self._pending_alerts = self._count_pending()
        if unit.close is None:
            return
        errors = {s.timeframe: s.error or "cancelled" for s in result.summaries if not s.ok}
        done = [tf for tf in unit.timeframes if tf not in errors]
        if done:
            self.state.record(unit.exchange, done, unit.close, STATUS_SCANNED, unit.attempt)
            for tf in done:
                self._since.scanned[tf] = self._since.scanned.get(tf, 0) + 1
        self._note_cycle(unit, lines, now)
        if errors:
            self._after_failure(unit, errors, now)

    def _after_failure(self, unit: Unit, errors: dict[str, str], now: pd.Timestamp) -> None:
        """Retry the failed timeframes with backoff until their next close; give up on the rest."""
        assert unit.close is not None
        failed = [tf for tf in unit.timeframes if tf in errors]
        alive = tuple(tf for tf in failed if schedule.retry_deadline([tf], unit.close) > now)
        expired = [tf for tf in failed if tf not in alive]
        error = "; ".join(sorted(set(errors.values())))
        if expired:
            self.state.record(unit.exchange, expired, unit.close, STATUS_FAILED, unit.attempt, error)
            text = (f"{unit.exchange} {','.join(expired)} close {_text(unit.close)}: not scanned after "
                    f"{unit.attempt} attempt(s): {error}")
            log.error("giving up: %s", text)
            self._since.failures.append(text)
            self._failures = (self._failures + [{
                "exchange": unit.exchange, "timeframes": expired, "close": unit.close.isoformat(),
                "attempts": unit.attempt, "error": error, "gave_up_at": now.isoformat(),
            }])[-FAILURES_KEPT:]
        if alive:
            delay = min(RETRY_BACKOFF_S * 2 ** (unit.attempt - 1), RETRY_BACKOFF_CAP_S)
            deadline = schedule.retry_deadline(alive, unit.close)
            next_at = min(now + pd.Timedelta(seconds=delay), deadline)
            log.warning(
                "%s %s close %s failed (%s); retry %d at %s, until %s", unit.exchange, ",".join(alive),
                _text(unit.close), error, unit.attempt + 1, next_at.strftime("%H:%M:%S"), _text(deadline),
            )
            self._retries.append(Unit(RETRY, unit.exchange, alive, unit.close, unit.at, unit.attempt + 1,
                                      next_at=next_at))

    def _note_cycle(self, unit: Unit, lines: list[str], now: pd.Timestamp) -> None:
        cycle = self._last_cycle
        close = unit.close.isoformat() if unit.close is not None else None
        if cycle is None or cycle["close"] != close:
            if cycle is not None and close is not None and close < cycle["close"]:
                return  # a late retry of an older close does not replace the newest cycle
            cycle = self._last_cycle = {"close": close, "timeframes": [], "lines": []}
        cycle["timeframes"] = list(schedule.ordered([*cycle["timeframes"], *unit.timeframes]))
        cycle["lines"] = [*cycle["lines"], *lines]
        cycle["finished_at"] = now.isoformat()

    def _count_pending(self) -> int | None:
        """Undelivered alerts in the ledger for the served users (None when it cannot be read)."""
        from scanner.ledger import AlertLedger
        from utils.config import CHANNELS, telegram_config

        try:
            chats = {telegram_config().users[u] for u in self.config.users}
            with AlertLedger() as ledger:
                return sum(len(ledger.pending(channel, chat)) for channel in CHANNELS for chat in chats)
        except Exception as exc:  # the status must not stop the loop
            log.warning("could not count pending alerts: %r", exc)
            return None

    # ------------------------------------------------------------------ health

    def status(self) -> dict[str, Any]:
        """The status record ``scanner status`` prints."""
        now = self.now()
        nexts = schedule.next_closes(self.config.timeframes, now)
        return {
            "pid": os.getpid(),
            "started_at": self._started.isoformat(),
            "updated_at": now.isoformat(),
            "stopped_at": self._stopped.isoformat() if self._stopped is not None else None,
            "timeframes": list(self.config.timeframes),
            "exchanges": list(self.config.exchanges),
            "send": self.config.send,
            "settle_s": self.config.settle,
            "last_cycle": self._last_cycle,
            "next_close": {tf: t.isoformat() for tf, t in nexts.items()},
            "retrying": [
                {"exchange": u.exchange, "timeframes": list(u.timeframes), "close": u.close.isoformat(),
                 "attempt": u.attempt, "next_attempt": u.next_at.isoformat(),
                 "until": schedule.retry_deadline(u.timeframes, u.close).isoformat()}
                for u in self._retries if u.close is not None and u.next_at is not None
            ],
            "failures": self._failures,
            "pending_alerts": self._pending_alerts,
            "last_heartbeat": self._last_heartbeat.isoformat() if self._last_heartbeat is not None else None,
        }

    def _write_status(self) -> None:
        try:
            self.state.write_status(self.status())
        except Exception as exc:  # a locked or full disk must not stop the scans
            log.warning("could not write the serve status: %r", exc)

    def _heartbeat_due(self) -> pd.Timestamp:
        if self._last_heartbeat is None:
            return self._started
        return self._last_heartbeat + pd.Timedelta(seconds=HEARTBEAT_EVERY_S)

    def heartbeat_text(self, now: pd.Timestamp) -> str:
        """What ran and what failed since the last heartbeat, and what comes next."""
        since = self._since
        counts = [f"{tf} x{since.scanned[tf]}" for tf in schedule.ordered(since.scanned)]
        scanned = ", ".join(counts) or "nothing"
        lines = [
            f"scanner serve heartbeat {_text(now)}",
            f"Since {_text(since.started)}: scanned {scanned} on {', '.join(self.config.exchanges)}",
        ]
        failed = since.failures + [
            f"{u.exchange} {','.join(u.timeframes)} close {_text(u.close)}: retrying (attempt {u.attempt})"
            for u in self._retries
        ]
        lines.append("Failed: " + ("none" if not failed else f"{len(failed)}"))
        lines += [f"- {text}" for text in failed[:10]]
        if self.config.send:
            pending = "unknown" if self._pending_alerts is None else self._pending_alerts
            lines.append(f"Alerts: {since.alerts_sent} sent, {pending} pending")
        nexts = schedule.next_closes(self.config.timeframes, now)
        lines.append("Next closes: " + ", ".join(f"{tf} {_text(t)}" for tf, t in nexts.items()))
        return "\n".join(lines)

    async def _heartbeat_if_due(self, now: pd.Timestamp) -> None:
        if not self.config.heartbeat or now < self._heartbeat_due():
            return
        text = self.heartbeat_text(now)
        try:
            await asyncio.wait_for(self.notify(self.config.heartbeat, text), HEARTBEAT_TIMEOUT_S)
        except Exception as exc:  # a failed heartbeat is logged; the scans go on
            log.warning("heartbeat to %s failed: %r", self.config.heartbeat, exc)
        self._last_heartbeat = now
        self._since = _Since(started=now)
        self._write_status()

    # ------------------------------------------------------------------ shutdown

    async def _shutdown(self) -> None:
        """Cancel scans in flight (deliveries finish their message), record what finished, stop."""
        tasks = list(self._inflight)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_S * 2)
        self._collect()
        self._stopped = self.now()
        self._write_status()
        log.info("serve stopped")


# ---------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    """The positional arguments of the scan command (minus send_telegram) and the serve options."""
    from exchanges import EXCHANGE_NAMES
    from scanner.registry import STRATEGY_NAMES
    from utils.timeframes import TIMEFRAME_NAMES

    parser = argparse.ArgumentParser(
        prog="scanner serve",
        description="Scan each timeframe as its bar closes, for as long as it runs (alerts with --send).",
        epilog=(
            f"timeframes: {', '.join(TIMEFRAME_NAMES)}\nstrategies: {', '.join(STRATEGY_NAMES)}, all\n"
            f"exchanges: {', '.join(EXCHANGE_NAMES)}, all (every real exchange)\n"
            "example: python -m scanner serve 4h,1d,1w all binance_spot,bybit_spot default --send"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("timeframes", nargs="?", default="1d", help="comma list, e.g. 4h,1d,1w (default 1d)")
    parser.add_argument("strategies", nargs="?", default="all", help="comma list or 'all' (default all)")
    parser.add_argument("exchanges", nargs="?", default="demo", help="comma list or 'all' (default demo)")
    add = parser.add_argument
    add("users", nargs="?", default="default", help="comma list of user names (default default)")
    add("--send", action="store_true", help="send alerts (off by default: a first try is safe)")
    add("--settle", default=str(SETTLE_S), help=f"seconds to wait after a close (default {SETTLE_S:g})")
    add("--forming-every", default=None, help="also re-scan the forming bars this often, e.g. 1h")
    add("--dry-run", action="store_true", help="print the next close of each timeframe and exit")
    add("--heartbeat", default=None, metavar="USER", help="a daily 'what ran, what failed' to USER")
    add("--min-volume-usd", default=None, help="replace the per-timeframe USD volume threshold")
    add("--channel", default=None, help="send every alert to this Telegram channel")
    add("--store", default=None, metavar="PATH", help="candle store file (default: the state dir)")
    add("--no-store", action="store_true", help="fetch full history every cycle (no candle store)")
    add("--log-level", default="INFO", help="DEBUG, INFO (default), WARNING, ERROR")
    return parser


def _positive_seconds(text: str, what: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{what} must be a number of seconds >= 0, got {text!r}")
    return value


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    """Validate the parsed arguments into a ``ServeConfig``; ``ValueError`` names the valid choices."""
    # The scan command's validators, so both commands accept exactly the same names.
    from scanner.analysis import analysis_mode
    from scanner.names import resolve_exchanges, resolve_strategy_names, resolve_timeframes, resolve_users

    timeframes = schedule.ordered(resolve_timeframes(args.timeframes))
    strategies = tuple(resolve_strategy_names(args.strategies))
    exchanges = tuple(resolve_exchanges(args.exchanges))
    users = tuple(resolve_users(args.users))
    settle = _positive_seconds(args.settle, "--settle")
    shortest = min(bar_period(tf) for tf in timeframes).total_seconds()
    if settle >= shortest:
        raise ValueError(
            f"--settle must be shorter than the shortest bar ({shortest:.0f}s), got {args.settle!r}"
        )
    forming = schedule.parse_duration(args.forming_every) if args.forming_every is not None else None
    if forming is not None and forming < MIN_FORMING_EVERY_S:
        raise ValueError(
            f"--forming-every must be at least {MIN_FORMING_EVERY_S:.0f}s, got {args.forming_every!r}"
        )
    if args.store is not None and args.no_store:
        raise ValueError("choose one of --store PATH and --no-store")
    store: StoreOption = None
    if args.store is not None:
        store = Path(args.store)
    elif args.no_store:
        store = False
    analysis_mode()
    if args.send:
        from scanner.notifier import validate_alert_targets

        validate_alert_targets(strategies, users, channel=args.channel)
    return ServeConfig(
        timeframes=timeframes, strategies=strategies, exchanges=exchanges, users=users, send=args.send,
        channel=args.channel, min_volume_usd=validate_min_volume(args.min_volume_usd), settle=settle,
        forming_every=forming, heartbeat=args.heartbeat, store=store,
    )


def dry_run_text(config: ServeConfig, now: pd.Timestamp) -> str:
    """The next close of each timeframe, the bar it closes and when its scan starts."""
    lines = [f"now {now.strftime('%Y-%m-%d %H:%M:%S UTC')}; scans start {config.settle:g}s after each close"]
    for tf, close in schedule.next_closes(config.timeframes, now).items():
        bar = _text(closed_bar_label(tf, close))
        lines.append(f"{tf:>3}  next close {_text(close)}  (closes the bar of {bar})")
    together = [
        f"{_text(close)}: {','.join(tfs)}"
        for close, tfs in schedule.closes_in(config.timeframes, now, now + pd.Timedelta(days=7))
        if len(tfs) > 1
    ]
    if together:
        lines.append("closing together in the next 7 days (one fetch per symbol): " + "; ".join(together[:5]))
    return "\n".join(lines)


async def _serve_until_signalled(config: ServeConfig, state: ServeState) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await ServeLoop(config, state=state, stop=stop, notify=sink_notify).run()


def main(argv: Sequence[str] | None = None) -> int:
    """``scanner serve``: 0 after SIGTERM/SIGINT, 1 when the state file is unusable, 2 bad arguments."""
    from scanner.analysis import shutdown_analysis_process
    from utils.logging import setup_logging

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    if args.dry_run:
        print(dry_run_text(config, pd.Timestamp.now(tz="UTC")))
        return 0
    setup_logging(args.log_level.upper())
    try:
        state = ServeState()
    except StateError as exc:
        print(f"scanner serve: {exc}", file=sys.stderr)
        return 1
    try:
        store = open_store(config.store)  # once for every cycle: scans share one connection pool
    except StoreError as exc:
        state.close()
        print(f"scanner serve: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve_until_signalled(replace(config, store=store if store is not None else False), state))
    finally:
        state.close()
        if store is not None:
            store.close()
        shutdown_analysis_process()
    return 0


def status_text(status: dict[str, Any] | None, path: Path) -> str:
    """``scanner status``'s report of one status record."""
    if status is None:
        return f"no serve status in {path} yet (has `scanner serve` run with this state directory?)"

    def when(text: str | None) -> str:
        return _text(pd.Timestamp(text)) if text else "-"

    lines = [f"scanner serve status ({path})"]
    stopped = status.get("stopped_at")
    state = f"stopped {when(stopped)}" if stopped else f"running as pid {status['pid']}"
    lines.append(f"{state}; started {when(status['started_at'])}; updated {when(status['updated_at'])}")
    lines.append(f"serving {','.join(status['timeframes'])} on {','.join(status['exchanges'])}; "
                 f"alerts {'on' if status['send'] else 'off'}")
    cycle = status.get("last_cycle")
    if cycle:
        lines.append(f"last cycle: close {when(cycle['close'])} ({','.join(cycle['timeframes'])}), "
                     f"finished {when(cycle.get('finished_at'))}")
        lines += [f"  {line}" for line in cycle["lines"]]
    else:
        lines.append("last cycle: none yet")
    lines.append("next close: " + ", ".join(f"{tf} {when(t)}" for tf, t in status["next_close"].items()))
    retrying = status.get("retrying") or []
    lines.append(f"retrying: {len(retrying) or 'none'}")
    lines += [
        f"  {r['exchange']} {','.join(r['timeframes'])} close {when(r['close'])}: attempt {r['attempt']} "
        f"at {when(r['next_attempt'])}, until {when(r['until'])}"
        for r in retrying
    ]
    failures = status.get("failures") or []
    lines.append(f"failures: {len(failures) or 'none'}")
    lines += [f"  {f['exchange']} {','.join(f['timeframes'])} close {when(f['close'])}: {f['error']}"
              for f in failures]
    pending = status.get("pending_alerts")
    lines.append(f"pending alerts: {'-' if pending is None else pending}")
    lines.append(f"last heartbeat: {when(status.get('last_heartbeat'))}")
    return "\n".join(lines)


def status_main(argv: Sequence[str] | None = None) -> int:
    """``scanner status``: print the serve status record; 1 when there is none."""
    parser = argparse.ArgumentParser(prog="scanner status", description="What `scanner serve` did last.")
    parser.add_argument("--state", default=None, metavar="PATH", help="serve state file (default: state dir)")
    args = parser.parse_args(argv)
    path = Path(args.state) if args.state else default_path()
    if not path.is_file():
        print(status_text(None, path))
        return 1
    try:
        with ServeState(path) as state:
            status = state.read_status()
    except StateError as exc:
        print(f"scanner status: {exc}", file=sys.stderr)
        return 1
    print(status_text(status, path))
    return 0 if status is not None else 1


if __name__ == "__main__":
    sys.exit(main())
