"""Calling iCloud: retries, a circuit breaker while it is unreachable, and session renewal.

- 503, other 5xx and dropped connections are retried, each after a random wait below a bound
  that doubles from 0.25 s to 8 s ("full jitter": clients throttled together do not come back
  together), for at most ``attempts`` tries or ``offline_timeout`` seconds, so a FUSE call
  fails instead of hanging while iCloud is unreachable. A plain loop, not tenacity: its
  bookkeeping cost 6% of the daemon's CPU in ``cp -r`` of small files.
- Once retries run out on an unreachable iCloud, calls fail at once (a circuit breaker), so a
  path walk served from the cache does not wait at every step; every ``OFFLINE_PAUSE_S`` one
  call goes through as a probe, with one attempt, and its success closes the breaker. A caller
  with a cached answer (``drive.patience.impatient``) gets one attempt with a short timeout
  (``http.IMPATIENT_TIMEOUT_S``), never the retries, and when it finds no answer such callers
  go straight to their caches for ``OFFLINE_PAUSE_S`` (calls without one still try).
  Whether iCloud answers is kept on the account (``Account.reachability``), for ``status``.
- A lost web session (401, 421, 450: ``answers.SessionExpired``) is renewed once from the
  trust token and the saved password (``Account.renew``; the connection pool is closed first)
  and the call repeated; pyicloud itself never does this. Expired PCS cookies (423, Advanced
  Data Protection) are asked for again (``Account.renew_pcs``) and the call repeated.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from pyicloud import PyiCloudService
from pyicloud.const import CONTENT_TYPE_TEXT
from pyicloud.services.drive import DriveService

from icloudfs.drive.patience import is_impatient
from icloudfs.errors import Throttled, Unavailable, Unreachable, WebAccessBlocked
from icloudfs.icloud.account import Account
from icloudfs.icloud.answers import PcsExpired, SessionExpired, answer_of, translated
from icloudfs.icloud.http import Transport
from icloudfs.icloud.web_access import ADP_MESSAGE

T = TypeVar("T")

OFFLINE_PAUSE_S = 5.0  # after retries run out, calls fail at once for this long
RETRY_WAIT_FIRST_S = 0.25  # the bound of a retry's random wait, doubling per attempt
RETRY_WAIT_MAX_S = 8.0

Call = Callable[[DriveService, PyiCloudService], T]


class Calls:
    """How every request to iCloud is made. See the module note."""

    def __init__(self, account: Account, http: Transport, *, attempts: int, offline_timeout: float) -> None:
        self._account, self.http = account, http
        self._attempts, self._offline_timeout = attempts, offline_timeout
        self._breaker_open = False
        self._probe_at = 0.0  # monotonic: when the open breaker lets the next call through
        self._suspect_until = 0.0  # monotonic: a call with a cached answer found no answer

    def call(self, fn: Call[T]) -> T:
        """``fn(drive, api)`` with retries; the session (or the PCS cookies) renewed once if
        it is gone."""
        for renewed in (False, True):
            drive, api, generation = self._account.drive()
            try:
                result: T = self.retried(translated, fn, drive, api)
                return result
            except SessionExpired:
                if renewed:
                    break
                self.http.close()  # a 421 can be a pooled connection landing on the wrong server
                self._account.renew(generation)
            except PcsExpired:
                if renewed:
                    raise WebAccessBlocked(ADP_MESSAGE) from None
                self._account.renew_pcs(generation)
        raise Unavailable("iCloud kept answering that the session expired, after renewing it")

    def retried(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` with retries and the circuit breaker (see the module note)."""
        started = time.monotonic()
        attempts = self._attempts
        if self._breaker_open:
            if started < self._probe_at:
                raise Unreachable(self._account.reachability.describe())
            self._probe_at = started + OFFLINE_PAUSE_S  # this call is the probe; others wait
            attempts = 1
        elif is_impatient():
            if started < self._suspect_until:  # its cache serves; no need to wait to learn more
                raise Unreachable(self._account.reachability.describe())
            attempts = 1
        attempt = 1
        while True:
            try:
                result = fn(*args)
            except Unreachable as error:
                self._account.reachability.failed(str(error))
                if is_impatient():
                    self._suspect_until = time.monotonic() + OFFLINE_PAUSE_S
                if attempt >= attempts or time.monotonic() - started >= self._offline_timeout:
                    if attempts > 1 or self._breaker_open:  # retries ran out, or the probe failed
                        self._breaker_open, self._probe_at = True, time.monotonic() + OFFLINE_PAUSE_S
                    raise
            except (Throttled, Unavailable):
                if attempt >= attempts or time.monotonic() - started >= self._offline_timeout:
                    raise
            else:
                self._breaker_open, self._suspect_until = False, 0.0
                self._account.reachability.answered()
                return result
            time.sleep(random.uniform(0, min(RETRY_WAIT_MAX_S, RETRY_WAIT_FIRST_S * 2 ** (attempt - 1))))
            attempt += 1

    def json(
        self,
        api: PyiCloudService,
        method: str,
        service: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """A JSON call to an iCloud web service, sent as pyicloud sends it (its headers,
        query and cookies; ``plain/text`` to docws)."""
        url = f"{api.get_webservice_url(service)}{path}?{urlencode(api.params if params is None else params)}"
        headers = dict(api.session.headers)
        if body is not None:
            headers["Content-Type"] = CONTENT_TYPE_TEXT if service == "docws" else "application/json"
        data = None if body is None else json.dumps(body).encode()
        return answer_of(
            self.http.request(method, url, body=data, headers=headers, cookies=api.session.cookies)
        )
