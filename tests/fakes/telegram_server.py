"""A fake Telegram Bot API on 127.0.0.1 for tests: ``getMe`` and ``sendMessage`` only.

Point python-telegram-bot at it with ``base_url=fake.base_url()`` ("http://127.0.0.1:<port>/bot").
It answers in the real API's JSON shapes (``ok``/``result`` or ``ok``/``error_code``/``description``
/``parameters``), accepts form or JSON bodies and query strings as PTB sends them, records every
message, rejects unknown tokens with 401 like the real API, checks the 4,096-character limit and
the HTML escaping rules, and injects faults per chat for the first N calls.
"""

from __future__ import annotations

import asyncio

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

MAX_TEXT_LENGTH = 4096
FAULT_KINDS = ("retry_after", "forbidden", "chat_not_found", "server_error", "drop")
_ALLOWED_TAG = re.compile(
    r"</?(b|strong|i|em|u|ins|s|strike|del|code|pre|tg-spoiler)>|<a href=\"[^\"<>]*\">|</a>"
)
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


def make_token(bot_id: int = 123456789, fill: str = "A") -> str:
    """A token-shaped fake built at runtime, so no token-like string is ever committed."""
    return f"{bot_id}:" + fill * 35


@dataclass
class SentMessage:
    """One accepted ``sendMessage`` call."""

    token: str
    chat_id: str
    text: str
    parse_mode: str | None
    params: dict[str, Any]


@dataclass
class Fault:
    """A fault served to one chat for its next ``times`` calls."""

    kind: str
    times: int
    retry_after: int = 1


@dataclass
class _Call:
    token: str
    method: str
    chat_id: str | None


@dataclass
class FakeBotApi:
    """The fake server; ``async with FakeBotApi(valid_tokens=[...]) as api``."""

    valid_tokens: list[str] = field(default_factory=list)
    messages: list[SentMessage] = field(default_factory=list)
    calls: list[_Call] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    send_delay: float = 0.0  # seconds before a sendMessage is answered (overlapping senders)

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._next_message_id = 1

    async def __aenter__(self) -> FakeBotApi:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def base_url(self) -> str:
        """The ``base_url`` python-telegram-bot expects (the token is appended to it)."""
        return f"http://127.0.0.1:{self._port}/bot"

    def add_fault(self, chat_id: str | int, kind: str, times: int = 1, retry_after: int = 1) -> None:
        """Serve ``kind`` (one of :data:`FAULT_KINDS`) to ``chat_id``'s next ``times`` sendMessage calls."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; kinds: {', '.join(FAULT_KINDS)}")
        self.faults.setdefault(str(chat_id), []).append(Fault(kind, times, retry_after))

    def messages_to(self, chat_id: str | int) -> list[SentMessage]:
        return [m for m in self.messages if m.chat_id == str(chat_id)]

    def send_calls(self, chat_id: str | int) -> int:
        """How many sendMessage requests reached the server for ``chat_id`` (faulted ones included)."""
        return sum(1 for c in self.calls if c.method == "sendMessage" and c.chat_id == str(chat_id))

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        return params

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        token, method = request.match_info["token"], request.match_info["method"]
        params = await self._params(request)
        chat_id = str(params["chat_id"]) if "chat_id" in params else None
        self.calls.append(_Call(token, method, chat_id))
        if token not in self.valid_tokens:
            return _error(401, "Unauthorized")
        if method == "getMe":
            return _ok(_bot_user(token))
        if method != "sendMessage":
            return _error(404, "Not Found")
        if chat_id is None:
            return _error(400, "Bad Request: chat_id is empty")
        if "text" not in params:
            return _error(400, "Bad Request: message text is empty")
        if self.send_delay:
            await asyncio.sleep(self.send_delay)
        fault = self._take_fault(chat_id)
        if fault is not None:
            return await _serve_fault(request, fault)
        text = str(params["text"])
        parse_mode = params.get("parse_mode")
        if len(text) > MAX_TEXT_LENGTH:
            return _error(400, "Bad Request: message is too long")
        if parse_mode == "HTML" and not _valid_html(text):
            return _error(400, "Bad Request: can't parse entities: unsupported start tag or bad escaping")
        self.messages.append(SentMessage(token, chat_id, text, parse_mode, params))
        message_id, self._next_message_id = self._next_message_id, self._next_message_id + 1
        return _ok(
            {
                "message_id": message_id,
                "from": _bot_user(token),
                "chat": {"id": _as_int(chat_id), "type": "private", "first_name": "User"},
                "date": int(time.time()),
                "text": text,
            }
        )

    def _take_fault(self, chat_id: str) -> Fault | None:
        queue = self.faults.get(chat_id, [])
        while queue and queue[0].times <= 0:
            queue.pop(0)
        if not queue:
            return None
        queue[0].times -= 1
        return queue[0]


async def _serve_fault(request: web.Request, fault: Fault) -> web.StreamResponse:
    if fault.kind == "retry_after":
        return _error(
            429,
            f"Too Many Requests: retry after {fault.retry_after}",
            {"retry_after": fault.retry_after},
        )
    if fault.kind == "forbidden":
        return _error(403, "Forbidden: bot was blocked by the user")
    if fault.kind == "chat_not_found":
        return _error(400, "Bad Request: chat not found")
    if fault.kind == "server_error":
        return _error(500, "Internal Server Error")
    assert request.transport is not None
    request.transport.close()  # "drop": the client sees the connection closed with no response
    return web.Response(status=500)


def _valid_html(text: str) -> bool:
    """Telegram's rule: only supported tags, and every other ``<``, ``>``, ``&`` escaped."""
    stripped = _ENTITY.sub("", _ALLOWED_TAG.sub("", text))
    return not any(ch in stripped for ch in "<>&")


def _bot_user(token: str) -> dict[str, Any]:
    return {
        "id": _as_int(token.split(":", 1)[0]),
        "is_bot": True,
        "first_name": "Fake Scanner Bot",
        "username": "fake_scanner_bot",
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }


def _as_int(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")
