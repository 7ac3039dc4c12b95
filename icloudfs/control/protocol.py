"""The control plane's HTTP/1.1 connections: uvicorn's h11 protocol with three guards.

- **A request head must arrive whole within ``HEAD_TIMEOUT_S``** of the connection (or of the
  last response on it): a client sending its head a byte at a time would otherwise hold the
  connection for as long as it likes (408, then closed).
- **A request head is at most ``HEAD_MAX`` bytes** (431, then closed): h11 would buffer it
  all, and the auth check only runs once it is complete.
- **On the unix socket, only this user** (``SO_PEERCRED``): its folder is private already;
  this is the second lock (root passes, as it can do anything here anyway).

Bodies are capped by ``guards.BodyLimit``; concurrency by uvicorn's ``limit_concurrency``.
This leans on uvicorn's ``H11Protocol`` internals (``cycle``, ``conn``), so the uvicorn
version is pinned in ``pyproject.toml`` and ``tests/control/test_limits.py`` checks each guard.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol

from icloudfs.control.peers import socket_peer_uid

log = logging.getLogger(__name__)

HEAD_TIMEOUT_S = 10.0
HEAD_MAX = 16 << 10


class GuardedH11Protocol(H11Protocol):
    """``H11Protocol`` with the guards of the module note."""

    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family == socket.AF_UNIX:
            uid = socket_peer_uid(sock)
            if uid not in (os.getuid(), 0):
                log.warning("Refused a connection to the control socket from uid %s", uid)
                transport.close()
                return
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self.cycle is None or self.cycle.response_complete:  # a head is on its way
            buffered = self.conn.trailing_data[0] + data
            if len(buffered) > HEAD_MAX and b"\r\n\r\n" not in buffered[: HEAD_MAX + 4]:
                self._refuse(431, "Request header fields too large")
                return
        before = self.cycle
        super().data_received(data)
        if self.cycle is not before:  # a whole head arrived: its request runs
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._head_deadline = self.loop.call_later(HEAD_TIMEOUT_S, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if self.cycle is None or self.cycle.response_complete:
            self._refuse(408, "Request header not received in time")

    def _refuse(self, status: int, reason: str) -> None:
        """Answer and close, bypassing h11 (it has no request to answer yet)."""
        body = json.dumps({"error": True, "reason": reason}).encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        ).encode()
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(head + body)
            self.transport.close()
