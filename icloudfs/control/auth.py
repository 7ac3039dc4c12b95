"""Who is calling: this user on this machine needs no token, everyone else a valid bearer token.

A pure ASGI middleware, so the decision rests on ``scope["path"]`` and the raw headers, before
routing (``/openapi.json`` is covered too; only ``/health`` is open). A caller is local only
when all of these hold:

- it is this user, as the kernel says: it came through the mount's unix socket (a 0700 folder,
  and ``SO_PEERCRED`` checked in ``protocol.py``), or over loopback TCP from a socket owned by
  this uid (``peers.tcp_peer_uid``). Another user of the machine is as remote as anyone;
- ``Host`` is ``localhost``, ``127.0.0.1`` or ``[::1]`` (any port): a web page using DNS
  rebinding reaches 127.0.0.1 under its own host name;
- no ``Origin`` of another site (``guards.py`` refuses cross-origin changes outright);
- no ``Forwarded``, ``X-Forwarded-For`` or ``X-Real-IP``: a reverse proxy or a tunnel makes
  remote requests arrive from 127.0.0.1.

Failed authentications are counted per TCP peer (never a header). After ``limit`` failures the
peer waits ``2**(failures - limit)`` seconds, at most ``max_delay``, before the next attempt is
even looked at (429 with ``Retry-After``); failures made while waiting count too, so a flood
ends in the longest wait. A peer's count is forgotten only after ``window`` seconds without a
failure (longer than any wait), never by a success; and a valid token is always let through,
so a guesser sharing an address (a NAT) cannot lock out a real client. Local callers never
meet the limiter, so a hostile page cannot lock out the CLI.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from icloudfs.control.errors import error_response
from icloudfs.control.guards import printable
from icloudfs.control.peers import tcp_peer_uid
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


def _this_user(scope: Scope) -> bool:
    """Whether the kernel says the peer is this user (see the module note)."""
    client, server = scope.get("client"), scope.get("server")
    if client is None:  # the unix socket: only this user can connect to it
        return True
    if server is None or not _loopback(str(client[0])):
        return False
    peer = (str(client[0]), int(client[1]))
    return tcp_peer_uid(peer, (str(server[0]), int(server[1] or 0))) == os.getuid()


def _loopback(address: str) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped:
        parsed = parsed.ipv4_mapped
    return parsed.is_loopback


def _host_name(host: str) -> str:
    """``localhost:8731`` -> ``localhost``; ``[::1]:8731`` -> ``[::1]``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0]


def is_local(scope: Scope) -> bool:
    """Whether the request comes from this user on this machine, not relayed or driven by a
    foreign page."""
    headers: dict[bytes, bytes] = {k.lower(): v for k, v in scope.get("headers", [])}
    if any(h in headers for h in FORWARDING):
        return False
    if _host_name(headers.get(b"host", b"").decode("latin-1")) not in LOCAL_HOSTS:
        return False
    origin = headers.get(b"origin")
    if origin is not None and _host_name(urlsplit(origin.decode("latin-1")).netloc) not in LOCAL_HOSTS:
        return False
    return _this_user(scope)


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
    told: float = -60.0  # when a refusal of this peer was last logged


class FailureLimiter:
    """Counts authentication failures per peer and says how long a peer must wait (see the
    module note)."""

    def __init__(self, *, limit: int = 5, window: float = 900.0, max_delay: float = 300.0) -> None:
        self.limit, self.window, self.max_delay = limit, window, max_delay
        self._records: dict[str, _Record] = {}

    def wait(self, peer: str) -> int:
        """Seconds ``peer`` must wait before an attempt is looked at (0: go ahead)."""
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
            delay = min(2.0 ** min(record.failures - self.limit, 32), self.max_delay)
            record.blocked_until = max(record.blocked_until, now + delay)

    def tell(self, peer: str) -> bool:
        """Whether to log a refusal of this waiting peer (once a minute: a flood is one line)."""
        record = self._records.get(peer)
        now = time.monotonic()
        if record is None or now - record.told < 60.0:
            return False
        record.told = now
        return True

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
        token = bearer_token(scope)
        token_id = self.tokens.verify(token) if token else None
        if token_id is not None:
            return Caller(local=False, peer=peer, token_id=token_id)
        where = f"{scope['method']} {printable(scope['path'])} from {peer}"
        wait = self.limiter.wait(peer)
        self.limiter.failed(peer)
        if wait:
            if self.limiter.tell(peer):
                log.warning("Refused %s: too many failed attempts; it waits %d s", where, wait)
            headers = {"Retry-After": str(wait)}
            return error_response(429, f"Too many failed authentications; retry in {wait} s", headers)
        why = "no bearer token" if token is None else "unknown, revoked or malformed token"
        log.warning("Refused %s: %s", where, why)
        return error_response(401, INVALID_TOKEN, {"WWW-Authenticate": "Bearer"})


def require_local(request: Request) -> None:
    """Dependency for local-only routes (token management, settings): 403 for remote callers."""
    caller = request.state.caller if hasattr(request.state, "caller") else None
    if not (isinstance(caller, Caller) and caller.local):
        raise HTTPException(403, "Only local callers may do this, even with a valid token")
