"""Who is calling: local callers need no token, everyone else a valid bearer token.

A pure ASGI middleware, so the decision rests on ``scope["path"]`` and the raw
headers, before routing (``/openapi.json`` and ``/docs`` are covered too; only
``/health`` is open). A caller is local only when all of these hold:

- the TCP peer is loopback, or it came through the unix socket (no peer);
- ``Host`` is ``localhost``, ``127.0.0.1`` or ``[::1]`` (any port) — a web page
  using DNS rebinding reaches 127.0.0.1 under its own host name;
- no ``Origin`` from a foreign site (a browser page posting cross-site);
- no ``Forwarded``, ``X-Forwarded-For`` or ``X-Real-IP`` — a reverse proxy or a
  tunnel makes remote requests arrive from 127.0.0.1.

Failed authentications are counted per TCP peer (never a header): after
``limit`` failures within ``window`` seconds the peer is refused with 429 for a
delay that doubles with each further failure (at most ``max_delay``). Local
callers never meet the limiter, so a hostile page cannot lock out the CLI.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from icloudfs.control.errors import error_response
from icloudfs.control.tokens import TokenStore

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/health"})
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
FORWARDING = (b"forwarded", b"x-forwarded-for", b"x-real-ip")
INVALID_TOKEN = "Invalid or missing authentication token"


@dataclass(frozen=True)
class Caller:
    """Stored in ``scope["state"]["caller"]`` for the routes."""

    local: bool
    peer: str
    token_id: str | None = None


def _peer(scope: Scope) -> str:
    client = scope.get("client")
    return "unix-socket" if client is None else str(client[0])


def _loopback(peer: str) -> bool:
    if peer == "unix-socket":
        return True
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


def _host_name(host: str) -> str:
    """``localhost:8731`` -> ``localhost``; ``[::1]:8731`` -> ``[::1]``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0]


def is_local(scope: Scope) -> bool:
    """Whether the request comes from this machine, not relayed or driven by a foreign page."""
    headers: dict[bytes, bytes] = {k.lower(): v for k, v in scope.get("headers", [])}
    if not _loopback(_peer(scope)) or any(h in headers for h in FORWARDING):
        return False
    if _host_name(headers.get(b"host", b"").decode("latin-1")) not in LOCAL_HOSTS:
        return False
    origin = headers.get(b"origin")
    if origin is not None:
        origin_host = urlsplit(origin.decode("latin-1")).netloc
        return _host_name(origin_host) in LOCAL_HOSTS
    return True


def bearer_token(scope: Scope) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else None
    return None


@dataclass
class _Record:
    failures: int = 0
    last: float = 0.0
    blocked_until: float = 0.0


class FailureLimiter:
    """Counts authentication failures per peer and says how long a peer must wait."""

    def __init__(self, *, limit: int = 5, window: float = 60.0, max_delay: float = 300.0) -> None:
        self.limit, self.window, self.max_delay = limit, window, max_delay
        self._records: dict[str, _Record] = {}

    def wait(self, peer: str) -> int:
        """Seconds ``peer`` must wait before trying again (0: go ahead)."""
        record = self._records.get(peer)
        remaining = record.blocked_until - time.monotonic() if record else 0.0
        return math.ceil(remaining) if remaining > 0 else 0

    def failed(self, peer: str) -> None:
        now = time.monotonic()
        if len(self._records) > 4096:
            self._forget_older_than(now - self.window)
        record = self._records.setdefault(peer, _Record())
        if now - record.last > self.window:
            record.failures = 0
        record.failures += 1
        record.last = now
        if record.failures >= self.limit:
            delay = min(2.0 ** (record.failures - self.limit), self.max_delay)
            record.blocked_until = now + delay

    def succeeded(self, peer: str) -> None:
        self._records.pop(peer, None)

    def _forget_older_than(self, moment: float) -> None:
        for peer in [p for p, r in self._records.items() if max(r.last, r.blocked_until) < moment]:
            del self._records[peer]


class AuthMiddleware:
    """Let local callers through, check bearer tokens of the rest, slow down guessers."""

    def __init__(self, app: ASGIApp, *, tokens: TokenStore, limiter: FailureLimiter) -> None:
        self.app, self.tokens, self.limiter = app, tokens, limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        peer = _peer(scope)
        caller = self._authenticate(scope, peer)
        if isinstance(caller, Caller):
            state: dict[str, Any] = scope.setdefault("state", {})
            state["caller"] = caller
            await self.app(scope, receive, send)
            return
        await caller(scope, receive, send)

    def _authenticate(self, scope: Scope, peer: str) -> Caller | ASGIApp:
        if is_local(scope):
            return Caller(local=True, peer=peer)
        wait = self.limiter.wait(peer)
        if wait:
            log.warning(
                "Refused %s %s from %s: too many failed attempts", scope["method"], scope["path"], peer
            )
            return error_response(
                429, f"Too many failed authentications; retry in {wait} s", {"Retry-After": str(wait)}
            )
        token = bearer_token(scope)
        token_id = self.tokens.verify(token) if token else None
        if token_id is None:
            self.limiter.failed(peer)
            why = "no bearer token" if token is None else "unknown, revoked or malformed token"
            log.warning("Refused %s %s from %s: %s", scope["method"], scope["path"], peer, why)
            return error_response(401, INVALID_TOKEN, {"WWW-Authenticate": "Bearer"})
        self.limiter.succeeded(peer)
        return Caller(local=False, peer=peer, token_id=token_id)


def require_local(request: Request) -> None:
    """Dependency for local-only routes (token management, settings): 403 for remote callers."""
    caller = request.state.caller if hasattr(request.state, "caller") else None
    if not (isinstance(caller, Caller) and caller.local):
        raise HTTPException(403, "Only local callers may do this, even with a valid token")
