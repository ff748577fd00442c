"""The Telegram sink: one bot per channel (python-telegram-bot), HTML messages, photos for charts.

The only module that imports python-telegram-bot. Text messages are split at block boundaries
below Telegram's 4,096-character limit; a chart goes out as ``sendPhoto`` with the alert as its
HTML caption (within 1,024 characters) when a batch has few alerts, otherwise as media groups of
up to 10 photos followed by the text message.
"""

from __future__ import annotations

import html
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import telegram
from telegram import InputMediaPhoto, LinkPreviewOptions
from telegram.constants import MediaGroupLimit, MessageLimit, ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter
from telegram.request import HTTPXRequest

from scanner.ledger import KIND_ALERT, KIND_CHART
from scanner.sinks.base import Failure, Item, Message, Outcome, Sink
from utils.logging import redact

# Telegram's limits, counted here in UTF-16 units of the raw HTML, which is never shorter than what
# Telegram counts after parsing the entities.
MAX_MESSAGE_CHARS: int = int(MessageLimit.MAX_TEXT_LENGTH)
MAX_CAPTION_CHARS: int = int(MessageLimit.CAPTION_LENGTH)
MAX_ALBUM_PHOTOS: int = int(MediaGroupLimit.MAX_MEDIA_LENGTH)
# Up to this many alerts in one batch, each chart carries its alert as the caption; above it the
# charts go as albums and the alerts as one text message (a run with many hits stays readable).
CAPTIONED_ALERTS_MAX = 3
BLOCK_SEPARATOR = "\n\n"
# Bad requests that mean the chat itself is gone, not that this one message was wrong.
GONE_CHAT_MARKERS: tuple[str, ...] = ("chat not found", "user is deactivated", "group chat was deleted")


def telegram_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def reason(exc: BaseException | None) -> str:
    """``Type: message``, redacted, without doubling a message that already names its type."""
    text = str(exc)
    name = type(exc).__name__
    return redact(text if text.startswith(name) else f"{name}: {text}")


def pack(
    items: Sequence[Item], header_of: Callable[[tuple[str, str, str]], str], limit: int = MAX_MESSAGE_CHARS
) -> list[tuple[str, list[Item]]]:
    """Messages of at most ``limit`` characters: groups in first-seen order, a header per group,
    split only between blocks (a continued group repeats its header)."""
    groups: dict[tuple[str, str, str] | None, list[Item]] = {}
    for item in items:
        groups.setdefault(item.group, []).append(item)
    messages: list[tuple[str, list[Item]]] = []
    pieces: list[str] = []
    members: list[Item] = []
    for group, grouped in groups.items():
        header = header_of(group) if group is not None else None
        header_in_message = header is None
        for item in grouped:
            new = [item.text] if header_in_message else [header, item.text]
            if members and telegram_length(BLOCK_SEPARATOR.join(pieces + new)) > limit:
                messages.append((BLOCK_SEPARATOR.join(pieces), members))
                pieces, members = [], []
                new = [item.text] if header is None else [header, item.text]
            pieces.extend(new)
            members.append(item)
            header_in_message = True
    if members:
        messages.append((BLOCK_SEPARATOR.join(pieces), members))
    return messages


def _retry_after_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PTB 22 deprecates the int form; both forms are handled
        value = exc.retry_after
    return value.total_seconds() if hasattr(value, "total_seconds") else float(value)


class TelegramSink(Sink):
    """One channel's bot; targets are chat ids."""

    kind = "telegram"

    def __init__(self, channel: str, token: str, base_url: str, timeout_s: float | None = None) -> None:
        """``timeout_s`` bounds connecting, sending and reading an answer; None keeps PTB's defaults."""
        self.channel = channel
        if timeout_s is None:
            self.bot = telegram.Bot(token, base_url=base_url)
        else:
            request = HTTPXRequest(
                connect_timeout=timeout_s, read_timeout=timeout_s, write_timeout=timeout_s,
                media_write_timeout=timeout_s,
            )
            self.bot = telegram.Bot(token, base_url=base_url, request=request)

    async def open(self) -> None:
        await self.bot.initialize()  # getMe: a rejected token fails here, once per channel

    async def close(self) -> None:
        await self.bot.shutdown()

    def alert_text(self, hits: Sequence[Any], novelty: str | None) -> str:
        from scanner.notifier import format_block

        return format_block(hits[0], novelty=novelty, also_on=hits[1:])

    def header(self, group: tuple[str, str, str]) -> str:
        from scanner.notifier import format_header

        return format_header(*group)

    def notice_text(self, title: str, lines: Sequence[str]) -> str:
        return "\n".join([f"<b>{html.escape(title)}</b>", *(html.escape(line) for line in lines)])

    def render(self, items: Sequence[Item]) -> list[Message]:
        alerts = [i for i in items if i.kind == KIND_ALERT]
        charts = {i.key: i for i in items if i.kind == KIND_CHART and i.image is not None}
        others = [i for i in items if i.kind not in (KIND_ALERT, KIND_CHART)]
        messages: list[Message] = []
        if len(alerts) <= CAPTIONED_ALERTS_MAX:
            for alert in list(alerts):
                chart = charts.get(alert.key.as_kind(KIND_CHART))
                parts = [self.header(alert.group), alert.text] if alert.group else [alert.text]
                caption = BLOCK_SEPARATOR.join(parts)
                if chart is not None and telegram_length(caption) <= MAX_CAPTION_CHARS:
                    messages.append(Message((chart, alert), ("photo", chart.image, caption)))
                    alerts.remove(alert)
                    del charts[chart.key]
        photos = list(charts.values())
        for start in range(0, len(photos), MAX_ALBUM_PHOTOS):
            album = photos[start : start + MAX_ALBUM_PHOTOS]
            if len(album) == 1:
                messages.append(Message(tuple(album), ("photo", album[0].image, album[0].text)))
            else:
                messages.append(Message(tuple(album), ("album", [(p.image, p.text) for p in album])))
        for text, members in pack(alerts, self.header) + pack(others, self.header):
            messages.append(Message(tuple(members), ("text", text)))
        return messages

    async def send(self, chat: str, message: Message) -> None:
        kind, *payload = message.body
        if kind == "text":
            await self.bot.send_message(
                chat_id=chat, text=payload[0], parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        elif kind == "photo":
            await self.bot.send_photo(
                chat_id=chat, photo=payload[0], caption=payload[1], parse_mode=ParseMode.HTML
            )
        else:
            media = [InputMediaPhoto(image, caption=text, parse_mode=ParseMode.HTML) for image, text in payload[0]]
            await self.bot.send_media_group(chat_id=chat, media=media)

    def classify(self, exc: BaseException) -> Failure:
        text = reason(exc)
        if isinstance(exc, RetryAfter):
            return Failure(Outcome.RETRY_AFTER, text, _retry_after_seconds(exc))
        if isinstance(exc, Forbidden):
            return Failure(Outcome.PERMANENT, text)
        if isinstance(exc, BadRequest):
            gone = any(marker in str(exc).lower() for marker in GONE_CHAT_MARKERS)
            return Failure(Outcome.PERMANENT if gone else Outcome.REJECTED, text)
        if isinstance(exc, NetworkError) and not isinstance(exc, InvalidToken):
            return Failure(Outcome.RETRY, text)
        return Failure(Outcome.LATER, text)
