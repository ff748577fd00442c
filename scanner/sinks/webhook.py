"""The webhook sink: POST JSON in the shape Discord webhooks accept, so any JSON receiver works too.

A message is ``{"content": ..., "embeds": [...]}``: the group header as content (<= 2,000
characters) and one embed per alert (title <= 256, description <= 4,096, footer <= 2,048, at most
10 embeds and 6,000 embed characters per message). A chart is attached as a file
(``multipart/form-data`` with ``payload_json`` and ``files[n]``) and shown as the embed's image.
429 answers are waited out as their ``retry_after`` asks; 404/401/403 (a deleted or revoked
webhook) are permanent; 5xx and timeouts are retried.

URLs come from ``SCANNER_WEBHOOK_URL_<NAME>`` or the ``[webhooks]`` table of the config file; a
URL holds a secret, so it is registered for redaction and never logged: logs name the webhook.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from scanner.ledger import KIND_ALERT, KIND_CHART
from scanner.sinks.base import Failure, Item, Message, Outcome, Sink
from utils.config import file_config
from utils.logging import redact, register_secret

ENV_PREFIX = "SCANNER_WEBHOOK_URL_"
CHAT_PREFIX = "webhook:"
# Discord's documented limits.
MAX_CONTENT_CHARS = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL_CHARS = 6000
MAX_TITLE_CHARS = 256
MAX_DESCRIPTION_CHARS = 4096
MAX_FOOTER_CHARS = 2048
MAX_FILES = 10
REQUEST_TIMEOUT_S = 15.0
PERMANENT_STATUSES = frozenset({401, 403, 404})
RETRY_STATUSES = frozenset({408, 425, 500, 502, 503, 504})
ELLIPSIS = "…"


def webhook_urls() -> dict[str, str]:
    """Webhook name -> URL from the ``[webhooks]`` table, then ``SCANNER_WEBHOOK_URL_<NAME>`` (wins)."""
    urls = {str(name): str(url) for name, url in file_config().get("webhooks", {}).items() if url}
    for key, value in os.environ.items():
        if key.startswith(ENV_PREFIX) and value:
            urls[key.removeprefix(ENV_PREFIX).lower()] = value
    register_secret(*urls.values())
    return urls


def webhook_chat(name: str) -> str:
    """The ledger's chat string of a webhook (never its URL, which is a secret)."""
    return f"{CHAT_PREFIX}{name}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


class WebhookError(Exception):
    """A non-2xx answer: the HTTP status, the receiver's message, and the wait it asked for."""

    def __init__(self, name: str, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"webhook {name}: HTTP {status}: {message}")
        self.status, self.retry_after = status, retry_after


def _embed_size(embed: Mapping[str, Any]) -> int:
    return len(embed.get("title", "")) + len(embed.get("description", "")) + len(
        embed.get("footer", {}).get("text", "")
    )


class WebhookSink(Sink):
    """Webhooks of one ledger channel; targets are ``webhook:<name>`` chats."""

    kind = "webhook"

    def __init__(self, channel: str, urls: Mapping[str, str], timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.channel, self.urls, self.timeout_s = channel, dict(urls), timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def alert_text(self, hits: Sequence[Any], novelty: str | None) -> str:
        from scanner.notifier import alert_fields, bar_line, tradingview_url
        from scanner.registry import get_strategy

        hit = hits[0]
        lines = [bar_line(hit)]
        if len(hits) > 1:
            lines.append("Exchanges: " + ", ".join(h.exchange for h in hits))
        lines += [f"{label}: {value}" for label, value in alert_fields(hit)]
        if novelty:
            lines.append(f"Seen: {novelty}")
        embed: dict[str, Any] = {
            "title": _cut(f"{hit.symbol} · {hit.exchange} · {hit.timeframe}", MAX_TITLE_CHARS),
            "description": _cut("\n".join(lines), MAX_DESCRIPTION_CHARS),
            "footer": {"text": _cut(get_strategy(hit.strategy).title, MAX_FOOTER_CHARS)},
        }
        url = tradingview_url(hit.exchange, hit.symbol)
        if url:
            embed["url"] = url
        return json.dumps(embed, ensure_ascii=False)

    def header(self, group: tuple[str, str, str]) -> str:
        from scanner.registry import get_strategy

        strategy, exchange, timeframe = group
        return _cut(f"**{get_strategy(strategy).title}** · {exchange} · {timeframe}", MAX_CONTENT_CHARS)

    def notice_text(self, title: str, lines: Sequence[str]) -> str:
        return _cut("\n".join([f"**{title}**", *lines]), MAX_CONTENT_CHARS)

    def render(self, items: Sequence[Item]) -> list[Message]:
        charts = {i.key: i for i in items if i.kind == KIND_CHART and i.image is not None}
        groups: dict[tuple[str, str, str] | None, list[Item]] = {}
        for item in items:
            if item.kind == KIND_ALERT:
                groups.setdefault(item.group, []).append(item)
        messages: list[Message] = []
        for group, alerts in groups.items():
            content = self.header(group) if group else ""
            batch: list[Item] = []
            for alert in alerts:
                size = sum(_embed_size(json.loads(a.text)) for a in [*batch, alert])
                if batch and (len(batch) == MAX_EMBEDS or size > MAX_EMBED_TOTAL_CHARS):
                    messages.append(self._embeds_message(content, batch, charts))
                    batch = []
                batch.append(alert)
            if batch:
                messages.append(self._embeds_message(content, batch, charts))
        leftover = list(charts.values())
        for start in range(0, len(leftover), MAX_FILES):
            chunk = leftover[start : start + MAX_FILES]
            files = [(f"chart-{n}.png", c.image) for n, c in enumerate(chunk)]
            content = _cut("\n".join(c.text for c in chunk), MAX_CONTENT_CHARS)
            messages.append(Message(tuple(chunk), {"payload": {"content": content}, "files": files}))
        for item in items:
            if item.kind not in (KIND_ALERT, KIND_CHART):
                messages.append(Message((item,), {"payload": {"content": item.text}, "files": []}))
        return messages

    def _embeds_message(self, content: str, alerts: list[Item], charts: dict[Any, Item]) -> Message:
        """One message of up to 10 embeds; an alert's chart (when in the batch) becomes its image."""
        embeds, files, members = [], [], list(alerts)
        for alert in alerts:
            embed = json.loads(alert.text)
            chart = charts.pop(alert.key.as_kind(KIND_CHART), None)
            if chart is not None:
                name = f"chart-{len(files)}.png"
                files.append((name, chart.image))
                embed["image"] = {"url": f"attachment://{name}"}
                members.append(chart)
            embeds.append(embed)
        payload: dict[str, Any] = {"content": content, "embeds": embeds}
        return Message(tuple(members), {"payload": payload, "files": files})

    async def send(self, chat: str, message: Message) -> None:
        name = chat.removeprefix(CHAT_PREFIX)
        url = self.urls.get(name)
        if url is None:
            raise WebhookError(name, 404, "no URL configured")
        if self._session is None:
            await self.open()
        assert self._session is not None
        payload, files = message.body["payload"], message.body["files"]
        if files:
            form = aiohttp.FormData()
            form.add_field("payload_json", json.dumps(payload), content_type="application/json")
            for n, (filename, data) in enumerate(files):
                form.add_field(f"files[{n}]", data, filename=filename, content_type="image/png")
            request = self._session.post(url, data=form)
        else:
            request = self._session.post(url, json=payload)
        async with request as response:
            if response.status < 300:
                return
            text = await response.text()
            raise _error(name, response.status, text, response.headers.get("Retry-After"))

    def classify(self, exc: BaseException) -> Failure:
        reason = redact(str(exc) if isinstance(exc, WebhookError) else f"{type(exc).__name__}: {exc}")
        if isinstance(exc, WebhookError):
            if exc.status == 429:
                return Failure(Outcome.RETRY_AFTER, reason, exc.retry_after or 1.0)
            if exc.status in PERMANENT_STATUSES:
                return Failure(Outcome.PERMANENT, reason)
            if exc.status in RETRY_STATUSES or exc.status >= 500:
                return Failure(Outcome.RETRY, reason)
            return Failure(Outcome.REJECTED, reason)
        if isinstance(exc, (aiohttp.ClientError, TimeoutError)):
            return Failure(Outcome.RETRY, reason)
        return Failure(Outcome.LATER, reason)


def _error(name: str, status: int, text: str, header: str | None) -> WebhookError:
    """The receiver's message (Discord: ``{"message": ..., "retry_after": seconds}``) as an error."""
    message, retry_after = text.strip()[:300] or "no body", None
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = str(body.get("message", message))
        if isinstance(body.get("retry_after"), (int, float)):
            retry_after = float(body["retry_after"])
    if retry_after is None and header:
        try:
            retry_after = float(header)
        except ValueError:
            retry_after = None
    return WebhookError(name, status, message, retry_after)
