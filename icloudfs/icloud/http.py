"""``Transport``: the Drive backend's own HTTP client for its hot calls, on urllib3.

Listings, downloads and the three requests of every upload go through here, not
through ``requests`` and pyicloud's session: those cost about 0.9 ms of CPU per
call against 0.4 ms for urllib3 (measured on this machine), and a ``cp -r`` of
small files is three calls per file on a client whose Python runs on one core.
What the session did that these calls need is kept:

- the account's cookies are sent from, and new ones stored into, pyicloud's own
  cookie jar, so a cookie Apple sets here is seen (and persisted) by pyicloud;
- every call is timed and counted in the account's ``HttpMetrics``;
- a call that gets no answer raises ``Unreachable``, one whose body breaks off
  ``Unavailable``; statuses are left to the caller (``ICloudDrive`` maps them);
- without an explicit CA file the environment is honoured as ``requests`` would:
  ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``, and ``HTTPS_PROXY``/``NO_PROXY``.
"""

from __future__ import annotations

import http.client
import os
import threading
import time
import urllib.request
from collections.abc import Iterable, Mapping
from http.cookiejar import CookieJar
from typing import Any, cast
from urllib.parse import urlsplit

import certifi
import urllib3

from icloudfs.errors import Unavailable, Unreachable
from icloudfs.metrics import HttpMetrics, endpoint_label

Body = bytes | Iterable[bytes] | None


class Transport:
    """Pooled HTTPS calls with cookies, metrics and typed failures; thread-safe."""

    def __init__(
        self, metrics: HttpMetrics, *, ca_file: str | None, timeout: float, pool_size: int = 64
    ) -> None:
        self._metrics = metrics
        self._trust_env = not ca_file  # an explicit CA file is never overridden by the environment
        ca = ca_file or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        self._pool_args: dict[str, Any] = {
            "cert_reqs": "CERT_REQUIRED",
            "ca_certs": ca or certifi.where(),
            "maxsize": pool_size,
            "timeout": urllib3.Timeout(connect=timeout, read=timeout),
            "retries": False,  # retries belong to the caller, which knows what is safe to repeat
        }
        self._direct = urllib3.PoolManager(num_pools=8, **self._pool_args)
        self._proxied: dict[str, urllib3.PoolManager] = {}  # proxy URL -> its manager
        self._routes: dict[tuple[str, str], urllib3.PoolManager] = {}  # (scheme, host) -> its manager
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        url: str,
        *,
        body: Body = None,
        headers: Mapping[str, str] | None = None,
        cookies: CookieJar | None = None,
        stream: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        """Send one request. ``stream``: the body is left unread (read it, then
        ``release_conn``); otherwise it is read here and counted."""
        sent_headers = dict(headers or {})
        cookie_request = None  # what the jar reads of a request; downloads send no cookies
        if cookies is not None:
            cookie_request = urllib.request.Request(url)
            cookies.add_cookie_header(cookie_request)
            if cookie := cookie_request.get_header("Cookie"):
                sent_headers["Cookie"] = cookie
        started = time.perf_counter()
        status, received = "error", 0
        try:
            try:
                response = self._manager(url).request(
                    method, url, body=body, headers=sent_headers, preload_content=False, redirect=False
                )
            except urllib3.exceptions.HTTPError as error:  # refused, reset, timed out, TLS refused
                raise Unreachable(f"{method} {endpoint_label(url)}: no answer ({error})") from error
            status = str(response.status)
            if stream:
                received = int(response.headers.get("Content-Length") or 0)
            else:
                try:
                    received = len(response.read(cache_content=True))
                except urllib3.exceptions.HTTPError as error:
                    raise Unavailable(f"{method} {endpoint_label(url)}: answer broke off: {error}") from error
                finally:
                    response.release_conn()
        finally:
            sent = len(body) if isinstance(body, bytes) else int(sent_headers.get("Content-Length", 0))
            self._metrics.observe(
                endpoint_label(url), status, time.perf_counter() - started, sent=sent, received=received
            )
        if cookies is not None and cookie_request is not None and "set-cookie" in response.headers:
            answer = _SetCookies(response.headers.getlist("set-cookie"))
            cookies.extract_cookies(cast(http.client.HTTPResponse, answer), cookie_request)
        return response

    def _manager(self, url: str) -> urllib3.PoolManager:
        """The direct pool, or a proxy's when the environment routes this host through one."""
        parts = urlsplit(url)
        origin = (parts.scheme, parts.hostname or "")
        manager = self._routes.get(origin)
        if manager is not None:
            return manager
        proxy = None
        if self._trust_env and not urllib.request.proxy_bypass(origin[1]):
            proxy = urllib.request.getproxies().get(parts.scheme)
        with self._lock:
            if proxy is None:
                manager = self._direct
            else:
                manager = self._proxied.get(proxy)
                if manager is None:
                    manager = self._proxied[proxy] = urllib3.ProxyManager(proxy, **self._pool_args)
            self._routes[origin] = manager
        return manager

    def close(self) -> None:
        """Drop the pooled connections (new ones are opened on demand)."""
        with self._lock:
            managers = [self._direct, *self._proxied.values()]
        for manager in managers:
            manager.clear()


class _SetCookies:
    """An answer's ``Set-Cookie`` headers, in the one shape ``CookieJar.extract_cookies`` reads
    of an ``http.client`` response: ``info()``."""

    def __init__(self, values: list[str]) -> None:
        self._headers = http.client.HTTPMessage()
        for value in values:
            self._headers["Set-Cookie"] = value

    def info(self) -> http.client.HTTPMessage:
        return self._headers
