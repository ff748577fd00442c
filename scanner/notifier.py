"""Telegram alerts: format hits as HTML messages and send them per channel bot to each user's chat.

Spec 9.3 fixes the titles, the channels and what each alert shows; each strategy declares that
content as data (``Strategy.alert_fields``: label, metric key, format). Per (strategy, exchange, timeframe) a
message carries one header and one block per hit; messages are split at block boundaries below
Telegram's 4,096-character limit.

Sending: each channel has its own bot (``telegram.Bot(token, base_url=config.base_url)``), each user
name maps to a chat id, and every chat is served independently, so one failing chat never stops the
others. Flood control (``RetryAfter``) is waited out and network errors are retried with exponential
backoff, both bounded; ``Forbidden``, ``InvalidToken`` and other errors are recorded in the
:class:`AlertReport` with a redacted reason (``InvalidToken`` quotes the whole token). With an
:class:`AlertLedger`, an alert already sent to a chat is not sent again and an undelivered one is
re-sent on the next call for that chat.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import math
import re
import warnings
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import pandas as pd
import telegram
from telegram import LinkPreviewOptions
from telegram.constants import MessageLimit, ParseMode
from telegram.error import BadRequest, NetworkError, RetryAfter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential

from scanner.ledger import AlertKey, AlertLedger, LedgerEntry
from scanner.registry import MetricKey, Strategy, get_strategy, resolve_strategies
from scanner.results import AlertFailure, AlertReport, Hit
from utils.config import CHANNELS, TelegramConfig, telegram_config
from utils.logging import install_redaction, redact, register_secret

T = TypeVar("T")
log = logging.getLogger(__name__)

# Telegram's limit on one message's text (4,096), counted here in UTF-16 units of the raw HTML,
# which is never shorter than what Telegram counts after parsing the entities.
MAX_MESSAGE_CHARS: int = int(MessageLimit.MAX_TEXT_LENGTH)
BLOCK_SEPARATOR = "\n\n"
# Retries of one Bot API call: flood-control waits and network errors share this budget.
SEND_ATTEMPTS = 4
BACKOFF_BASE_S = 0.25
BACKOFF_MAX_S = 4.0
# A RetryAfter longer than this is not waited out: the alert stays pending for the next run.
MAX_FLOOD_WAIT_S = 60.0

BAR_TIME_FORMAT = "%Y-%m-%d %H:%M UTC"
MISSING = "n/a"

TRADINGVIEW_URL = "https://www.tradingview.com/chart/?symbol={prefix}:{symbol}"
# Exchange family (the part of our market name before "_spot"/"_futures") -> TradingView prefix.
TRADINGVIEW_PREFIX: dict[str, str] = {
    "binance": "BINANCE",
    "bybit": "BYBIT",
    "gateio": "GATEIO",
    "kucoin": "KUCOIN",
    "mexc": "MEXC",
}
PERPETUAL_MARKETS: tuple[str, ...] = ("futures",)
PERPETUAL_SUFFIX = ".P"
# Exchange symbol quirks undone before building a TradingView symbol: (pattern, replacement).
TRADINGVIEW_SYMBOL_FIXES: dict[str, tuple[tuple[str, str], ...]] = {
    "kucoin_futures": ((r"^XBT", "BTC"), (r"USDTM$", "USDT")),
}

def _format_price(value: float) -> str:
    """Enough decimals for four significant digits, never scientific notation."""
    if value == 0:
        return "0"
    decimals = max(2, 3 - math.floor(math.log10(abs(value))))
    return f"{value:,.{decimals}f}"


FORMATTERS: dict[str, Callable[[Any], str]] = {
    "price": _format_price,
    "ratio": lambda v: f"{v:.2f}",
    "usd": lambda v: f"${v:,.0f}",
    "pct": lambda v: f"{v:.1f}%",
    "int": lambda v: f"{int(v)}",
    "bars": lambda v: f"{int(v)} bar{'s' if int(v) != 1 else ''}",
    "text": str,
}


def _metric(hit: Hit, key: str) -> Any:
    """A metric of the hit, falling back to the hit's own fields (close, volume_usd)."""
    return hit.metrics[key] if key in hit.metrics else getattr(hit, key, None)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _field_text(strategy: Strategy, hit: Hit, key: MetricKey, fmt: str) -> str:
    if fmt == "flags":
        fired = [strategy.flag_labels.get(k, k) for k in key if bool(_metric(hit, k))]
        return ", ".join(fired) or "none"
    value = _metric(hit, key)  # type: ignore[arg-type]
    if _is_missing(value):
        return MISSING
    try:
        return FORMATTERS[fmt](value)
    except (TypeError, ValueError):
        return str(value)


def tradingview_url(exchange: str, symbol: str) -> str | None:
    """TradingView chart of ``symbol`` (``BINANCE:BTCUSDT``, ``BYBIT:BTCUSDT.P``); None for demo/unknown."""
    family, _, market = exchange.lower().partition("_")
    prefix = TRADINGVIEW_PREFIX.get(family)
    if prefix is None:
        return None
    tv_symbol = re.sub(r"[^A-Za-z0-9]", "", symbol).upper()
    for pattern, replacement in TRADINGVIEW_SYMBOL_FIXES.get(exchange.lower(), ()):
        tv_symbol = re.sub(pattern, replacement, tv_symbol)
    if market in PERPETUAL_MARKETS:
        tv_symbol += PERPETUAL_SUFFIX
    return TRADINGVIEW_URL.format(prefix=prefix, symbol=tv_symbol)


def format_header(strategy: str, exchange: str, timeframe: str) -> str:
    """The header of a (strategy, exchange, timeframe) group: spec 9.3 title, exchange, timeframe."""
    title = html.escape(get_strategy(strategy).title)
    return f"<b>{title}</b>\n{html.escape(exchange)} · {html.escape(timeframe)}"


def format_block(hit: Hit) -> str:
    """One hit: linked symbol, bar time (forming or closed) and the strategy's spec 9.3 metrics."""
    url = tradingview_url(hit.exchange, hit.symbol)
    symbol = html.escape(hit.symbol)
    name = f'<a href="{html.escape(url, quote=True)}">{symbol}</a>' if url else symbol
    stamp = pd.Timestamp(hit.bar_time)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    bar = "current bar, forming" if hit.current_bar else "closed bar"
    lines = [f"<b>{name}</b>", f"Bar: {stamp.strftime(BAR_TIME_FORMAT)} ({bar})"]
    strategy = get_strategy(hit.strategy)
    for label, key, fmt in strategy.alert_fields:
        lines.append(f"{html.escape(label)}: {html.escape(_field_text(strategy, hit, key, fmt))}")
    return "\n".join(lines)


@dataclass(frozen=True)
class _Alert:
    """One hit rendered for one channel (or an undelivered one read back from the ledger)."""

    channel: str
    strategy: str
    exchange: str
    timeframe: str
    symbol: str
    bar_time: str
    bar: str
    block: str

    @classmethod
    def from_hit(cls, hit: Hit, channel: str | None) -> _Alert:
        return cls(
            channel=channel or get_strategy(hit.strategy).channel,
            strategy=hit.strategy,
            exchange=hit.exchange,
            timeframe=hit.timeframe,
            symbol=hit.symbol,
            bar_time=AlertKey.bar_time_text(hit.bar_time),
            bar="current" if hit.current_bar else "closed",
            block=format_block(hit),
        )

    @classmethod
    def from_entry(cls, entry: LedgerEntry) -> _Alert:
        k = entry.key
        return cls(k.channel, k.strategy, k.exchange, k.timeframe, k.symbol, k.bar_time, k.bar, entry.text)

    @property
    def group(self) -> tuple[str, str, str]:
        return (self.strategy, self.exchange, self.timeframe)

    def key(self, chat: str) -> AlertKey:
        return AlertKey(
            self.channel, str(chat), self.exchange, self.symbol, self.timeframe, self.strategy,
            self.bar_time, self.bar,
        )


def _telegram_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _pack(alerts: Sequence[_Alert], limit: int = MAX_MESSAGE_CHARS) -> list[tuple[str, list[_Alert]]]:
    """Messages of at most ``limit`` characters: groups in first-seen order, a header per group,
    split only between blocks (a continued group repeats its header)."""
    groups: dict[tuple[str, str, str], list[_Alert]] = {}
    for alert in alerts:
        groups.setdefault(alert.group, []).append(alert)
    messages: list[tuple[str, list[_Alert]]] = []
    pieces: list[str] = []
    members: list[_Alert] = []
    for group, items in groups.items():
        header = format_header(*group)
        header_in_message = False
        for alert in items:
            new = [alert.block] if header_in_message else [header, alert.block]
            if members and _telegram_length(BLOCK_SEPARATOR.join(pieces + new)) > limit:
                messages.append((BLOCK_SEPARATOR.join(pieces), members))
                pieces, members, new = [], [], [header, alert.block]
            pieces.extend(new)
            members.append(alert)
            header_in_message = True
    if members:
        messages.append((BLOCK_SEPARATOR.join(pieces), members))
    return messages


def format_messages(hits: Iterable[Hit], *, channel: str | None = None) -> list[tuple[str, str]]:
    """``(channel, html_text)`` per message, as :func:`send_alerts` would send them (no I/O)."""
    by_channel: dict[str, list[_Alert]] = {}
    for hit in hits:
        alert = _Alert.from_hit(hit, channel)
        by_channel.setdefault(alert.channel, []).append(alert)
    return [(ch, text) for ch, alerts in by_channel.items() for text, _ in _pack(alerts)]


def validate_alert_targets(
    strategies: Iterable[str],
    users: Iterable[str],
    config: TelegramConfig | None = None,
    channel: str | None = None,
) -> None:
    """Fail early, with every problem named, if alerts for ``strategies`` cannot reach ``users``.

    Raises ``ValueError`` for an unknown strategy or user (listing the valid ones), an unknown
    channel (listing the channels), or a needed channel without a bot token (naming the env var).
    """
    cfg = config or telegram_config()
    problems: list[str] = []
    names: list[str] = []
    requested = list(strategies)
    try:
        names = resolve_strategies(requested) if requested else []
    except ValueError as exc:
        problems.append(str(exc))
    for user in users:
        if user not in cfg.users:
            configured = ", ".join(sorted(cfg.users)) or "none"
            problems.append(
                f"unknown Telegram user {user!r}; configured users: {configured} "
                f"(set SCANNER_TELEGRAM_CHAT_{user.upper()} to add it)"
            )
    if channel is not None and channel not in CHANNELS:
        problems.append(f"unknown Telegram channel {channel!r}; channels: {', '.join(CHANNELS)}")
    else:
        needed = {channel} if channel else {get_strategy(s).channel for s in names}
        for name in sorted(needed):
            if name not in cfg.tokens:
                problems.append(
                    f"no bot token for Telegram channel {name!r}: set SCANNER_TELEGRAM_TOKEN_{name.upper()}"
                )
    if problems:
        raise ValueError("; ".join(problems))


def _retry_after_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB 22 deprecates the int form; both forms are handled
        value = exc.retry_after
    return value.total_seconds() if hasattr(value, "total_seconds") else float(value)


def _is_retryable(exc: BaseException) -> bool:
    """Network trouble and bounded flood control are retried; a bad request never is."""
    if isinstance(exc, RetryAfter):
        return _retry_after_seconds(exc) <= MAX_FLOOD_WAIT_S
    return isinstance(exc, NetworkError) and not isinstance(exc, BadRequest)


_backoff = wait_exponential(multiplier=BACKOFF_BASE_S, max=BACKOFF_MAX_S)


def _wait(state: RetryCallState) -> float:
    """Wait what Telegram asks after a RetryAfter, otherwise exponential backoff."""
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, RetryAfter):
        return _retry_after_seconds(exc)
    return _backoff(state)


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    delay = state.next_action.sleep if state.next_action else 0.0
    log.warning("Telegram call failed (%s); retry %d in %.2fs", _reason(exc), state.attempt_number, delay)


async def _call_with_retries(fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
    retrying = AsyncRetrying(
        retry=retry_if_exception(_is_retryable),
        wait=_wait,
        stop=stop_after_attempt(SEND_ATTEMPTS),
        before_sleep=_log_retry,
        reraise=True,
    )
    return await retrying(fn, *args, **kwargs)


def _reason(exc: BaseException | None) -> str:
    return redact(f"{type(exc).__name__}: {exc}")


class _ChatSender:
    """Delivers one channel's alerts to one chat, consulting and updating the ledger."""

    def __init__(
        self, bot: telegram.Bot, channel: str, user: str, chat: str, ledger: AlertLedger | None,
        report: AlertReport,
    ) -> None:
        self.bot, self.channel, self.user, self.chat = bot, channel, user, str(chat)
        self.ledger, self.report = ledger, report

    def has_work(self, alerts: Sequence[_Alert]) -> bool:
        """Whether anything is to be sent to this chat (checked before opening the bot)."""
        if self.ledger is None:
            return bool(alerts)
        if self.ledger.pending(self.channel, self.chat):
            return True
        return any(not self.ledger.is_sent(a.key(self.chat)) for a in alerts)

    def plan(self, alerts: Sequence[_Alert]) -> tuple[list[_Alert], set[AlertKey]]:
        """Earlier undelivered alerts first, then new ones not sent yet; every one stored as pending.

        Returns the alerts to send and the keys that came from the ledger. A pending alert that the
        new scan finds again is sent once, with the newer text.
        """
        pending: dict[AlertKey, _Alert] = {}
        if self.ledger is not None:
            pending = {e.key: _Alert.from_entry(e) for e in self.ledger.pending(self.channel, self.chat)}
        fresh: dict[AlertKey, _Alert] = {}
        for alert in alerts:
            key = alert.key(self.chat)
            if key in fresh:
                continue
            if self.ledger is not None and key not in pending and self.ledger.is_sent(key):
                self.report.duplicates_skipped += 1
                continue
            fresh[key] = alert
            if self.ledger is not None:
                self.ledger.add_pending(key, alert.block)
        items = [fresh.get(key, alert) for key, alert in pending.items()]
        items += [alert for key, alert in fresh.items() if key not in pending]
        return items, set(pending)

    async def send(self, alerts: Sequence[_Alert], init_error: BaseException | None) -> None:
        lock = self.ledger.claim(self.channel, self.chat) if self.ledger else contextlib.nullcontext()
        async with lock:
            items, from_ledger = self.plan(alerts)
            if not items:
                return
            if init_error is not None:
                self._failed(items, _reason(init_error))
                return
            messages = _pack(items)
            for index, (text, members) in enumerate(messages):
                try:
                    await _call_with_retries(
                        self.bot.send_message,
                        chat_id=self.chat,
                        text=text,
                        parse_mode=ParseMode.HTML,
                        link_preview_options=LinkPreviewOptions(is_disabled=True),
                    )
                except Exception as exc:  # one chat's failure is recorded, never raised
                    if isinstance(exc, BadRequest):
                        self._failed(members, _reason(exc))
                        continue
                    rest = [a for _, later in messages[index:] for a in later]
                    self._failed(rest, _reason(exc))
                    return
                self._delivered(members, from_ledger)

    def _delivered(self, members: list[_Alert], from_ledger: set[AlertKey]) -> None:
        if self.ledger is not None:
            self.ledger.mark_sent([a.key(self.chat) for a in members])
        self.report.messages += 1
        self.report.sent += len(members)
        self.report.retried_from_ledger += sum(a.key(self.chat) in from_ledger for a in members)

    def _failed(self, members: list[_Alert], reason: str) -> None:
        if self.ledger is not None:
            self.ledger.mark_failed([a.key(self.chat) for a in members], reason)
        self.report.pending += len(members)
        log.warning(
            "Telegram %s -> %s: %d alert(s) not delivered: %s", self.channel, self.user, len(members), reason
        )
        self.report.failures.append(AlertFailure(channel=self.channel, user=self.user, reason=reason))


async def _send_channel(
    channel: str,
    alerts: Sequence[_Alert],
    users: Sequence[str],
    cfg: TelegramConfig,
    ledger: AlertLedger | None,
    report: AlertReport,
) -> None:
    """Open the channel's bot once (getMe checks the token) and serve every chat concurrently."""
    bot = telegram.Bot(cfg.tokens[channel], base_url=cfg.base_url)
    chats: dict[str, str] = {}  # one sender per chat, named after the first user mapped to it
    for user in users:
        chats.setdefault(str(cfg.users[user]), user)
    senders = [_ChatSender(bot, channel, user, chat, ledger, report) for chat, user in chats.items()]
    if not any(s.has_work(alerts) for s in senders):
        report.duplicates_skipped += sum(len({a.key(s.chat) for a in alerts}) for s in senders)
        return
    init_error: BaseException | None = None
    try:
        try:
            await _call_with_retries(bot.initialize)
        except Exception as exc:  # InvalidToken and exhausted retries: recorded per chat below
            init_error = exc
        await asyncio.gather(*(s.send(alerts, init_error) for s in senders))
    finally:
        await bot.shutdown()


async def send_alerts(
    hits: list[Hit],
    users: list[str],
    *,
    config: TelegramConfig | None = None,
    ledger: AlertLedger | None = None,
    channel: str | None = None,
) -> AlertReport:
    """Send ``hits`` to every user's chat through each channel's bot; never raises for a delivery.

    ``channel`` sends every hit through that channel instead of the registry's (spec 9.3). With a
    ``ledger``, alerts already sent to a chat are skipped and earlier undelivered ones are re-sent.
    Misconfiguration (unknown user or channel, missing token) raises ``ValueError`` before sending.
    """
    install_redaction()
    cfg = config or telegram_config()
    register_secret(*cfg.tokens.values())
    validate_alert_targets(sorted({h.strategy for h in hits}), users, cfg, channel)
    report = AlertReport()
    by_channel: dict[str, list[_Alert]] = {}
    for hit in hits:
        alert = _Alert.from_hit(hit, channel)
        by_channel.setdefault(alert.channel, []).append(alert)
    if ledger is not None:
        for name in cfg.tokens:
            if name not in by_channel and any(ledger.pending(name, cfg.users[u]) for u in users):
                by_channel[name] = []
    await asyncio.gather(
        *(_send_channel(name, alerts, users, cfg, ledger, report) for name, alerts in by_channel.items())
    )
    return report
