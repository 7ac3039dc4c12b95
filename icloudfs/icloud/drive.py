"""``ICloudDrive``: the ``Drive`` protocol on iCloud Drive, through pyicloud's session.

The protocol's calls, each a few lines over the modules that do the work:

- ``calls.py``: how every request is made (retries, circuit breaker, session renewal);
- ``answers.py``: what an answer means (the one place a status becomes an error);
- ``download.py``: reads through signed content URLs (redirects, expiry, renewal);
- ``upload.py``: the three requests of an upload, streamed, never made twice.

Folder changes (mkdir, rename, move, trash, delete) use pyicloud's ``DriveService``; each
answer's per-item statuses are checked (a 2xx answer can refuse an item). Listing several
folders in one request goes through the libcurl ``Transport``: small-file copies and tree
walks are bound by the client's CPU.

Replacing a file never removes the old version first: the new bytes are uploaded under a
temporary name, then the old file is deleted and the new one renamed into place. A failure at
any step leaves a complete copy.
"""

from __future__ import annotations

import logging
import secrets
import threading
import unicodedata
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cachetools import LRUCache, TTLCache
from pyicloud import PyiCloudService
from pyicloud.services.drive import DriveNode, DriveService

from icloudfs.drive.protocol import Arrived, UploadControl
from icloudfs.drive.types import Item, Listing, Quota
from icloudfs.errors import AlreadyExists, DriveError, NotFound, Unavailable
from icloudfs.icloud.account import Account
from icloudfs.icloud.answers import checked_items
from icloudfs.icloud.calls import Calls
from icloudfs.icloud.download import Downloads
from icloudfs.icloud.http import Transport
from icloudfs.icloud.nodes import ROOT_ID, to_item
from icloudfs.icloud.upload import Uploads

log = logging.getLogger(__name__)

OFFLINE_TIMEOUT_S = 30.0  # longest a call keeps retrying while iCloud is unreachable
REQUEST_TIMEOUT_S = 60.0  # connect/read timeout of one request
LIST_BATCH = 64
LIST_PARALLEL = 4  # listing requests in flight for one list_folders call


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
        # Retries end after ``attempts`` or ``offline_timeout`` seconds, whichever comes first, so
        # a FUSE call fails (EIO) instead of hanging while iCloud is unreachable. Ten attempts (as
        # rclone's --low-level-retries): with five, a synchronous mkdir failed once in 32 times
        # while Apple answered half of all requests with 503.
        http = Transport(account.metrics, ca_file=ca_file, timeout=min(REQUEST_TIMEOUT_S, offline_timeout))
        self._calls = Calls(account, http, attempts=attempts, offline_timeout=offline_timeout)
        self._downloads = Downloads(self._calls)
        self._uploads = Uploads(
            self._calls, lambda folder_id: list(self.list_folders([folder_id])[0].children)
        )
        self._lister = ThreadPoolExecutor(LIST_PARALLEL, thread_name_prefix="icloudfs-list")
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
        nodes: list[Any] = self._calls.call(
            lambda drive, api: self._calls.json(api, "POST", "drivews", "/retrieveItemDetailsInFolders", body)
        )
        return nodes

    def app_libraries(self) -> list[Item]:
        nodes = self._calls.call(lambda drive, api: drive.get_app_data())
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
            usage = self._calls.call(lambda drive, api: api.account.storage.usage)
            quota = Quota(used=int(usage.used_storage_in_bytes), total=int(usage.total_storage_in_bytes))
        except (DriveError, KeyError, TypeError, ValueError) as error:
            log.info("storage quota unavailable: %s", error)
            return None
        with self._lock:
            self._quota["quota"] = quota
        return quota

    # -- content -----------------------------------------------------------------------

    def read(self, item: Item, offset: int, length: int, arrived: Arrived | None = None) -> bytes:
        return self._downloads.read(item, offset, length, arrived)

    def download_url(self, item: Item) -> str:
        """A signed URL of this version on the content host (the bench reads it directly)."""
        return self._downloads.url(item)

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
        item = self._uploads.send(parent_id, name, source, mtime, control)
        self._parents[item.id] = parent_id
        return item

    # -- changes -----------------------------------------------------------------------

    def mkdir(self, parent: Item, name: str) -> Item:
        answer = self._calls.call(lambda drive, api: drive.create_folders(parent.id, name))
        folders = answer.get("folders") or answer.get("items") or []
        if not folders:
            raise Unavailable(f"creating folder {name} gave no folder back")
        return self._remember(folders[0], parent.id)

    def rename(self, item: Item, new_name: str) -> Item:
        answer = self._calls.call(lambda drive, api: drive.rename_items(item.id, item.etag, new_name))
        return self._remember(checked_items(answer, f"rename of {item.name}")[0], item.parent_id)

    def move(self, item: Item, new_parent: Item) -> Item:
        def call(drive: DriveService, api: PyiCloudService) -> Any:
            node = DriveNode(drive, {"drivewsid": item.id, "etag": item.etag})
            target = DriveNode(drive, {"drivewsid": new_parent.id})
            return drive.move_nodes_to_node([node], target)

        answer = self._calls.call(call)
        return self._remember(checked_items(answer, f"move of {item.name}")[0], new_parent.id)

    def trash(self, item: Item) -> None:
        answer = self._calls.call(lambda drive, api: drive.move_items_to_trash(item.id, item.etag))
        checked_items(answer, f"deletion of {item.name}")
        self._downloads.forget(item)

    def delete(self, item: Item) -> None:
        answer = self._calls.call(lambda drive, api: drive.delete_items(item.id, item.etag))
        checked_items(answer, f"deletion of {item.name}")
        self._downloads.forget(item)

    # -- plumbing ----------------------------------------------------------------------

    def _listing(self, node: dict[str, Any]) -> Listing:
        folder = to_item(node)
        children = tuple(
            to_item({**child, "parentId": child.get("parentId", folder.id)}) for child in node["items"]
        )
        for child in children:
            self._parents[child.id] = folder.id
        return Listing(folder=folder, children=children)

    def _children(self, folder_id: str) -> list[Item]:
        return list(self.list_folders([folder_id])[0].children)

    def _remember(self, node: dict[str, Any], parent_id: str | None) -> Item:
        item = to_item({**node, "parentId": node.get("parentId", parent_id)})
        if item.parent_id:
            self._parents[item.id] = item.parent_id
        return item


def _temp_name(name: str) -> str:
    """A hidden, unique, path-safe name beside ``name`` for upload-then-rename."""
    stem, dot, ext = name.replace("/", "_").rpartition(".")
    return f".{stem or ext}.icloudfs-{secrets.token_hex(4)}{dot}{ext if stem else ''}"


def _name_key(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()
