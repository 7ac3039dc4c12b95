"""Checks every request passes before auth and routing, and the access log.

- **One Host, one Origin**: a request carrying either twice is refused (400): proxies and
  servers disagree on which one counts.
- **No cross-site writes** (CSRF). A web page in the user's own browser can send "simple"
  requests here (a form post, ``fetch(..., {mode: "no-cors"})``) without any preflight, and
  the browser is this user, so the auth check alone would let them through. A POST, PUT,
  PATCH or DELETE is therefore refused (403) if it carries an ``Origin`` other than this
  server's own (same scheme, host and port) or a ``Sec-Fetch-Site`` other than
  ``same-origin``/``none``; and refused (415) unless it is ``application/json`` or carries
  ``X-Icloudfs-Client`` (neither of which a page can send cross-site without a preflight,
  which this server never grants).
- **Bodies up to ``BODY_MAX``** (413), declared or streamed (a chunked body is read here, up
  to the cap, before the app sees it): a body is read in full before validation, so a huge
  one would cost that much memory first.
- **The access log** names the method, the path without its query (which may hold anything),
  escaped so that CR/LF or terminal escapes in a path cannot forge a log line, the status and
  the peer.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from icloudfs.control.errors import error_response

log = logging.getLogger("icloudfs.control.access")

BODY_MAX = 64 << 10
CLIENT_HEADER = "X-Icloudfs-Client"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SINGLE = (b"host", b"origin")


def printable(text: str) -> str:
    """``text`` with control characters and non-ASCII escaped, for a log line."""
    return text.encode("unicode_escape").decode("ascii").replace('"', '\\"')


class RequestGuard:
    """The checks of the module note, as a pure ASGI middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def logged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        refusal = _refusal(scope)
        try:
            if refusal is None and _declared(scope) is None and scope["method"] in UNSAFE:
                receive, refusal = await _read_capped(receive)
            if refusal is not None:
                await error_response(*refusal)(scope, receive, logged)
            else:
                await self.app(scope, receive, logged)
        finally:
            client = scope.get("client")
            peer = "unix-socket" if client is None else f"{client[0]}:{client[1]}"
            # the access log is detail (-v): `unmount` alone polls /status five times a second
            level = logging.INFO if status >= 400 else logging.DEBUG
            log.log(level, '"%s %s" %d %s', scope["method"], printable(scope["path"]), status, peer)


def _refusal(scope: Scope) -> tuple[int, str] | None:
    headers = [(k.lower(), v) for k, v in scope["headers"]]
    for name in _SINGLE:
        if sum(1 for k, _ in headers if k == name) > 1:
            return 400, f"More than one {name.decode().title()} header"
    if (_declared(scope) or 0) > BODY_MAX:
        return 413, f"Request body over {BODY_MAX} bytes"
    if scope["method"] not in UNSAFE:
        return None
    found = dict(headers)
    origin = found.get(b"origin")
    if origin is not None and origin.decode("latin-1").lower() != _own_origin(scope, found):
        return 403, "Cross-origin request refused"
    fetch_site = found.get(b"sec-fetch-site", b"same-origin").decode("latin-1").lower()
    if fetch_site not in ("same-origin", "none"):
        return 403, "Cross-site request refused"
    media = found.get(b"content-type", b"").decode("latin-1").partition(";")[0].strip().lower()
    if media != "application/json" and CLIENT_HEADER.lower().encode() not in found:
        return 415, f"Changes need Content-Type: application/json or an {CLIENT_HEADER} header"
    return None


def _own_origin(scope: Scope, headers: dict[bytes, bytes]) -> str:
    host = headers.get(b"host", b"").decode("latin-1").strip().lower()
    return f"{scope.get('scheme', 'http')}://{urlsplit(f'//{host}').netloc}"


def _declared(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return BODY_MAX + 1
    return None


async def _read_capped(receive: Receive) -> tuple[Receive, tuple[int, str] | None]:
    """Read a body of no declared length (chunked) up to ``BODY_MAX``; a ``receive`` that gives
    it again, or the refusal when it is longer. (The server never reads past a declared
    length, which ``_refusal`` checks up front.)"""
    messages: list[Message] = []
    seen = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        seen += len(message.get("body", b""))
        if seen > BODY_MAX:
            return receive, (413, f"Request body over {BODY_MAX} bytes")
        if not message.get("more_body", False):
            break

    async def again() -> Message:
        return messages.pop(0) if messages else await receive()

    return again, None
