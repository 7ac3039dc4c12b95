"""What iCloud's answers mean: the one place an HTTP status, an answer's body or a pyicloud
exception becomes an ``icloudfs.errors`` type.

- 401, 421 and 450 mean the web session is gone (``SessionExpired``, internal: the caller
  renews it and tries again). 421 can also be a pooled connection that landed on the wrong
  server (rhoopr/kei issue 199, picklepete/pyicloud PR 489): renewing closes the pool too.
- 423 means Advanced Data Protection's PCS cookies are missing or expired (``PcsExpired``:
  the caller asks for new ones, ``web_access.py``).
- As pyicloud does, a 2xx JSON object naming an error (``errorMessage``, ``reason``...) is one.
- A 2xx answer to ``renameItems``, ``moveItems``, ``moveItemsToTrash`` and ``deleteItems``
  can still refuse an item: each item has a ``status`` (rclone's ``api/drive.go`` reads it and
  retries on ``ETAG_CONFLICT``). ``checked_items`` turns a refused item into its error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from pyicloud import PyiCloudService
from pyicloud.exceptions import (
    PyiCloud2SARequiredException,
    PyiCloudAPIResponseException,
    PyiCloudConnectionException,
    PyiCloudException,
)
from pyicloud.services.drive import DriveService

from icloudfs.errors import AlreadyExists, Conflict, NotFound, Throttled, Unavailable, Unreachable
from icloudfs.icloud.http import Answer

T = TypeVar("T")

_ERROR_KEYS = ("errorMessage", "reason", "errorReason", "error")
_ITEM_ERRORS: dict[str, Callable[[str], Exception]] = {
    "ETAG_CONFLICT": Conflict,
    "NAME_CONFLICT": AlreadyExists,
    "ID_INVALID": NotFound,
    "NOT_FOUND": NotFound,
}


class SessionExpired(Exception):
    """Internal: the web session is gone; renew it and try again."""


class PcsExpired(Exception):
    """Internal: Drive wants PCS cookies (Advanced Data Protection); ask for new ones."""


def status_error(status: int | None, body: str) -> Exception:
    """The error an HTTP status from iCloud stands for."""
    if status in (401, 421, 450):
        return SessionExpired()
    if status == 404:
        return NotFound(body[:200] or "not found")
    if status == 409:
        # pyicloud labels every 409 "Authentication required"; the body says which conflict it is.
        if "NAME_CONFLICT" in body or "already exists" in body.lower():
            return AlreadyExists(body[:200])
        return Conflict(body[:200])
    if status == 412:
        return Conflict(body[:200])
    if status == 423:
        return PcsExpired()
    if status in (429, 503):
        return Throttled(f"iCloud is throttling requests ({status})")
    return Unavailable(f"iCloud answered {status}: {body[:200]}")


def answer_of(response: Answer) -> Any:
    """The JSON of an answer, or the error it stands for (see the module note)."""
    if not 200 <= response.status < 300:
        raise status_error(response.status, response.data.decode("utf-8", "replace"))
    answer = json.loads(response.data) if response.data else {}
    if isinstance(answer, dict):
        reason = next((answer[k] for k in _ERROR_KEYS if answer.get(k)), None)
        if reason == "Missing X-APPLE-WEBAUTH-TOKEN cookie":
            raise SessionExpired()
        if reason:
            raise Unavailable(f"iCloud refused the call: {str(reason)[:200]}")
    return answer


def checked_items(answer: Any, what: str) -> list[dict[str, Any]]:
    """The ``items`` of a 2xx answer to a change, each accepted; a refused one raises its error
    (``Conflict`` for a stale etag, ``AlreadyExists``, ``NotFound``...)."""
    items = answer.get("items") if isinstance(answer, dict) else None
    if not isinstance(items, list) or not items:
        raise Unavailable(f"iCloud answered the {what} without items")
    for item in items:
        status = str(item.get("status", "OK")) if isinstance(item, dict) else "?"
        if status != "OK":
            raise _ITEM_ERRORS.get(status, Unavailable)(f"iCloud refused the {what}: {status}")
    return items


def translated(
    fn: Callable[[DriveService, PyiCloudService], T], drive: DriveService, api: PyiCloudService
) -> T:
    """``fn(drive, api)``, with what pyicloud raises turned into ``icloudfs.errors``."""
    try:
        return fn(drive, api)
    except PyiCloudConnectionException as error:
        raise Unreachable(f"iCloud could not be reached: {error}") from error
    except PyiCloud2SARequiredException as error:
        raise SessionExpired() from error
    except PyiCloudAPIResponseException as error:
        body = error.response.text if error.response is not None else error.reason
        status = error.code if isinstance(error.code, int) else None
        if status is None and error.response is not None:
            status = error.response.status_code
        raise status_error(status, body or "") from error
    except PyiCloudException as error:
        raise Unavailable(f"iCloud error: {error}") from error
    except (KeyError, TypeError, ValueError, IndexError) as error:  # truncated JSON, wrong shapes
        raise Unavailable(f"iCloud sent a malformed answer ({type(error).__name__}: {error})") from error
