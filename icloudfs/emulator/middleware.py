"""The outermost ASGI layer: counts requests, adds latency and injects failures before any route runs.

Admin calls (``/__emulator__/``) bypass it all. A ``drop`` closes the TCP/TLS
connection without an answer: uvicorn's ``send`` is a method of its per-request
cycle, which owns the transport, so closing that transport is a real drop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from icloudfs.emulator.context import Emulator
from icloudfs.emulator.responses import session_expired

ADMIN_PREFIX = "/__emulator__"


def endpoint_key(path: str) -> str:
    """Stats key: the path, with per-file content and upload URLs (and push websockets, whose
    path is the client's connection message) folded together."""
    for prefix in ("/content/", "/upload/", "/v2/"):
        if path.startswith(prefix):
            return prefix.rstrip("/")
    return path


class LinkMiddleware:
    """Stats, latency and fault injection for every non-admin request."""

    def __init__(self, app: ASGIApp, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "websocket":
            self.emulator.stats.count(endpoint_key(path))
        if scope["type"] != "http" or path.startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        self.emulator.stats.count(endpoint_key(path))
        faults = self.emulator.faults
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000)
        fault = faults.pick(scope["method"], path)
        if fault == "drop":
            await _drop(send)
        elif fault == "lost":
            await self.app(scope, receive, _swallowed)
            await _drop(send)
        elif isinstance(fault, int):
            response = session_expired() if fault == 421 else Response(f"Injected fault {fault}", fault)
            await response(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def _swallowed(message: Message) -> None:
    """The answer of a request whose answer is lost on the way back."""


async def _drop(send: Send) -> None:
    cycle: Any = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is not None:
        cycle.disconnected = True  # tells uvicorn not to answer 500 for us
        transport.abort()
        return
    # Not uvicorn: promise a body and never send it, which still breaks the exchange.
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]})
