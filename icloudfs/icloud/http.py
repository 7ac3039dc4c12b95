"""``Transport``: the Drive backend's own HTTP client for its hot calls, on libcurl (pycurl).

Listings, downloads and the three requests of every upload go through here, not
through ``requests`` and pyicloud's session. Copying small files is bound by the
client's CPU, three calls per file: through urllib3 and http.client one 4 KiB
upload cost 5.2-5.4 ms of CPU on this machine, through libcurl 2.0-2.2 ms, and
libcurl parses and encrypts without holding the GIL. What the session did that
these calls need is kept:

- the account's cookies are sent from, and new ones stored into, pyicloud's own
  cookie jar, so a cookie Apple sets here is seen (and persisted) by pyicloud;
- every call is timed and counted in the account's ``HttpMetrics``;
- a call that gets no answer raises ``Unreachable``, one whose body breaks off
  ``Unavailable``; statuses are left to the caller (``ICloudDrive`` maps them);
- an upload can be stopped: ``check`` is called as the body is read and on libcurl's
  progress callback (about once a second even when a slow link sends nothing), and what it
  raises (``Cancelled``) ends the transfer and is raised to the caller;
- HTTP/1.1 as pyicloud speaks it, no redirects followed (the caller sees ``Location``),
  bodies decoded (gzip) as ``requests`` decodes them;
- without an explicit CA file the environment is honoured as ``requests`` would:
  ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``, and ``HTTP(S)_PROXY``/``NO_PROXY``.
"""

from __future__ import annotations

import http.client
import math
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from typing import Protocol, cast
from urllib.parse import urlsplit

import certifi
import pycurl

from icloudfs.drive.patience import is_impatient
from icloudfs.errors import Unavailable, Unreachable
from icloudfs.metrics import HttpMetrics, endpoint_label

Sink = Callable[[int, bytes], None]
"""Takes each piece of a 206 answer's body as it arrives: (offset in the body, bytes)."""

# Big buffers for big bodies only: allocating them costs 0.1 ms a call, which small files feel.
IMPATIENT_TIMEOUT_S = 5.0  # connect/read timeout of a request whose caller has a cached answer
DOWNLOAD_BUFFER = 256 << 10  # most libcurl hands a range download's sink per callback
UPLOAD_BUFFER = 2 << 20  # most libcurl asks a big body for per callback (its maximum)
# Headers libcurl must not add or keep: 100-continue would cost a round trip per upload,
# the length and encoding are set from the body and ACCEPT_ENCODING.
_OWN_HEADERS = frozenset({"content-length", "accept-encoding", "expect"})


class Readable(Protocol):
    """A request body streamed from a file: ``read`` returns b"" at the end."""

    def read(self, size: int, /) -> bytes: ...


@dataclass
class Answer:
    """A complete answer: its status and body (what callers of the hot calls read), and where a
    redirect points (Apple's content host answers some downloads with 330 and a ``Location``)."""

    status: int
    data: bytes
    location: str = ""


@dataclass
class _Exchange:
    """One answer as libcurl hands it over: the status line and headers, then the body. Of the
    headers only ``Set-Cookie`` (for the jar) and ``Location`` (for a redirect) are kept."""

    sink: Sink | None
    status: int = 0
    set_cookies: list[str] = field(default_factory=list)
    location: str = ""
    pieces: list[bytes] = field(default_factory=list)
    received: int = 0
    failure: BaseException | None = None  # raised by a callback; re-raised after the transfer
    source: Readable | None = None  # a streamed request body
    check: Callable[[], None] | None = None  # raises to stop the transfer

    def header(self, line: bytes) -> None:
        text = line.decode("iso-8859-1").rstrip("\r\n")
        if text.startswith("HTTP/"):  # a new answer (a 1xx came first): start over
            self.status = int(text.split(" ", 2)[1])
            self.set_cookies.clear()
            self.location = ""
        else:
            name, _, value = text.partition(":")
            name = name.strip().lower()
            if name == "set-cookie":
                self.set_cookies.append(value.strip())
            elif name == "location":
                self.location = value.strip()

    def read(self, size: int) -> bytes | int:
        """The next piece of the request body; a failure stops the transfer and is kept."""
        assert self.source is not None
        try:
            if self.check is not None:
                self.check()
            return self.source.read(size)
        except BaseException as error:
            self.failure = error
            return pycurl.READFUNC_ABORT

    def progress(self, *_: int) -> int:
        """libcurl's progress callback: non-zero stops the transfer."""
        assert self.check is not None
        try:
            self.check()
        except BaseException as error:
            self.failure = error
            return 1
        return 0

    def body(self, piece: bytes) -> int | None:
        if self.sink is not None and self.status == 206:
            try:
                self.sink(self.received, piece)
            except BaseException as error:  # libcurl cannot carry it: stop the transfer, keep it
                self.failure = error
                return 0
        self.pieces.append(piece)
        self.received += len(piece)
        return None


class Transport:
    """Pooled HTTPS calls with cookies, metrics and typed failures; thread-safe.

    Each call borrows an idle libcurl handle (a handle keeps its connections open), so
    concurrent calls use separate connections and a finished one is reused."""

    def __init__(
        self, metrics: HttpMetrics, *, ca_file: str | None, timeout: float, pool_size: int = 64
    ) -> None:
        self._metrics = metrics
        self._trust_env = not ca_file  # an explicit CA file is never overridden by the environment
        ca = ca_file or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        self._ca = ca or certifi.where()
        self._timeout = timeout
        self._pool_size = pool_size
        self._idle: list[pycurl.Curl] = []
        self._generation = 0  # bumped by close(): handles of an older one are not pooled again
        self._proxies: dict[tuple[str, str], str] = {}  # (scheme, host) -> proxy URL, "" for none
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | Readable | None = None,
        headers: Mapping[str, str] | None = None,
        cookies: CookieJar | None = None,
        sink: Sink | None = None,
        check: Callable[[], None] | None = None,
    ) -> Answer:
        """Send one request and read its whole answer. A ``Readable`` body needs a
        ``Content-Length`` header; ``sink`` sees a 206 body's pieces as they arrive; ``check``
        may raise to stop the transfer (the error is raised here)."""
        sent_headers = dict(headers or {})
        cookie_request = None  # what the jar reads of a request; downloads send no cookies
        if cookies is not None:
            cookie_request = urllib.request.Request(url)
            cookies.add_cookie_header(cookie_request)
            if cookie := cookie_request.get_header("Cookie"):
                sent_headers["Cookie"] = cookie
        size = len(body) if isinstance(body, bytes) else int(sent_headers.get("Content-Length", 0))
        exchange = _Exchange(sink, source=None if isinstance(body, bytes) else body, check=check)
        started = time.perf_counter()
        status = "error"
        try:
            self._perform(method, url, body, size, sent_headers, exchange)
            status = str(exchange.status)
        finally:
            took = time.perf_counter() - started
            self._metrics.observe(endpoint_label(url), status, took, sent=size, received=exchange.received)
        if cookies is not None and cookie_request is not None and exchange.set_cookies:
            answer = _SetCookies(exchange.set_cookies)
            cookies.extract_cookies(cast(http.client.HTTPResponse, answer), cookie_request)
        return Answer(exchange.status, b"".join(exchange.pieces), exchange.location)

    def _perform(
        self,
        method: str,
        url: str,
        body: bytes | Readable | None,
        size: int,
        headers: Mapping[str, str],
        exchange: _Exchange,
    ) -> None:
        with self._lock:
            generation = self._generation
            handle = self._idle.pop() if self._idle else pycurl.Curl()
        try:
            handle.setopt(pycurl.URL, url)
            handle.setopt(pycurl.NOSIGNAL, 1)  # required with threads
            handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
            handle.setopt(pycurl.CAINFO, self._ca)
            handle.setopt(pycurl.PROXY, self._proxy(url))
            # a caller with a cached answer waits less for a link that swallows packets
            timeout = min(self._timeout, IMPATIENT_TIMEOUT_S) if is_impatient() else self._timeout
            handle.setopt(pycurl.CONNECTTIMEOUT_MS, int(timeout * 1000))
            handle.setopt(pycurl.LOW_SPEED_LIMIT, 1)  # a read timeout: nothing for this long
            handle.setopt(pycurl.LOW_SPEED_TIME, math.ceil(timeout))
            handle.setopt(pycurl.ACCEPT_ENCODING, "")  # offer what libcurl decodes; decode it
            handle.setopt(pycurl.HEADERFUNCTION, exchange.header)
            handle.setopt(pycurl.WRITEFUNCTION, exchange.body)
            if exchange.sink is not None:
                handle.setopt(pycurl.BUFFERSIZE, DOWNLOAD_BUFFER)
            lines = [f"{k}: {v}" for k, v in headers.items() if k.lower() not in _OWN_HEADERS]
            handle.setopt(pycurl.HTTPHEADER, [*lines, "Expect:"])
            if method == "GET" and body is None:
                handle.setopt(pycurl.HTTPGET, 1)
            else:
                if method != "POST":
                    handle.setopt(pycurl.CUSTOMREQUEST, method)
                handle.setopt(pycurl.POST, 1)
                handle.setopt(pycurl.POSTFIELDSIZE_LARGE, size)
                if isinstance(body, bytes):
                    handle.setopt(pycurl.POSTFIELDS, body)
                elif body is not None:
                    if size > UPLOAD_BUFFER:
                        handle.setopt(pycurl.UPLOAD_BUFFERSIZE, UPLOAD_BUFFER)
                    handle.setopt(pycurl.READFUNCTION, exchange.read)
            if exchange.check is not None:
                handle.setopt(pycurl.NOPROGRESS, 0)
                handle.setopt(pycurl.XFERINFOFUNCTION, exchange.progress)
            try:
                handle.perform()
            except pycurl.error as error:
                if exchange.failure is not None:
                    raise exchange.failure from None
                where = f"{method} {endpoint_label(url)}"
                message = error.args[-1]
                if exchange.status == 0:  # refused, reset, timed out, TLS refused
                    raise Unreachable(f"{where}: no answer ({message})") from error
                raise Unavailable(f"{where}: answer broke off: {message}") from error
        finally:
            # Options only, open connections stay. This lets go of the callbacks and so of the
            # answer's body, which an idle handle would otherwise keep alive.
            handle.reset()
            with self._lock:
                pooled = generation == self._generation and len(self._idle) < self._pool_size
                if pooled:
                    self._idle.append(handle)
            if not pooled:
                handle.close()

    def _proxy(self, url: str) -> str:
        """The proxy for this URL's host as ``requests`` would pick it; "" for none."""
        parts = urlsplit(url)
        origin = (parts.scheme, parts.hostname or "")
        proxy = self._proxies.get(origin)
        if proxy is None:
            proxy = ""
            if self._trust_env and not urllib.request.proxy_bypass(origin[1]):
                proxy = urllib.request.getproxies().get(parts.scheme, "")
            self._proxies[origin] = proxy
        return proxy

    def close(self) -> None:
        """Drop the pooled connections (new ones are opened on demand)."""
        with self._lock:
            self._generation += 1
            idle, self._idle = self._idle, []
        for handle in idle:
            handle.close()


class _SetCookies:
    """An answer's ``Set-Cookie`` headers, in the one shape ``CookieJar.extract_cookies`` reads
    of an ``http.client`` response: ``info()``."""

    def __init__(self, values: list[str]) -> None:
        self._headers = http.client.HTTPMessage()
        for value in values:
            self._headers["Set-Cookie"] = value

    def info(self) -> http.client.HTTPMessage:
        return self._headers
