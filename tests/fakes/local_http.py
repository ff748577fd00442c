"""Serving a fake server's aiohttp app on 127.0.0.1 at a free port (the fake Bot API, the webhook receiver)."""

from __future__ import annotations

from aiohttp import web

HOST = "127.0.0.1"


async def serve_locally(app: web.Application) -> tuple[web.AppRunner, int]:
    """Start ``app``; returns its runner (``cleanup()`` stops it) and the port it listens on."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
