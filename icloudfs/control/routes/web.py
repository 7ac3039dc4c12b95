"""The control page: ``/`` and its static files under ``/web/``, served *before* the auth middleware.

How auth applies to the page:

- The page shell (``index.html``, ``app.css``, ``app.js``, ``icon.svg``) is served
  to every caller without a token. It is the same fixed text for everyone and
  holds no data, and a remote visitor needs it to be asked for a token at all.
  The auth middleware sees only the rest, so fetching the shell never counts as a
  failed authentication (reloading the page cannot trip the limiter). The shell is
  only reachable where the API is: on loopback unless ``allow_remote`` is on.
- The one thing that differs between callers is ``data-caller="local|remote"`` on
  ``<html>``, from the same ``is_local`` rule the middleware uses. It is only a hint
  for the page: a remote visitor is asked for a token before any API call (not
  after a 401), and the local-only panels (settings, tokens) are hidden.
  Trusting it would gain a caller nothing. The API decides every request anyway.
- Every bit of data comes from the API through ``fetch``, with
  ``Authorization: Bearer`` when the visitor entered a token. The token is kept in
  ``sessionStorage`` only: not in ``localStorage``, not in a cookie (the API
  reads no cookies, so there is nothing for another site to ride on).

Headers on every shell response: ``Content-Security-Policy`` (``default-src
'self'``, no inline script or style, no framing, forms cannot submit anywhere, so
a password can never end up in a URL), ``X-Frame-Options: DENY``,
``Referrer-Policy: no-referrer``, ``X-Content-Type-Options: nosniff`` and
``Cache-Control: no-store`` (the HTML differs by caller).

Only ``GET``/``HEAD`` of these exact paths are served here. Anything else goes
on to the auth middleware and the API. The shell is no route, so it is not part
of the OpenAPI document.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from starlette.types import ASGIApp, Receive, Scope, Send

from icloudfs.control.auth import is_local

CALLER_MARK = b'data-caller="unknown"'

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}

_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/web/app.css": ("app.css", "text/css; charset=utf-8"),
    "/web/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/web/icon.svg": ("icon.svg", "image/svg+xml"),
}


@dataclass(frozen=True)
class _Asset:
    body: bytes
    content_type: str


def _load() -> dict[str, _Asset]:
    folder = resources.files("icloudfs.control").joinpath("web")
    return {path: _Asset(folder.joinpath(name).read_bytes(), kind) for path, (name, kind) in _FILES.items()}


class WebShell:
    """ASGI middleware serving the page shell; must wrap (be added after) ``AuthMiddleware``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.assets = _load()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        asset = self.assets.get(scope["path"]) if scope["type"] == "http" else None
        if asset is None or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        body = asset.body
        if scope["path"] == "/":
            caller = b"local" if is_local(scope) else b"remote"
            body = body.replace(CALLER_MARK, b'data-caller="' + caller + b'"', 1)
        headers = [
            (b"content-type", asset.content_type.encode()),
            (b"content-length", str(len(body)).encode()),
            *((name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
