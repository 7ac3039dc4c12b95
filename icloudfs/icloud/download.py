"""Reading a file's bytes: a signed URL from docws, then ranged GETs on the content host.

``download/by_id`` gives a URL on Apple's content host, signed, that needs no cookie. It is
kept per (document, etag), so a range read is one round trip, not two; but never past the
expiry it carries (``e=``, seconds since the epoch) less a margin, nor past ``URL_TTL_S``.

What the content host answers, and what a read does about it:

- 206 (or 200 from a host that ignores ``Range``): the bytes;
- 330 (or another 3xx) with a ``Location`` on another host name: follow it (rclone does;
  ghostops/ICloud-Shared-Album issue 6);
- 401, 421, 450: the web session is gone: renew it, then a fresh URL (never EIO while a
  renewal can help);
- any other 4xx (403/410 for an expired URL, 404 for a version that is gone...): the URL is
  stale: once more with a fresh one, then ``NotFound``;
- 5xx, 503, a dropped connection: retried like any call (``calls.py``).

Zero-byte files are never downloaded (Apple answers 400): there is nothing to read.
"""

from __future__ import annotations

import threading
import time
from urllib.parse import parse_qs, urljoin, urlsplit

from cachetools import TTLCache
from pyicloud import PyiCloudService
from pyicloud.services.drive import DriveService

from icloudfs.drive.protocol import Arrived
from icloudfs.drive.types import Item
from icloudfs.errors import Conflict, NotFound
from icloudfs.icloud.answers import SessionExpired, status_error
from icloudfs.icloud.calls import Calls

URL_TTL_S = 600.0
URL_MARGIN_S = 30.0  # a URL is not used this close to its own expiry
MAX_REDIRECTS = 3


class StaleUrl(Exception):
    """Internal: the content host refused a URL; get a fresh one."""


class Downloads:
    """Ranged reads of file versions. See the module note."""

    def __init__(self, calls: Calls) -> None:
        self._calls = calls
        self._urls: TTLCache[tuple[str, str], tuple[str, float]] = TTLCache(maxsize=4096, ttl=URL_TTL_S)
        self._lock = threading.Lock()

    def read(self, item: Item, offset: int, length: int, arrived: Arrived | None = None) -> bytes:
        end = min(offset + length, item.size)
        if offset >= end:
            return b""
        for fresh in (False, True):

            def once(drive: DriveService, api: PyiCloudService, fresh: bool = fresh) -> bytes:
                return self._read(api, item, offset, end - 1, arrived, fresh)

            try:
                return self._calls.call(once)
            except StaleUrl as stale:
                self.forget(item)
                if fresh:
                    raise NotFound(f"{item.name}: the content host refused a fresh URL ({stale})") from None
        raise AssertionError("unreachable")

    def url(self, item: Item) -> str:
        """A signed URL of this version on the content host (what a read fetches from)."""
        return self._calls.call(lambda drive, api: self._url(api, item, fresh=False))

    def forget(self, item: Item) -> None:
        with self._lock:
            self._urls.pop((item.docwsid, item.etag), None)

    def _read(
        self, api: PyiCloudService, item: Item, first: int, last: int, arrived: Arrived | None, fresh: bool
    ) -> bytes:
        url = self._url(api, item, fresh=fresh)
        for _ in range(MAX_REDIRECTS + 1):
            # A body cut short raises Unavailable, and is retried.
            answer = self._calls.http.request(
                "GET", url, headers={"Range": f"bytes={first}-{last}"}, sink=arrived
            )
            if 300 <= answer.status < 400 and answer.location:
                url = urljoin(url, answer.location)
                continue
            break
        if answer.status == 206:
            return answer.data
        if answer.status == 200:  # a server that ignores Range
            return answer.data[first : last + 1]
        error = status_error(answer.status, answer.data.decode("utf-8", "replace"))
        if isinstance(error, SessionExpired):
            self.forget(item)
            raise error
        if 400 <= answer.status < 500:
            raise StaleUrl(f"HTTP {answer.status}")
        raise error

    def _url(self, api: PyiCloudService, item: Item, *, fresh: bool) -> str:
        key = (item.docwsid, item.etag)
        with self._lock:
            kept = None if fresh else self._urls.get(key)
        if kept is not None and kept[1] > time.time():
            return kept[0]
        answer = self._calls.json(
            api,
            "GET",
            "docws",
            f"/ws/{item.zone}/download/by_id",
            params={**api.params, "document_id": item.docwsid},
        )
        token = answer.get("data_token") or answer.get("package_token") or {}
        if not token.get("url"):
            raise NotFound(f"{item.name}: iCloud gave no download URL")
        current_etag = answer.get("double_etag")
        if current_etag and current_etag != item.etag:
            raise Conflict(f"{item.name} changed remotely (etag {item.etag} -> {current_etag})")
        url = str(token["url"])
        with self._lock:
            self._urls[key] = (url, _usable_until(url))
        return url


def _usable_until(url: str) -> float:
    """When a URL should no longer be used: its own ``e=`` expiry less a margin, if it has one."""
    expiry = parse_qs(urlsplit(url).query).get("e", [""])[0]
    try:
        return float(expiry) - URL_MARGIN_S
    except ValueError:
        return time.time() + URL_TTL_S
