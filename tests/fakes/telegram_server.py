"""A fake Telegram Bot API on 127.0.0.1 for tests: ``getMe``, ``sendMessage``, ``sendPhoto``, ``sendMediaGroup``.

Point python-telegram-bot at it with ``base_url=fake.base_url()`` ("http://127.0.0.1:<port>/bot").
It answers in the real API's JSON shapes (``ok``/``result`` or ``ok``/``error_code``/``description``
/``parameters``), accepts form or JSON bodies and query strings as PTB sends them, records every
message, rejects unknown tokens with 401 like the real API, checks the 4,096-character limit (1,024
for a caption, 2 to 10 photos in a media group) and the HTML escaping rules, and injects faults per
chat for the first N send calls (a "hang_after_delivery" fault records the message, then answers late).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.local_http import serve_locally

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MEDIA_GROUP_SIZES = range(2, 11)
SEND_METHODS = ("sendMessage", "sendPhoto", "sendMediaGroup")
FAULT_KINDS = ("retry_after", "forbidden", "chat_not_found", "server_error", "drop", "hang_after_delivery")
_ALLOWED_TAG = re.compile(
    r"</?(b|strong|i|em|u|ins|s|strike|del|code|pre|tg-spoiler)>|<a href=\"[^\"<>]*\">|</a>"
)
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


def make_token(bot_id: int = 123456789, fill: str = "A") -> str:
    """A token-shaped fake built at runtime, so no token-like string is ever committed."""
    return f"{bot_id}:" + fill * 35


@dataclass
class SentMessage:
    """One accepted send call; ``text`` is the caption(s) of a photo or media group."""

    token: str
    chat_id: str
    text: str
    parse_mode: str | None
    params: dict[str, Any]
    method: str = "sendMessage"
    photos: list[bytes] = field(default_factory=list)


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
    hang_s: float = 2.0  # how long a "hang_after_delivery" fault keeps the answer back

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._next_message_id = 1

    async def __aenter__(self) -> FakeBotApi:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner, self._port = await serve_locally(app)
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

    def messages_to(self, chat_id: str | int, method: str | None = "sendMessage") -> list[SentMessage]:
        """Accepted messages to ``chat_id`` of one method (text messages by default; None: all)."""
        return [m for m in self.messages if m.chat_id == str(chat_id) and method in (None, m.method)]

    def send_calls(self, chat_id: str | int) -> int:
        """How many send requests reached the server for ``chat_id`` (faulted ones included)."""
        return sum(1 for c in self.calls if c.method in SEND_METHODS and c.chat_id == str(chat_id))

    async def _params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        """The call's parameters and its uploaded files (multipart field name -> bytes)."""
        params: dict[str, Any] = dict(request.query)
        files: dict[str, bytes] = {}
        if request.can_read_body:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                for name, value in (await request.post()).items():
                    if isinstance(value, str):
                        params[name] = value
                    else:
                        files[name] = value.file.read()
        return params, files

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        token, method = request.match_info["token"], request.match_info["method"]
        params, files = await self._params(request)
        chat_id = str(params["chat_id"]) if "chat_id" in params else None
        self.calls.append(_Call(token, method, chat_id))
        if token not in self.valid_tokens:
            return _error(401, "Unauthorized")
        if method == "getMe":
            return _ok(_bot_user(token))
        if method not in SEND_METHODS:
            return _error(404, "Not Found")
        if chat_id is None:
            return _error(400, "Bad Request: chat_id is empty")
        if method == "sendMessage" and "text" not in params:
            return _error(400, "Bad Request: message text is empty")
        if self.send_delay:
            await asyncio.sleep(self.send_delay)
        fault = self._take_fault(chat_id)
        if fault is not None and fault.kind != "hang_after_delivery":
            return await _serve_fault(request, fault)
        try:
            sent = _accepted(token, chat_id, method, params, files)
        except ValueError as exc:
            return _error(400, f"Bad Request: {exc}")
        self.messages.append(sent)
        if fault is not None:  # delivered, but the answer comes after the client gave up
            await asyncio.sleep(self.hang_s)
        answers = [self._message(token, chat_id, sent.text) for _ in sent.photos or [None]]
        return _ok(answers if method == "sendMediaGroup" else answers[0])

    def _message(self, token: str, chat_id: str, text: str) -> dict[str, Any]:
        message_id, self._next_message_id = self._next_message_id, self._next_message_id + 1
        return {
            "message_id": message_id,
            "from": _bot_user(token),
            "chat": {"id": _as_int(chat_id), "type": "private", "first_name": "User"},
            "date": int(time.time()),
            "text": text,
        }

    def _take_fault(self, chat_id: str) -> Fault | None:
        queue = self.faults.get(chat_id, [])
        while queue and queue[0].times <= 0:
            queue.pop(0)
        if not queue:
            return None
        queue[0].times -= 1
        return queue[0]


def _accepted(token: str, chat_id: str, method: str, params: dict[str, Any], files: dict[str, bytes]) -> SentMessage:
    """The message a valid call sends; ``ValueError`` with the API's wording for a bad one."""
    if method == "sendMessage":
        parts = [(str(params["text"]), params.get("parse_mode"), None)]
        limit = MAX_TEXT_LENGTH
    elif method == "sendPhoto":
        parts = [(str(params.get("caption", "")), params.get("parse_mode"), params.get("photo"))]
        limit = MAX_CAPTION_LENGTH
    else:
        media = json.loads(params.get("media", "[]"))
        if len(media) not in MEDIA_GROUP_SIZES:
            raise ValueError("wrong number of media in the album")
        parts = [(m.get("caption", ""), m.get("parse_mode"), m.get("media")) for m in media]
        limit = MAX_CAPTION_LENGTH
    photos = []
    for text, parse_mode, photo in parts:
        if len(text) > limit:
            raise ValueError("message is too long" if method == "sendMessage" else "message caption is too long")
        if parse_mode == "HTML" and not _valid_html(text):
            raise ValueError("can't parse entities: unsupported start tag or bad escaping")
        if method != "sendMessage":
            name = str(photo).removeprefix("attach://") if photo else "photo"
            if name not in files:
                raise ValueError("wrong file identifier/HTTP URL specified")
            photos.append(files[name])
    text = "\n\n".join(p[0] for p in parts)
    return SentMessage(token, chat_id, text, parts[0][1], params, method, photos)


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
