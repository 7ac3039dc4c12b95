"""pyicloud's saved session on disk, made fit for a mount that runs for months.

- pyicloud rewrites its session and cookie files in place after every request; a kill at the
  wrong moment truncates them and loses the trust token (then a new code is due). A copy of the
  files as they were after the last good sign-in (``keep_good_copy``) repairs them (``repair``).
- It rewrites them after every request even when nothing changed (``save_only_changes``), and
  sets no timeout (``TimeoutAdapter``).
- How long the trust lasts (``trust_days_left``): from the browser-trust cookie's expiry when
  the session holds one, else ``TRUST_DAYS`` from the last code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyicloud import PyiCloudService
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter

#: Apple does not publish how long a trusted web session lasts; pyicloud's users
#: report about two months. Used only for the "days left" estimate.
TRUST_DAYS = 60
TRUST_COOKIE = "X-APPLE-WEBAUTH-HSA-TRUST"  # the browser's trust; its expiry is the trust's end


class SessionFiles:
    """The files of each Apple ID's session in one folder, and icloudfs's notes beside them."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def keep_good_copy(self, apple_id: str, api: PyiCloudService) -> None:
        """An atomic copy of the session files as they are after a good sign-in."""
        good = self._good_dir(apple_id)
        good.mkdir(mode=0o700, exist_ok=True)
        for name in (api.session.session_path, api.session.cookiejar_path):
            source = Path(name)
            if source.exists():
                temporary = good / f"{source.name}.tmp"
                shutil.copyfile(source, temporary)
                os.replace(temporary, good / source.name)

    def repair(self, apple_id: str) -> bool:
        """Before pyicloud reads them: bring back the last good copies if the session is
        damaged; True when it was."""
        session = self._folder / f"{_slug(apple_id)}.session"
        good = self._good_dir(apple_id)
        if _readable_json(session) or not _readable_json(good / session.name):
            return False
        for copy in good.glob(f"{_slug(apple_id)}.*"):
            if copy.suffix != ".tmp":
                shutil.copyfile(copy, self._folder / copy.name)
        return True

    def forget(self, apple_id: str) -> None:
        """Signed out: the notes and the good copies go with the session."""
        self._trust_file(apple_id).unlink(missing_ok=True)
        shutil.rmtree(self._good_dir(apple_id), ignore_errors=True)

    def save_trust_time(self, apple_id: str, api: PyiCloudService) -> None:
        """Note when a new trust token appeared (the fallback for ``trust_days_left``)."""
        token = api.session.data.get("trust_token")
        if not token:
            return
        known = self._read_trust(apple_id)
        if known.get("token_prefix") != token[:16]:
            known = {"token_prefix": token[:16], "trusted_at": time.time()}
            self._trust_file(apple_id).write_text(json.dumps(known))

    def trust_days_left(self, apple_id: str, api: PyiCloudService | None) -> int | None:
        """Days until a new code is needed (None when unknown)."""
        ends = None if api is None else _cookie_expiry(api, TRUST_COOKIE)
        if ends is not None:
            return max(0, int((ends - time.time()) // 86400))
        trusted_at = self._read_trust(apple_id).get("trusted_at")
        if not isinstance(trusted_at, int | float):
            return None
        return max(0, TRUST_DAYS - int((time.time() - trusted_at) // 86400))

    def _good_dir(self, apple_id: str) -> Path:
        return self._folder / f"{_slug(apple_id)}.last-good"

    def _trust_file(self, apple_id: str) -> Path:
        return self._folder / f"{_slug(apple_id)}.icloudfs-trust.json"

    def _read_trust(self, apple_id: str) -> dict[str, Any]:
        try:
            data = json.loads(self._trust_file(apple_id).read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


class TimeoutAdapter(HTTPAdapter):
    """An HTTPAdapter that applies a default timeout to requests made without one."""

    def __init__(self, timeout: float, **kwargs: Any) -> None:
        self._timeout = timeout
        super().__init__(**kwargs)

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


def save_only_changes(session: Any) -> None:
    """pyicloud rewrites its session and cookie files after every request, in place: two file
    writes per call, about a third of an upload worker's time for small files, and 16 threads
    rewriting the same files at once. Save only when the session data or a cookie changed, one
    thread at a time (what is saved is exactly what pyicloud would save)."""
    save: Callable[[], None] = session._save_session_data
    lock = threading.Lock()
    saved: list[object] = [None]

    def save_if_changed() -> None:
        try:
            state: object = (
                json.dumps(session.data, sort_keys=True, default=str),
                sorted((c.domain, c.path, c.name, c.value or "", c.expires or 0) for c in session.cookies),
            )
        except RuntimeError:  # a cookie was set while we looked: save to be sure
            state = object()
        with lock:
            if state != saved[0]:
                save()
                saved[0] = state

    session._save_session_data = save_if_changed


def _slug(apple_id: str) -> str:
    """The file-name stem pyicloud uses for an Apple ID's session files."""
    return "".join(c for c in apple_id if re.match(r"\w", c))


def _readable_json(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_text()), dict)
    except (OSError, ValueError):
        return False


def _cookie_expiry(api: PyiCloudService, name: str) -> float | None:
    expiries = [c.expires for c in api.session.cookies if c.name == name and c.expires is not None]
    return float(max(expiries)) if expiries else None
