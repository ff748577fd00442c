"""Alerts: plan what each target gets through the ledger, then deliver it through the target's sink.

Every kind of message (alert blocks, charts, run summaries, admin notices) follows one path, so
each is delivered exactly once across restarts and concurrent runs:

1. per (ledger channel, target) the sender takes the ledger's lease (``AlertLedger.claim``);
2. it plans: the target's pending items first (from earlier runs), then the new ones not sent yet,
   each stored as ``pending`` before anything is sent;
3. the sink renders the items into messages; each message is sent with bounded retries and its
   items marked ``sent`` (or the failure recorded) right after the answer.

A send that times out after the receiver took it is the one known gap: the item stays pending and
the next attempt delivers it a second time (at least once, never lost).

Failures are classified by the sink (:mod:`scanner.sinks.base`). A target that refuses for good (a
chat that blocked the bot, a deleted webhook) is counted once per run; after
``undeliverable_after`` runs (default 3) its pending items are marked ``undeliverable``, the next
run summary says so once, and later runs no longer count it as a failure: new items are still tried
once per run, so a chat that unblocks the bot receives again, and a success clears the mark.

Configuration (read by :mod:`scanner.sinks.config`; local TOML file, env wins where named):

- ``[webhooks] <name> = "<url>"`` or ``SCANNER_WEBHOOK_URL_<NAME>``: a webhook target named like a user;
- ``[sinks] <user> = ["telegram", "webhook"]``: which sinks a user gets (default: every sink that
  has a target of that name);
- ``[telegram] charts = true``: a chart per alert;
- ``[alerts] summary_user``, ``group_assets`` (default true), ``undeliverable_after`` (3),
  ``novelty_bars`` (20), ``admin_channel`` (the bot used for summaries and notices).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from exchanges.retry import call_with_retries
from scanner.ledger import (
    KIND_ALERT,
    KIND_CHART,
    KIND_NOTICE,
    KIND_SUMMARY,
    STATUS_PENDING,
    AlertKey,
    AlertLedger,
    LedgerEntry,
)
from scanner.registry import get_strategy
from scanner.results import AlertFailure, AlertReport, Hit, ScanResult
from scanner.sinks.base import Failure, Item, Message, Outcome, Sink
from scanner.sinks.config import (
    SINK_KINDS,
    SINK_TELEGRAM,
    SINK_WEBHOOK,
    AlertSettings,
    Sinks,
    Target,
    admin_channel,
    alert_settings,
    resolve_targets,
)
from utils.config import CHANNELS, TelegramConfig
from utils.logging import install_redaction, register_secret
from utils.timeframes import get_timeframe

log = logging.getLogger(__name__)

__all__ = [
    "SINK_KINDS", "SINK_TELEGRAM", "SINK_WEBHOOK", "AlertSettings", "DeliveryReport", "Sinks", "Target",
    "admin_channel", "alert_settings", "deliver", "deliver_pieces", "render_charts", "resolve_targets",
    "send_notice", "send_summary",
]

# Retries of one send (or of opening a sink): flood-control waits and transient errors share it.
SEND_ATTEMPTS = 4
BACKOFF_BASE_S = 0.25
BACKOFF_MAX_S = 4.0
# A wait asked for longer than this is not waited out: the items stay pending for the next run.
MAX_FLOOD_WAIT_S = 60.0
FOUR_HOURS = pd.Timedelta(hours=4)  # the one timeframe not built from days
SEVERAL_EXCHANGES = "several exchanges"
SUMMARY_TITLE = "Scan summary"
CHART_GONE = "chart not rebuilt: the candles of this bar are no longer held"
# One id per process: a target refusing several times within one run counts as one failed run.
RUN_ID = uuid.uuid4().hex

Candles = Callable[[str, str, str], pd.DataFrame | None] | Mapping[tuple[str, str, str], pd.DataFrame]


@dataclass
class DeliveryReport(AlertReport):
    """:class:`AlertReport` plus what the new kinds of delivery need to say.

    ``charts``: charts delivered; ``newly_undeliverable``: "channel -> user" of targets marked
    undeliverable in this run.
    """

    charts: int = 0
    newly_undeliverable: list[str] = field(default_factory=list)

    def merge(self, other: AlertReport) -> None:
        super().merge(other)
        if isinstance(other, DeliveryReport):
            self.charts += other.charts
            self.newly_undeliverable.extend(other.newly_undeliverable)



# --- what is sent ---------------------------------------------------------------------------------


@dataclass(eq=False)
class Piece:
    """Something to deliver to every target of a channel, before it is rendered by a sink.

    ``ids`` holds one market id (exchange, symbol, timeframe, strategy, bar time, bar) per ledger
    key: several when one asset is grouped across exchanges. ``text`` renders it for a sink.
    """

    kind: str
    channel: str
    ids: tuple[tuple[str, str, str, str, str, str], ...]
    text: Callable[[Sink], str]
    group: tuple[str, str, str] | None = None
    image: bytes | None = None

    def keys(self, chat: str) -> tuple[AlertKey, ...]:
        return tuple(AlertKey(self.channel, str(chat), *i, kind=self.kind) for i in self.ids)


def market_id(hit: Hit) -> tuple[str, str, str, str, str, str]:
    bar = "current" if hit.current_bar else "closed"
    return (hit.exchange, hit.symbol, hit.timeframe, hit.strategy, AlertKey.bar_time_text(hit.bar_time), bar)


def group_hits(hits: Sequence[Hit], group_assets: bool) -> list[tuple[Hit, ...]]:
    """Hits of one asset, strategy, timeframe and bar on several exchanges together (first seen first)."""
    from exchanges.links import asset_name

    groups: dict[Any, list[Hit]] = {}
    for hit in hits:
        key: Any = (hit.strategy, hit.timeframe, asset_name(hit.exchange, hit.symbol), market_id(hit)[4:])
        key = key if group_assets else market_id(hit)
        same = groups.setdefault(key, [])
        if all(h.exchange != hit.exchange for h in same):
            same.append(hit)
    return [tuple(g) for g in groups.values()]


def novelty(ledger: AlertLedger, hit: Hit, bars: int) -> str:
    """"new", or "again, N bars ago" when the same strategy fired on this market within ``bars``."""
    key = AlertKey("", "", *market_id(hit))
    last = ledger.last_fired_before(key)
    if last is None:
        return "new"
    tf = get_timeframe(hit.timeframe)
    length = pd.Timedelta(days=tf.period_days) if tf.period_days else FOUR_HOURS
    ago = round((pd.Timestamp(key.bar_time) - pd.Timestamp(last)) / length)
    if ago > bars:
        return "new"
    return f"again, {ago} bar{'s' if ago != 1 else ''} ago"


def alert_pieces(
    hits: Sequence[Hit],
    channel: str | None,
    *,
    group_assets: bool = False,
    novelty_of: Callable[[Hit], str | None] | None = None,
    images: Mapping[tuple[str, ...], bytes] | None = None,
) -> list[Piece]:
    """One piece per alert block (and per chart in ``images``, keyed by the hit's market id)."""
    pieces: list[Piece] = []
    for group in group_hits(hits, group_assets):
        first = group[0]
        name = channel or get_strategy(first.strategy).channel
        seen = novelty_of(first) if novelty_of else None
        label = first.exchange if len(group) == 1 else SEVERAL_EXCHANGES
        pieces.append(
            Piece(
                KIND_ALERT, name, tuple(market_id(h) for h in group),
                lambda sink, g=group, s=seen: sink.alert_text(g, s), (first.strategy, label, first.timeframe),
            )
        )
        image = (images or {}).get(market_id(first))
        if image is not None:
            pieces.append(
                Piece(
                    KIND_CHART, name, (market_id(first),),
                    lambda sink, h=first: sink.notice_text(chart_caption(h), []), image=image,
                )
            )
    return pieces


def chart_caption(hit: Hit) -> str:
    return f"{hit.symbol} · {hit.exchange} · {hit.timeframe} · {get_strategy(hit.strategy).title}"


def notice_piece(channel: str, kind: str, key: str, title: str, lines: Sequence[str]) -> Piece:
    """A summary or notice: its own ``key`` makes it exactly-once per target."""
    ids = (("", key, "", "", "", "closed"),)
    return Piece(kind, channel, ids, lambda sink: sink.notice_text(title, lines))


# --- sending ----------------------------------------------------------------------------------------


async def attempt(call: Callable[[], Awaitable[Any]], sink: Sink) -> Failure | None:
    """Run ``call`` with bounded retries as the sink classifies its failures; None on success.

    The loop is the exchanges' (``exchanges.retry``): a transient failure waits a capped exponential
    backoff, a short ``retry_after`` is waited out, anything else ends the attempts at once.
    """

    def worth_retrying(exc: Exception) -> bool:
        failure = sink.classify(exc)
        short_wait = (failure.retry_after or 0.0) <= MAX_FLOOD_WAIT_S
        return failure.outcome is Outcome.RETRY or (failure.outcome is Outcome.RETRY_AFTER and short_wait)

    def wait(exc: Exception, number: int) -> float:
        failure = sink.classify(exc)
        if failure.outcome is Outcome.RETRY_AFTER:
            delay = failure.retry_after or 0.0
        else:
            delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (number - 1))
        log.warning("%s %s call failed (%s); retry %d in %.2fs", sink.kind, sink.channel, failure.reason,
                    number, delay)
        return delay

    try:
        await call_with_retries(call, SEND_ATTEMPTS, worth_retrying, wait)
    except Exception as exc:  # noqa: BLE001 - classified by the sink, never raised to the caller
        return sink.classify(exc)
    return None


def _alert_keys(items: Iterable[Item]) -> list[AlertKey]:
    return [k for item in items if item.kind == KIND_ALERT for k in item.keys]


class TargetSender:
    """Delivers one sink's items to one target, consulting and updating the ledger."""

    def __init__(
        self, sink: Sink, target: Target, ledger: AlertLedger | None, report: DeliveryReport,
        settings: AlertSettings, redraw: Callable[[AlertKey], bytes | None] | None = None,
        run_id: str = RUN_ID,
    ) -> None:
        self.sink, self.target, self.chat = sink, target, target.chat
        self.ledger, self.report, self.settings, self.redraw = ledger, report, settings, redraw
        self.run_id = run_id

    def has_work(self, pieces: Sequence[Piece]) -> bool:
        """Whether anything is to be sent to this target (checked before opening the sink)."""
        if self.ledger is None:
            return bool(pieces)
        if self.ledger.pending(self.sink.channel, self.chat):
            return True
        return any(not self.ledger.is_sent(k) for p in pieces for k in p.keys(self.chat))

    def _from_entries(self, entries: list[LedgerEntry]) -> list[Item]:
        grouped: dict[str, list[LedgerEntry]] = {}
        for entry in entries:
            grouped.setdefault(entry.group or repr(entry.key), []).append(entry)
        items = []
        for members in grouped.values():
            k = members[0].key
            label = k.exchange if len(members) == 1 else SEVERAL_EXCHANGES
            group = (k.strategy, label, k.timeframe) if k.kind == KIND_ALERT else None
            items.append(Item(tuple(e.key for e in members), k.kind, members[0].text, group))
        return items

    def plan(self, pieces: Sequence[Piece]) -> tuple[list[Item], set[AlertKey]]:
        """Earlier undelivered items first, then new ones not sent yet; every one stored as pending.

        Returns the items to send and the keys that came from the ledger. A pending item that the
        new scan finds again is sent once, with the newer text.
        """
        pending: dict[AlertKey, Item] = {}
        if self.ledger is not None:
            for item in self._from_entries(self.ledger.pending(self.sink.channel, self.chat)):
                pending.update(dict.fromkeys(item.keys, item))
        fresh: dict[AlertKey, Item] = {}
        for piece in pieces:
            keys = piece.keys(self.chat)
            if keys[0] in fresh:
                continue
            if self.ledger is not None:
                sent = [k for k in keys if k not in pending and self.ledger.is_sent(k)]
                if piece.kind == KIND_ALERT:
                    self.report.duplicates_skipped += len(sent)
                keys = tuple(k for k in keys if k not in sent)
                if not keys:
                    continue
            item = Item(keys, piece.kind, piece.text(self.sink), piece.group, piece.image)
            if len(piece.ids) > 1 and item.group is not None and len(keys) == 1:
                item = Item(keys, piece.kind, item.text, (piece.group[0], keys[0].exchange, piece.group[2]))
            fresh.update(dict.fromkeys(keys, item))
            if self.ledger is not None:
                group = repr(keys[0]) if len(keys) > 1 else None
                for key in keys:
                    self.ledger.add_pending(key, item.text, group)
        items: list[Item] = []
        for key, item in pending.items():
            chosen = fresh.get(key, item)
            if chosen not in items:
                items.append(chosen)
        items += [item for item in dict.fromkeys(fresh.values()) if item not in items]
        return items, set(pending)

    async def _with_images(self, items: list[Item]) -> list[Item]:
        """Charts re-read from the ledger are drawn again from the candles, or given up."""
        ready: list[Item] = []
        for item in items:
            if item.kind != KIND_CHART or item.image is not None:
                ready.append(item)
                continue
            image = await asyncio.to_thread(self.redraw, item.key) if self.redraw else None
            if image is None:
                if self.ledger is not None:
                    self.ledger.mark_undeliverable(list(item.keys), CHART_GONE)
                log.warning("%s: %s", self.target.user, CHART_GONE)
                continue
            ready.append(Item(item.keys, item.kind, item.text, item.group, image))
        return ready

    async def send(self, pieces: Sequence[Piece], open_failure: Failure | None) -> None:
        lock = self.ledger.claim(self.sink.channel, self.chat) if self.ledger else contextlib.nullcontext()
        async with lock:
            items, from_ledger = self.plan(pieces)
            items = await self._with_images(items)
            if not items:
                return
            if open_failure is not None:
                self._failed(items, open_failure)
                return
            messages = self.sink.render(items)
            for index, message in enumerate(messages):
                failure = await attempt(lambda m=message: self.sink.send(self.chat, m), self.sink)
                if failure is None:
                    self._delivered(message, from_ledger)
                elif failure.outcome is Outcome.REJECTED:
                    self._failed(list(message.items), failure)
                else:
                    self._failed([i for m in messages[index:] for i in m.items], failure)
                    return

    def _delivered(self, message: Message, from_ledger: set[AlertKey]) -> None:
        keys = [k for item in message.items for k in item.keys]
        alerts = _alert_keys(message.items)
        if self.ledger is not None:
            self.ledger.mark_sent(keys)
            self.ledger.target_ok(self.sink.channel, self.chat)
        self.report.messages += 1
        self.report.sent += len(alerts)
        self.report.charts += sum(item.kind == KIND_CHART for item in message.items)
        self.report.retried_from_ledger += sum(k in from_ledger for k in alerts)

    def _failed(self, items: list[Item], failure: Failure) -> None:
        keys = [k for item in items for k in item.keys]
        alerts = len(_alert_keys(items))
        where = f"{self.sink.channel} -> {self.target.user}"
        if self.ledger is not None and failure.outcome is Outcome.PERMANENT:
            known = self.ledger.target_undeliverable(self.sink.channel, self.chat)
            now = known or self.ledger.target_failed(
                self.sink.channel, self.chat, failure.reason, self.run_id, self.settings.undeliverable_after
            )
            if now:
                self.ledger.mark_undeliverable(keys, failure.reason)
                self.report.undeliverable += alerts
                log.warning(
                    "%s %s: %d alert(s) undeliverable: %s", self.sink.kind, where, alerts, failure.reason
                )
                if not known:
                    self.report.newly_undeliverable.append(where)
                    self.report.failures.append(
                        AlertFailure(self.sink.channel, self.target.user,
                                     f"{failure.reason} (undeliverable after "
                                     f"{self.settings.undeliverable_after} runs; no longer retried)")
                    )
                return
        if self.ledger is not None:
            self.ledger.mark_failed(keys, failure.reason)
        self.report.pending += alerts
        log.warning("%s %s: %d alert(s) not delivered: %s", self.sink.kind, where, alerts, failure.reason)
        self.report.failures.append(AlertFailure(self.sink.channel, self.target.user, failure.reason))


async def deliver_through(
    sink: Sink,
    targets: Sequence[Target],
    pieces: Sequence[Piece],
    ledger: AlertLedger | None,
    report: DeliveryReport,
    settings: AlertSettings,
    redraw: Callable[[AlertKey], bytes | None] | None = None,
    run_id: str = RUN_ID,
) -> None:
    """Open the sink once (when any target has work) and serve every target concurrently."""
    unique: dict[str, Target] = {}  # one sender per chat, named after the first user mapped to it
    for target in targets:
        unique.setdefault(target.chat, target)
    senders = [TargetSender(sink, t, ledger, report, settings, redraw, run_id) for t in unique.values()]
    if not any(s.has_work(pieces) for s in senders):
        report.duplicates_skipped += sum(
            len({k for p in pieces if p.kind == KIND_ALERT for k in p.keys(s.chat)}) for s in senders
        )
        return
    try:
        open_failure = await attempt(sink.open, sink)
        await asyncio.gather(*(s.send(pieces, open_failure) for s in senders))
    finally:
        await sink.close()




async def deliver_pieces(
    pieces: Sequence[Piece],
    targets: Sequence[Target],
    sinks: Sinks,
    ledger: AlertLedger | None,
    *,
    channels: Iterable[str] = (),
    redraw: Callable[[AlertKey], bytes | None] | None = None,
    run_id: str = RUN_ID,
) -> DeliveryReport:
    """Deliver ``pieces`` (and pending items of ``channels``) to ``targets``; never raises for a delivery."""
    install_redaction()
    register_secret(*sinks.telegram.tokens.values(), *sinks.webhooks.values())
    report = DeliveryReport()
    by_channel: dict[str, list[Piece]] = {}
    for piece in pieces:
        by_channel.setdefault(piece.channel, []).append(piece)
    if ledger is not None:
        for name in channels:
            if name not in by_channel and any(ledger.pending(name, t.chat) for t in targets):
                by_channel[name] = []
    jobs = []
    for channel, channel_pieces in by_channel.items():
        for kind in SINK_KINDS:
            chosen = [t for t in targets if t.sink == kind]
            sink = sinks.build(channel, kind) if chosen else None
            if sink is not None:
                jobs.append(
                    deliver_through(
                        sink, chosen, channel_pieces, ledger, report, sinks.settings, redraw, run_id
                    )
                )
    await asyncio.gather(*jobs)
    return report


# --- the public entry points ----------------------------------------------------------------------


@contextlib.contextmanager
def _ledger(ledger: AlertLedger | None) -> Any:
    if ledger is not None:
        yield ledger
        return
    opened = AlertLedger()
    try:
        yield opened
    finally:
        opened.close()


def _lookup(candles: Candles | None, hit: Hit) -> pd.DataFrame | None:
    if candles is None:
        return None
    key = (hit.exchange, hit.timeframe, hit.symbol)
    return candles.get(key) if isinstance(candles, Mapping) else candles(*key)


async def deliver(
    result: ScanResult,
    users: Sequence[str],
    channel: str | None = None,
    *,
    charts: bool | None = None,
    summary_user: str | None = None,
    group_assets: bool | None = None,
    candles: Candles | None = None,
    ledger: AlertLedger | None = None,
    telegram: TelegramConfig | None = None,
    webhooks: Mapping[str, str] | None = None,
    settings: AlertSettings | None = None,
    run_id: str = RUN_ID,
) -> DeliveryReport:
    """Send a scan's hits (and pending items of earlier runs) to ``users`` through their sinks.

    ``charts`` draws a chart per alert from ``candles`` (a mapping or callable giving the OHLCV
    frame of (exchange, timeframe, symbol)); ``summary_user`` gets a run summary, even when nothing
    fired; ``group_assets`` makes one block of an asset hit on several exchanges. Each defaults to
    the config file (:func:`alert_settings`). ``run_id`` names the run (a long-lived process
    passes one per run): a target refusing delivery counts once per run. Misconfiguration raises
    ``ValueError`` before sending.
    """
    sinks = Sinks.configured(telegram, webhooks, settings)
    cfg = sinks.settings
    charts = cfg.charts if charts is None else charts
    group_assets = cfg.group_assets if group_assets is None else group_assets
    summary_user = summary_user if summary_user is not None else cfg.summary_user
    from scanner.notifier import validate_alert_targets

    validate_alert_targets(sorted({h.strategy for h in result.hits}), users, sinks.telegram, channel,
                           webhooks=sinks.webhooks, settings=cfg)
    targets = resolve_targets(users, sinks.telegram, sinks.webhooks, cfg.sinks)
    admin_targets = (
        resolve_targets([summary_user], sinks.telegram, sinks.webhooks, cfg.sinks) if summary_user else []
    )
    admin_channel(sinks.telegram, cfg, admin_targets)
    images: dict[tuple[str, ...], bytes] = {}
    if charts:
        images = await render_charts(result.hits, candles)
    by_market = {market_id(h): h for h in result.hits}

    def redraw(key: AlertKey) -> bytes | None:
        hit = by_market.get((key.exchange, key.symbol, key.timeframe, key.strategy, key.bar_time, key.bar))
        frame = _lookup(candles, hit) if hit is not None else None
        if frame is None:
            return None
        from scanner.chart import render_png

        return render_png(frame, hit)

    with _ledger(ledger) as opened:
        pieces = alert_pieces(
            result.hits, channel, group_assets=group_assets, images=images,
            novelty_of=lambda h: novelty(opened, h, cfg.novelty_bars),
        )
        report = await deliver_pieces(
            pieces, targets, sinks, opened, channels=CHANNELS, redraw=redraw, run_id=run_id
        )
        if summary_user:
            await _send_summary(result, report, admin_targets, targets, sinks, opened, run_id)
    return report


async def send_summary(
    result: ScanResult,
    report: AlertReport,
    user: str,
    *,
    users: Sequence[str] = (),
    ledger: AlertLedger | None = None,
    telegram: TelegramConfig | None = None,
    webhooks: Mapping[str, str] | None = None,
    settings: AlertSettings | None = None,
    run_id: str = RUN_ID,
) -> DeliveryReport:
    """Send the run summary of ``result`` (and its alerts' ``report``) to ``user``, once per call.

    For a caller that delivers alerts per exchange as scans finish and sums the reports: call this
    once at the end of the run. ``users`` (the alert recipients) let the summary name a chat that
    became undeliverable by its user name, never its chat id.
    """
    sinks = Sinks.configured(telegram, webhooks, settings)
    admin_targets = resolve_targets([user], sinks.telegram, sinks.webhooks, sinks.settings.sinks)
    admin_channel(sinks.telegram, sinks.settings, admin_targets)
    targets = resolve_targets(users, sinks.telegram, sinks.webhooks, sinks.settings.sinks) if users else []
    totals = DeliveryReport()
    totals.merge(report)
    with _ledger(ledger) as opened:
        await _send_summary(result, totals, admin_targets, targets, sinks, opened, run_id)
    return totals


async def _send_summary(
    result: ScanResult, report: DeliveryReport, admin_targets: Sequence[Target], targets: Sequence[Target],
    sinks: Sinks, ledger: AlertLedger, run_id: str,
) -> None:
    """Build the summary, deliver it exactly once (its own ledger key), and add its outcome to ``report``."""
    lines = summary_lines(result, report, ledger, {t.chat: t.user for t in [*targets, *admin_targets]})
    channel = admin_channel(sinks.telegram, sinks.settings, admin_targets)
    piece = notice_piece(channel, KIND_SUMMARY, f"run-{uuid.uuid4().hex}", SUMMARY_TITLE, lines)
    summary = await deliver_pieces([piece], admin_targets, sinks, ledger, run_id=run_id)
    report.messages += summary.messages
    report.failures.extend(summary.failures)


async def send_notice(
    user: str,
    text: str,
    key: str,
    *,
    title: str = "Scanner",
    ledger: AlertLedger | None = None,
    telegram: TelegramConfig | None = None,
    webhooks: Mapping[str, str] | None = None,
    settings: AlertSettings | None = None,
) -> DeliveryReport:
    """Send one plain admin message to ``user`` through each of the user's sinks, once per ``key``.

    A second call with the same ``key`` sends nothing; an undelivered one is retried by the next
    call (with any key). ``ValueError`` for an unknown user or a user whose bot has no token.
    """
    sinks = Sinks.configured(telegram, webhooks, settings)
    targets = resolve_targets([user], sinks.telegram, sinks.webhooks, sinks.settings.sinks)
    channel = admin_channel(sinks.telegram, sinks.settings, targets)
    piece = notice_piece(channel, KIND_NOTICE, key, title, text.splitlines() or [""])
    with _ledger(ledger) as opened:
        report = await deliver_pieces([piece], targets, sinks, opened, channels=[channel])
    return report


# --- run summary ----------------------------------------------------------------------------------


def summary_lines(
    result: ScanResult, report: DeliveryReport, ledger: AlertLedger, users_by_chat: Mapping[str, str]
) -> list[str]:
    """Markets scanned, hits per strategy, failures by exchange, alerts pending and given up.

    A target newly marked undeliverable is named once (the ledger remembers it was announced).
    """
    listed = sum(s.listed for s in result.summaries)
    fetched = sum(s.fetched for s in result.summaries)
    scans = {(s.exchange, s.timeframe) for s in result.summaries}
    hits: dict[str, int] = {}
    for hit in result.hits:
        hits[hit.strategy] = hits.get(hit.strategy, 0) + 1
    failures: dict[str, list[str]] = {}
    for s in result.summaries:
        if s.error:
            failures.setdefault(s.exchange, []).append(f"{s.timeframe} failed: {s.error}")
        elif s.failed:
            failures.setdefault(s.exchange, []).append(f"{s.timeframe}: {len(s.failed)} symbols failed")
    lines = [
        f"Markets: {listed} listed, {fetched} fetched in {len(scans)} exchange x timeframe scans",
        "Hits: " + (", ".join(f"{name} {count}" for name, count in sorted(hits.items())) or "none"),
        "Failures: "
        + ("; ".join(f"{ex}: {', '.join(items)}" for ex, items in sorted(failures.items())) or "none"),
        (
            f"Alerts: {report.sent} sent, {report.duplicates_skipped} already sent, "
            f"{ledger.count(STATUS_PENDING, KIND_ALERT)} pending, {report.undeliverable} undeliverable"
        ),
    ]
    announced = ledger.unannounced_targets()
    for channel, chat, error in announced:
        who = users_by_chat.get(chat, "a chat")
        lines.append(f"Undeliverable from now on: {who} on {channel} ({error})")
    ledger.mark_announced([(channel, chat) for channel, chat, _ in announced])
    return lines


# --- charts ---------------------------------------------------------------------------------------


async def render_charts(hits: Sequence[Hit], candles: Candles | None) -> dict[tuple[str, ...], bytes]:
    """A PNG per hit whose candles are held, drawn off the event loop; a failing one is logged."""
    from scanner.chart import render_many

    jobs = []
    for hit in hits:
        frame = _lookup(candles, hit)
        if frame is None:
            log.warning("no candles held for the chart of %s %s %s", hit.exchange, hit.timeframe, hit.symbol)
            continue
        jobs.append((market_id(hit), frame, hit))
    if not jobs:
        return {}
    images = await asyncio.to_thread(render_many, [(frame, hit) for _, frame, hit in jobs])
    return {key: image for (key, _, _), image in zip(jobs, images) if image is not None}

