"""``ICloudDrive``: the ``Drive`` protocol on iCloud Drive, through pyicloud's session.

Design notes:

- Folder changes (mkdir, rename, move, trash, delete) use pyicloud's
  ``DriveService``. The hot calls (listing several folders in one request,
  download URLs, ranged downloads, and the three requests of an upload) go
  through ``Transport`` (libcurl, with the session's cookies): small-file
  copies are three calls per file, and bound by the client's CPU.
- Download URLs are signed and need no cookie (like Apple's CDN): they are
  cached per (document, etag), so a range read is one round trip, not two.
- Uploads speak the same three requests as pyicloud's ``send_file`` but stream
  the file (pyicloud reads it whole into memory) and read back the new item.
- Replacing a file never removes the old version first: the new bytes are
  uploaded under a temporary name, then the old file is deleted and the new
  one renamed into place. A failure at any step leaves a complete copy.
- Every failure becomes an ``icloudfs.errors`` type in ``_translate``. 503,
  5xx and dropped connections are retried with jittered exponential backoff;
  a 421 renews the session once (``Account.renew``) and the call is repeated.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mimetypes
import random
import secrets
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urlencode

from cachetools import LRUCache, TTLCache
from pyicloud import PyiCloudService
from pyicloud.const import CONTENT_TYPE_TEXT
from pyicloud.exceptions import (
    PyiCloud2SARequiredException,
    PyiCloudAPIResponseException,
    PyiCloudConnectionException,
    PyiCloudException,
)
from pyicloud.services.drive import DriveNode, DriveService

from icloudfs.drive.protocol import Arrived, UploadControl
from icloudfs.drive.types import Item, Listing, Quota
from icloudfs.errors import (
    AlreadyExists,
    Conflict,
    DriveError,
    NotFound,
    Throttled,
    Unavailable,
    Unreachable,
    WebAccessBlocked,
)
from icloudfs.icloud.account import ADP_MESSAGE, Account
from icloudfs.icloud.http import Answer, Transport
from icloudfs.icloud.nodes import ROOT_ID, to_item

log = logging.getLogger(__name__)

T = TypeVar("T")

OFFLINE_TIMEOUT_S = 30.0  # longest a call keeps retrying while iCloud is unreachable
REQUEST_TIMEOUT_S = 60.0  # connect/read timeout of one request
OFFLINE_PAUSE_S = 5.0  # after retries run out, calls fail at once for this long
RETRY_WAIT_FIRST_S = 0.25  # the bound of a retry's random wait, doubling per attempt
RETRY_WAIT_MAX_S = 8.0
LIST_BATCH = 64
LIST_PARALLEL = 4  # listing requests in flight for one list_folders call
URL_TTL_S = 600.0


class _SessionExpired(Exception):
    """Internal: the web session is gone (421); renew and try again."""


class ICloudDrive:
    """iCloud Drive behind the ``Drive`` protocol; thread-safe."""

    def __init__(
        self,
        account: Account,
        *,
        ca_file: str | None = None,
        attempts: int = 10,
        offline_timeout: float = OFFLINE_TIMEOUT_S,
    ) -> None:
        self._account = account
        # Retries end after ``attempts`` or ``offline_timeout`` seconds, whichever comes first, so
        # a FUSE call fails (EIO) instead of hanging while iCloud is unreachable. Ten attempts (as
        # rclone's --low-level-retries): with five, a synchronous mkdir failed once in 32 times
        # while Apple answered half of all requests with 503.
        self._attempts = attempts
        self._offline_timeout = offline_timeout
        self._offline_until = 0.0
        self._lister = ThreadPoolExecutor(LIST_PARALLEL, thread_name_prefix="icloudfs-list")
        self._http = Transport(
            account.metrics, ca_file=ca_file, timeout=min(REQUEST_TIMEOUT_S, offline_timeout)
        )
        self._urls: TTLCache[tuple[str, str], str] = TTLCache(maxsize=4096, ttl=URL_TTL_S)
        self._parents: LRUCache[str, str] = LRUCache(maxsize=200_000)
        self._quota: TTLCache[str, Quota] = TTLCache(maxsize=1, ttl=60)
        self._lock = threading.Lock()

    # -- listing -----------------------------------------------------------------------

    def root(self) -> Item:
        return self.list_folders([ROOT_ID])[0].folder

    def list_folders(self, folder_ids: Sequence[str]) -> list[Listing]:
        """List folders, many per request. A folder that vanished is left out of the
        result (``NotFound`` when it was the only one asked)."""
        batches = [folder_ids[start : start + LIST_BATCH] for start in range(0, len(folder_ids), LIST_BATCH)]
        if len(batches) == 1:
            answers = [self._list_batch(batches[0])]
        else:  # several requests at once: a walk of a wide tree is not one round trip per batch
            answers = list(self._lister.map(self._list_batch, batches))
        listings = [
            self._listing(node)
            for nodes in answers
            for node in nodes
            if isinstance(node, dict) and "items" in node and "drivewsid" in node
        ]
        if not listings and len(folder_ids) == 1:
            raise NotFound(f"folder {folder_ids[0]} not found")
        return listings

    def _list_batch(self, folder_ids: Sequence[str]) -> list[Any]:
        body = [{"drivewsid": folder_id, "partialData": False} for folder_id in folder_ids]
        nodes: list[Any] = self._call(
            lambda drive, api: self._json(api, "POST", "drivews", "/retrieveItemDetailsInFolders", body)
        )
        return nodes

    def app_libraries(self) -> list[Item]:
        nodes = self._call(lambda drive, api: drive.get_app_data())
        return [to_item(node) for node in nodes]

    def stat(self, item_id: str) -> Item:
        if item_id.startswith("FOLDER::"):
            return self.list_folders([item_id])[0].folder
        parent = self._parents.get(item_id)
        if parent is None:
            raise NotFound(f"{item_id}: parent folder unknown; list it first")
        for child in self.list_folders([parent])[0].children:
            if child.id == item_id:
                return child
        raise NotFound(f"{item_id} is no longer in its folder")

    def quota(self) -> Quota | None:
        with self._lock:
            cached = self._quota.get("quota")
        if cached is not None:
            return cached
        try:
            usage = self._call(lambda drive, api: api.account.storage.usage)
            quota = Quota(used=int(usage.used_storage_in_bytes), total=int(usage.total_storage_in_bytes))
        except (DriveError, KeyError, TypeError, ValueError) as error:
            log.info("storage quota unavailable: %s", error)
            return None
        with self._lock:
            self._quota["quota"] = quota
        return quota

    # -- content -----------------------------------------------------------------------

    def read(self, item: Item, offset: int, length: int, arrived: Arrived | None = None) -> bytes:
        end = min(offset + length, item.size)
        if offset >= end:
            return b""
        for fresh in (False, True):
            url = self._download_url(item, fresh=fresh)
            try:
                return self._retried(self._get_range, url, offset, end - 1, arrived)
            except NotFound:
                if fresh:
                    raise
                log.debug("download URL for %s expired; fetching a new one", item.name)
        raise AssertionError("unreachable")

    def _get_range(self, url: str, first: int, last: int, arrived: Arrived | None) -> bytes:
        # A body cut short raises Unavailable, and is retried.
        answer = self._http.request("GET", url, headers={"Range": f"bytes={first}-{last}"}, sink=arrived)
        if answer.status == 206:
            return answer.data
        if answer.status == 200:  # a server that ignores Range
            return answer.data[first : last + 1]
        if answer.status in (403, 404, 410):
            raise NotFound(f"download URL refused ({answer.status})")
        raise _status_error(answer.status, answer.data.decode("utf-8", "replace"))

    def _download_url(self, item: Item, *, fresh: bool) -> str:
        key = (item.docwsid, item.etag)
        with self._lock:
            url = None if fresh else self._urls.get(key)
        if url is not None:
            return url
        answer = self._call(
            lambda drive, api: self._json(
                api,
                "GET",
                "docws",
                f"/ws/{item.zone}/download/by_id",
                params={**api.params, "document_id": item.docwsid},
            )
        )
        token = answer.get("data_token") or answer.get("package_token") or {}
        if not token.get("url"):
            raise NotFound(f"{item.name}: iCloud gave no download URL")
        current_etag = answer.get("double_etag")
        if current_etag and current_etag != item.etag:
            raise Conflict(f"{item.name} changed remotely (etag {item.etag} -> {current_etag})")
        with self._lock:
            self._urls[key] = token["url"]
        return str(token["url"])

    def upload(
        self, parent: Item, name: str, source: Path, mtime: float, control: UploadControl | None = None
    ) -> Item:
        if "/" in name:
            # update/documents takes a *path*, so a name with "/" goes up under a temporary
            # name and is renamed (renameItems takes a plain name).
            return self.rename(self.upload(parent, _temp_name(name), source, mtime, control), name)
        item = self._upload(parent.id, name, source, mtime, control)
        if _name_key(item.name) != _name_key(name):
            # iCloud stored it as "name 2": the name was taken. Undo, and say so.
            self.delete(item)
            raise AlreadyExists(f"{name} already exists in {parent.name or '/'}")
        return item

    def replace(
        self, existing: Item, source: Path, mtime: float, control: UploadControl | None = None
    ) -> Item:
        if existing.parent_id is None:
            raise NotFound(f"{existing.name}: no parent folder")
        self._remove_stale_temps(existing)
        fresh = self._upload(existing.parent_id, _temp_name(existing.name), source, mtime, control)
        try:
            self.delete(existing)
        except DriveError:
            log.warning("replacing %s failed; removing the uploaded copy %s", existing.name, fresh.name)
            self.delete(fresh)
            raise
        try:
            return self.rename(fresh, existing.name)
        except DriveError:
            log.error(
                "new content of %s is stored as %s; renaming it into place failed", existing.name, fresh.name
            )
            raise

    def _remove_stale_temps(self, existing: Item) -> None:
        """Temporary copies of this file left by a replace that was cut short (a crash between
        upload and swap) are removed first, so they never pile up beside it."""
        assert existing.parent_id is not None
        prefix, _, _ = _temp_name(existing.name).rpartition(".icloudfs-")
        for child in self.list_folders([existing.parent_id])[0].children:
            if child.name.startswith(prefix + ".icloudfs-") and not child.is_folder:
                log.info("removing %s, left by an interrupted replace of %s", child.name, existing.name)
                self.delete(child)

    def _upload(
        self, parent_id: str, name: str, source: Path, mtime: float, control: UploadControl | None
    ) -> Item:
        """upload/web for a ticket, the bytes to its content URL (hashed as they go, and
        stopped by ``control.check``), then update/documents, which makes the file appear:
        ``control.committing`` is told just before, and may still call it off."""
        zone, parent_docwsid = _split_id(parent_id)
        size = source.stat().st_size
        content_type = mimetypes.guess_type(name)[0] or ""

        def start(drive: DriveService, api: PyiCloudService) -> tuple[str, str]:
            answer = self._json(
                api,
                "POST",
                "docws",
                f"/ws/{zone}/upload/web",
                {"filename": name, "type": "FILE", "content_type": content_type, "size": size},
                params={**api.params, **drive._get_token_from_cookie()},
            )
            return str(answer[0]["document_id"]), str(answer[0]["url"])

        document_id, url = self._call(start)

        def send(drive: DriveService, api: PyiCloudService) -> tuple[dict[str, Any], str]:
            with source.open("rb") as fh:
                body = _MultipartBody(name, fh, size)
                headers = {**api.session.headers, "Content-Type": body.content_type}
                headers["Content-Length"] = str(len(body))
                jar = api.session.cookies
                check = None if control is None else control.check
                sent = self._http.request("POST", url, body=body, headers=headers, cookies=jar, check=check)
            return dict(_answer(sent)["singleFile"]), body.digest()

        if control is not None:
            control.check()
        stored, digest = self._call(send)
        if control is not None:
            control.committing(digest)
        data: dict[str, Any] = {
            "signature": stored["fileChecksum"],
            "wrapping_key": stored["wrappingKey"],
            "reference_signature": stored["referenceChecksum"],
            "size": stored["size"],
        }
        if stored.get("receipt"):
            data["receipt"] = stored["receipt"]
        command = {
            "data": data,
            "command": "add_file",
            "create_short_guid": True,
            "document_id": document_id,
            "path": {"starting_document_id": parent_docwsid, "path": name},
            "allow_conflict": True,
            "file_flags": {"is_writable": True, "is_executable": False, "is_hidden": False},
            "mtime": int(mtime * 1000),
            "btime": int(time.time() * 1000),
        }
        answer = self._call(
            lambda drive, api: self._json(api, "POST", "docws", f"/ws/{zone}/update/documents", command)
        )
        return self._uploaded_item(answer, parent_id, zone, name)

    def _uploaded_item(self, answer: Any, parent_id: str, zone: str, name: str) -> Item:
        """The new item from ``update/documents``; a listing of the parent if the answer is thin."""
        document = (answer.get("results") or [{}])[0].get("document") if isinstance(answer, dict) else None
        if isinstance(document, dict) and document.get("document_id") and document.get("etag"):
            node = {
                "drivewsid": f"FILE::{zone}::{document['document_id']}",
                "docwsid": document["document_id"],
                "zone": zone,
                "parentId": parent_id,
                "name": document.get("name") or name,  # the full name, extension included
                "etag": document["etag"],
                "size": document.get("size", 0),
                "type": document.get("type", "FILE"),
                "dateModified": _iso(document.get("mtime")),
            }
            item = to_item(node)
            self._parents[item.id] = parent_id
            return item
        listing = self.list_folders([parent_id])[0]
        matches = [c for c in listing.children if _name_key(c.name) == _name_key(name)]
        if not matches:
            raise Unavailable(f"{name} was uploaded but does not appear in its folder")
        return matches[0]

    # -- changes -----------------------------------------------------------------------

    def mkdir(self, parent: Item, name: str) -> Item:
        answer = self._call(lambda drive, api: drive.create_folders(parent.id, name))
        folders = answer.get("folders") or answer.get("items") or []
        if not folders:
            raise Unavailable(f"creating folder {name} gave no folder back")
        return self._remember(folders[0], parent.id)

    def rename(self, item: Item, new_name: str) -> Item:
        answer = self._call(lambda drive, api: drive.rename_items(item.id, item.etag, new_name))
        return self._remember(answer["items"][0], item.parent_id)

    def move(self, item: Item, new_parent: Item) -> Item:
        def call(drive: DriveService, api: PyiCloudService) -> Any:
            node = DriveNode(drive, {"drivewsid": item.id, "etag": item.etag})
            target = DriveNode(drive, {"drivewsid": new_parent.id})
            return drive.move_nodes_to_node([node], target)

        return self._remember(self._call(call)["items"][0], new_parent.id)

    def trash(self, item: Item) -> None:
        self._call(lambda drive, api: drive.move_items_to_trash(item.id, item.etag))

    def delete(self, item: Item) -> None:
        self._call(lambda drive, api: drive.delete_items(item.id, item.etag))
        with self._lock:
            self._urls.pop((item.docwsid, item.etag), None)

    # -- plumbing ----------------------------------------------------------------------

    def _listing(self, node: dict[str, Any]) -> Listing:
        folder = to_item(node)
        children = tuple(
            to_item({**child, "parentId": child.get("parentId", folder.id)}) for child in node["items"]
        )
        for child in children:
            self._parents[child.id] = folder.id
        return Listing(folder=folder, children=children)

    def _remember(self, node: dict[str, Any], parent_id: str | None) -> Item:
        if node.get("status") not in (None, "OK"):
            raise _status_error(409, str(node.get("status")))
        item = to_item({**node, "parentId": node.get("parentId", parent_id)})
        if item.parent_id:
            self._parents[item.id] = item.parent_id
        return item

    def _json(
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
        answer = self._http.request(method, url, body=data, headers=headers, cookies=api.session.cookies)
        return _answer(answer)

    def _retried(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn`` with retries; after they run out on an unreachable iCloud, calls fail at once
        for a short pause (a circuit breaker), so a path walk or a listing served from the cache
        does not wait out the offline timeout at every step.

        A retry waits a random time below a bound that doubles from 0.25 s to 8 s ("full
        jitter": clients throttled together do not come back together). A plain loop, not
        tenacity: its bookkeeping cost 6% of the daemon's CPU in `cp -r` of small files."""
        started = time.monotonic()
        left = self._offline_until - started
        if left > 0:
            raise Unreachable(f"iCloud is unreachable; trying again in {left:.0f} s")
        attempt = 1
        while True:
            try:
                return fn(*args)
            except (Throttled, Unavailable) as error:
                if attempt >= self._attempts or time.monotonic() - started >= self._offline_timeout:
                    if isinstance(error, Unreachable):
                        self._offline_until = time.monotonic() + OFFLINE_PAUSE_S
                    raise
            time.sleep(random.uniform(0, min(RETRY_WAIT_MAX_S, RETRY_WAIT_FIRST_S * 2 ** (attempt - 1))))
            attempt += 1

    def _call(self, fn: Callable[[DriveService, PyiCloudService], T]) -> T:
        """Run ``fn`` with retries; renew the session once on 421."""
        for renewed in (False, True):
            drive, api, generation = self._account.drive()
            try:
                result: T = self._retried(_translated, fn, drive, api)
                return result
            except _SessionExpired:
                if renewed:
                    break
                self._http.close()  # a 421 can be a pooled connection landing on the wrong server
                self._account.renew(generation)
        raise Unavailable("iCloud kept answering 421 (session expired) after renewing the session")


def _translated(
    fn: Callable[[DriveService, PyiCloudService], T], drive: DriveService, api: PyiCloudService
) -> T:
    try:
        return fn(drive, api)
    except PyiCloudConnectionException as error:
        raise Unreachable(f"iCloud could not be reached: {error}") from error
    except PyiCloud2SARequiredException as error:
        raise _SessionExpired() from error
    except PyiCloudAPIResponseException as error:
        body = error.response.text if error.response is not None else error.reason
        status = error.code if isinstance(error.code, int) else None
        if status is None and error.response is not None:
            status = error.response.status_code
        raise _status_error(status, body or "") from error
    except PyiCloudException as error:
        raise Unavailable(f"iCloud error: {error}") from error
    except (KeyError, TypeError, ValueError, IndexError) as error:  # truncated JSON, wrong shapes
        raise Unavailable(f"iCloud sent a malformed answer ({type(error).__name__}: {error})") from error


def _answer(response: Answer) -> Any:
    """The JSON of an answer, or the error it stands for. As pyicloud does, an answer that
    names an error (``errorMessage``, ``reason``...) is one, whatever its status."""
    if not 200 <= response.status < 300:
        raise _status_error(response.status, response.data.decode("utf-8", "replace"))
    answer = json.loads(response.data) if response.data else {}
    if isinstance(answer, dict):
        reason = next((answer[k] for k in _ERROR_KEYS if answer.get(k)), None)
        if reason == "Missing X-APPLE-WEBAUTH-TOKEN cookie":
            raise _SessionExpired()
        if reason:
            raise Unavailable(f"iCloud refused the call: {str(reason)[:200]}")
    return answer


_ERROR_KEYS = ("errorMessage", "reason", "errorReason", "error")


def _status_error(status: int | None, body: str) -> Exception:
    """The one place an HTTP status from iCloud becomes an error type."""
    if status in (401, 421, 450):
        return _SessionExpired()
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
        return WebAccessBlocked(ADP_MESSAGE)
    if status in (429, 503):
        return Throttled(f"iCloud is throttling requests ({status})")
    return Unavailable(f"iCloud answered {status}: {body[:200]}")


def _split_id(drivewsid: str) -> tuple[str, str]:
    """``FOLDER::zone::docwsid`` -> (zone, docwsid)."""
    _, zone, docwsid = drivewsid.split("::", 2)
    return zone, docwsid


def _temp_name(name: str) -> str:
    """A hidden, unique, path-safe name beside ``name`` for upload-then-rename."""
    stem, dot, ext = name.replace("/", "_").rpartition(".")
    return f".{stem or ext}.icloudfs-{secrets.token_hex(4)}{dot}{ext if stem else ''}"


def _name_key(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def _iso(milliseconds: Any) -> str | None:
    if not isinstance(milliseconds, int | float):
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(milliseconds / 1000))


class _MultipartBody:
    """A multipart/form-data body read from an open file as libcurl asks for it, with a
    known length: the file is never read whole into memory. The file's bytes are hashed as
    they go out (SHA-256 releases the GIL, and the link is slower than it)."""

    def __init__(self, name: str, source: BinaryIO, size: int) -> None:
        boundary = uuid.uuid4().hex
        self.content_type = f"multipart/form-data; boundary={boundary}"
        quoted = name.replace('"', "%22")
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{quoted}"; filename="{quoted}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        self._length = len(head) + size + len(tail)
        self._parts: list[bytes | BinaryIO] = [head, source, tail]
        self._sha256 = hashlib.sha256()

    def __len__(self) -> int:
        return self._length

    def read(self, size: int) -> bytes:
        while self._parts:
            part = self._parts[0]
            if isinstance(part, bytes):
                piece, self._parts[0] = part[:size], part[size:]
            else:
                piece = part.read(size)
                self._sha256.update(piece)
            if piece:
                return piece
            self._parts.pop(0)
        return b""

    def digest(self) -> str:
        """SHA-256 of the file's bytes, once all are read."""
        return self._sha256.hexdigest()
