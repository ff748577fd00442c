"""A fake webhook receiver on 127.0.0.1 that answers like a Discord webhook.

``POST /hooks/<name>`` with JSON or ``multipart/form-data`` (``payload_json`` plus ``files[n]``).
It checks Discord's documented limits (content <= 2,000 characters, at most 10 embeds, embed title
<= 256, description <= 4,096, footer <= 2,048, 6,000 embed characters in all, at most 10 files,
something to post), answers 204 like Discord without ``?wait=true``, records every accepted post,
and injects faults per hook for its next N posts: a 429 with ``retry_after``, a 5xx, a 404
"Unknown Webhook", a dropped connection, or a hang after the post was recorded (a timeout after
delivery).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.local_http import serve_locally

FAULT_KINDS = ("rate_limited", "server_error", "not_found", "drop", "hang_after_delivery")
LIMITS = {"content": 2000, "embeds": 10, "title": 256, "description": 4096, "footer": 2048, "total": 6000, "files": 10}


@dataclass
class Post:
    """One accepted post: its JSON payload and the attached files (filename -> bytes)."""

    hook: str
    payload: dict[str, Any]
    files: dict[str, bytes]


@dataclass
class _Fault:
    kind: str
    times: int
    retry_after: float


@dataclass
class FakeWebhook:
    """``async with FakeWebhook() as hooks``; ``hooks.url("ops")`` is the URL of webhook ``ops``."""

    posts: list[Post] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    hang_s: float = 2.0
    faults: dict[str, list[_Fault]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._port = 0

    async def __aenter__(self) -> FakeWebhook:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_post("/hooks/{name}", self._handle)
        self._runner, self._port = await serve_locally(app)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self._port}/hooks/{name}"

    def add_fault(self, hook: str, kind: str, times: int = 1, retry_after: float = 0.2) -> None:
        """Serve ``kind`` (one of :data:`FAULT_KINDS`) to ``hook``'s next ``times`` posts."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; kinds: {', '.join(FAULT_KINDS)}")
        self.faults.setdefault(hook, []).append(_Fault(kind, times, retry_after))

    def posts_to(self, hook: str) -> list[Post]:
        return [p for p in self.posts if p.hook == hook]

    async def _read(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        if request.content_type == "application/json":
            return await request.json(), {}
        form = await request.post()
        files = {v.filename: v.file.read() for k, v in form.items() if k.startswith("files[") and not isinstance(v, str)}
        raw = form.get("payload_json", "{}")
        if hasattr(raw, "file"):
            raw = raw.file.read()
        return json.loads(raw if isinstance(raw, str) else bytes(raw)), files

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        hook = request.match_info["name"]
        self.attempts[hook] = self.attempts.get(hook, 0) + 1
        payload, files = await self._read(request)
        fault = self._take_fault(hook)
        if fault is not None and fault.kind != "hang_after_delivery":
            return _serve_fault(request, fault)
        problem = _check(payload, files)
        if problem:
            return web.json_response({"message": problem, "code": 50035}, status=400)
        self.posts.append(Post(hook, payload, files))
        if fault is not None:  # delivered, but the answer comes after the client gave up
            await asyncio.sleep(self.hang_s)
        return web.Response(status=204)

    def _take_fault(self, hook: str) -> _Fault | None:
        queue = self.faults.get(hook, [])
        while queue and queue[0].times <= 0:
            queue.pop(0)
        if not queue:
            return None
        queue[0].times -= 1
        return queue[0]


def _check(payload: dict[str, Any], files: dict[str, bytes]) -> str | None:
    """Discord's validation, in its words where it has them; None when the post is acceptable."""
    content, embeds = payload.get("content") or "", payload.get("embeds") or []
    if not content and not embeds and not files:
        return "Cannot send an empty message"
    if len(content) > LIMITS["content"]:
        return "Invalid Form Body: content: Must be 2000 or fewer in length."
    if len(embeds) > LIMITS["embeds"] or len(files) > LIMITS["files"]:
        return "Invalid Form Body: too many embeds or files"
    total = 0
    for embed in embeds:
        title, description = embed.get("title", ""), embed.get("description", "")
        footer = embed.get("footer", {}).get("text", "")
        if len(title) > LIMITS["title"] or len(description) > LIMITS["description"] or len(footer) > LIMITS["footer"]:
            return "Invalid Form Body: embed field too long"
        total += len(title) + len(description) + len(footer)
        image = embed.get("image", {}).get("url", "")
        if image.startswith("attachment://") and image.removeprefix("attachment://") not in files:
            return "Invalid Form Body: attachment not found"
    if total > LIMITS["total"]:
        return "Invalid Form Body: embeds: Embed size exceeds maximum size of 6000"
    return None


def _serve_fault(request: web.Request, fault: _Fault) -> web.StreamResponse:
    if fault.kind == "rate_limited":
        body = {"message": "You are being rate limited.", "retry_after": fault.retry_after, "global": False}
        return web.json_response(body, status=429, headers={"Retry-After": str(fault.retry_after)})
    if fault.kind == "server_error":
        return web.json_response({"message": "500: Internal Server Error", "code": 0}, status=500)
    if fault.kind == "not_found":
        return web.json_response({"message": "Unknown Webhook", "code": 10015}, status=404)
    assert request.transport is not None
    request.transport.close()  # "drop": the client sees the connection closed with no response
    return web.Response(status=500)
