"""Alert content in Telegram's HTML, and the seed's ``send_alerts`` entry (Telegram and webhooks).

Spec 9.3 fixes the titles, the channels and what each alert shows; each strategy declares that
content as data (``Strategy.alert_fields``: label, metric key, format; ``flag_labels``, ``title``,
``channel``). Per (strategy, exchange, timeframe) a message carries one header and one block per
hit; messages are split at block boundaries below Telegram's 4,096-character limit.

Sending goes through :mod:`scanner.alerts` (the planner over the ledger) and one sink per kind
(:mod:`scanner.sinks.telegram`, :mod:`scanner.sinks.webhook`): every chat is served independently,
so one failing chat never stops the others; flood control is waited out and network errors retried,
both bounded; failures are recorded in the :class:`AlertReport` with a redacted reason. With an
:class:`AlertLedger`, an alert already sent to a chat is not sent again and an undelivered one is
re-sent on the next call for that chat.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from scanner.alerts import SEND_ATTEMPTS
from scanner.ledger import AlertLedger
from scanner.registry import MetricKey, Strategy, get_strategy, resolve_strategies
from exchanges.links import chart_url
from scanner.results import AlertReport, Hit, format_price
from scanner.sinks.telegram import BLOCK_SEPARATOR, MAX_MESSAGE_CHARS
from utils.config import CHANNELS, TelegramConfig, telegram_config

if TYPE_CHECKING:
    from scanner.alerts import AlertSettings

__all__ = [
    "BLOCK_SEPARATOR", "MAX_MESSAGE_CHARS", "SEND_ATTEMPTS", "alert_fields", "bar_line",
    "format_block", "format_header", "format_messages", "send_alerts", "tradingview_url",
    "validate_alert_targets",
]


BAR_TIME_FORMAT = "%Y-%m-%d %H:%M UTC"
MISSING = "n/a"


FORMATTERS: dict[str, Callable[[Any], str]] = {
    "price": format_price,
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
    """TradingView chart of ``symbol``; None for demo/unknown (see ``exchanges.links``)."""
    return chart_url(exchange, symbol)


def format_header(strategy: str, exchange: str, timeframe: str) -> str:
    """The header of a (strategy, exchange, timeframe) group: spec 9.3 title, exchange, timeframe."""
    try:
        title = get_strategy(strategy).title
    except ValueError:  # a pending alert of a variant since removed from the config file
        title = strategy
    title = html.escape(title)
    return f"<b>{title}</b>\n{html.escape(exchange)} · {html.escape(timeframe)}"


def bar_line(hit: Hit) -> str:
    """``Bar: 2025-03-20 00:00 UTC (closed bar)``: the bar's open time and whether it is still forming."""
    stamp = pd.Timestamp(hit.bar_time)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    bar = "current bar, forming" if hit.current_bar else "closed bar"
    return f"Bar: {stamp.strftime(BAR_TIME_FORMAT)} ({bar})"


def alert_fields(hit: Hit) -> list[tuple[str, str]]:
    """(label, formatted value) of every field the hit's strategy declares for its alerts (spec 9.3)."""
    strategy = get_strategy(hit.strategy)
    return [(label, _field_text(strategy, hit, key, fmt)) for label, key, fmt in strategy.alert_fields]


def _linked(exchange: str, symbol: str, text: str) -> str:
    url = tradingview_url(exchange, symbol)
    return f'<a href="{html.escape(url, quote=True)}">{html.escape(text)}</a>' if url else html.escape(text)


def format_block(hit: Hit, *, novelty: str | None = None, also_on: Sequence[Hit] = ()) -> str:
    """One hit: linked symbol, bar time (forming or closed) and the strategy's spec 9.3 metrics.

    ``also_on`` holds the same asset's hits on other exchanges for the same bar (one block for a
    grouped asset); ``novelty`` says whether the strategy fired on this market recently.
    """
    lines = [f"<b>{_linked(hit.exchange, hit.symbol, hit.symbol)}</b>", bar_line(hit)]
    if also_on:
        names = [_linked(h.exchange, h.symbol, h.exchange) for h in (hit, *also_on)]
        lines.append("Exchanges: " + ", ".join(names))
    for label, value in alert_fields(hit):
        lines.append(f"{html.escape(label)}: {html.escape(value)}")
    if novelty:
        lines.append(f"Seen: {html.escape(novelty)}")
    return "\n".join(lines)


def format_messages(hits: Iterable[Hit], *, channel: str | None = None) -> list[tuple[str, str]]:
    """``(channel, html_text)`` per message, as :func:`send_alerts` would send them (no I/O)."""
    from scanner.sinks.base import Item
    from scanner.sinks.telegram import pack

    by_channel: dict[str, list[Item]] = {}
    for hit in hits:
        name = channel or get_strategy(hit.strategy).channel
        item = Item((), "alert", format_block(hit), (hit.strategy, hit.exchange, hit.timeframe))
        by_channel.setdefault(name, []).append(item)
    return [
        (ch, text) for ch, items in by_channel.items() for text, _ in pack(items, lambda g: format_header(*g))
    ]


def validate_alert_targets(
    strategies: Iterable[str],
    users: Iterable[str],
    config: TelegramConfig | None = None,
    channel: str | None = None,
    *,
    webhooks: Mapping[str, str] | None = None,
    settings: AlertSettings | None = None,
) -> None:
    """Fail early, with every problem named, if alerts for ``strategies`` cannot reach ``users``.

    Raises ``ValueError`` for an unknown strategy or user (a user is known by a Telegram chat or a
    webhook of that name; the message lists the configured ones), an unknown channel (listing the
    channels), or a needed channel without a bot token (naming the env var) when a user is reached
    on Telegram.
    """
    from scanner.alerts import SINK_TELEGRAM, alert_settings, resolve_targets
    from scanner.sinks.webhook import webhook_urls

    cfg = config or telegram_config()
    hooks = webhook_urls() if webhooks is None else webhooks
    choices = (settings or alert_settings()).sinks
    problems: list[str] = []
    names: list[str] = []
    requested = list(strategies)
    try:
        names = resolve_strategies(requested) if requested else []
    except ValueError as exc:
        problems.append(str(exc))
    needs_bot = True
    try:
        targets = resolve_targets(users, cfg, hooks, choices)
        needs_bot = any(t.sink == SINK_TELEGRAM for t in targets)
    except ValueError as exc:
        problems.append(str(exc))
    if channel is not None and channel not in CHANNELS:
        problems.append(f"unknown Telegram channel {channel!r}; channels: {', '.join(CHANNELS)}")
    elif needs_bot:
        needed = {channel} if channel else {get_strategy(s).channel for s in names}
        for name in sorted(needed):
            if name not in cfg.tokens:
                problems.append(
                    f"no bot token for Telegram channel {name!r}: set SCANNER_TELEGRAM_TOKEN_{name.upper()}"
                )
    if problems:
        raise ValueError("; ".join(problems))


async def send_alerts(
    hits: list[Hit],
    users: list[str],
    *,
    config: TelegramConfig | None = None,
    ledger: AlertLedger | None = None,
    channel: str | None = None,
) -> AlertReport:
    """Send ``hits`` to every user's chat (and webhook) per channel; never raises for a delivery.

    ``channel`` sends every hit through that channel instead of the registry's (spec 9.3). With a
    ``ledger``, alerts already sent to a chat are skipped and earlier undelivered ones are re-sent.
    Misconfiguration (unknown user or channel, missing token) raises ``ValueError`` before sending.
    The richer entry (charts, grouping, novelty, run summary) is :func:`scanner.alerts.deliver`.
    """
    from scanner.alerts import Sinks, alert_pieces, deliver_pieces, resolve_targets

    sinks = Sinks.configured(config)
    validate_alert_targets(sorted({h.strategy for h in hits}), users, sinks.telegram, channel,
                           webhooks=sinks.webhooks, settings=sinks.settings)
    targets = resolve_targets(users, sinks.telegram, sinks.webhooks, sinks.settings.sinks)
    pieces = alert_pieces(hits, channel)
    return await deliver_pieces(pieces, targets, sinks, ledger, channels=CHANNELS)
