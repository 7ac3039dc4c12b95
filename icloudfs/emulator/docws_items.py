"""docws item lookups rclone's client calls: ``list/lookup_by_path``, ``list/lookup_by_id`` and ``v1``.

All of them are in rclone's ``backend/iclouddrive/api/drive.go``; the shapes follow the Go
structs that decode them (fields rclone does not read are left out):

* ``POST /ws/<zone>/list/lookup_by_path?unified_format=`` with a JSON string body (a path
  from the zone's root) answers a one-entry list; ``unified_format=true`` gives the drivews
  node (``DriveItem``), ``false`` a docws ``Document``. An unknown path is 404, which
  rclone reads as "not found" (``iclouddrive.go`` findItem, used by ``rclone rmdir``).
* ``GET /ws/<zone>/list/lookup_by_id?document_id=&unified_format=`` answers one object.
* ``GET /v1/item/<item_id>`` answers a ``DriveItemRaw``: ``item_id`` and ``item_info``
  (full ``name``, ``extension``, ``size`` *as a string*, ``type``, ``version`` = etag,
  ``modified_at``/``created_at`` as millisecond strings).
* ``GET /v1/enumerate/<item_id>?limit=`` answers ``{"drive_item": [DriveItemRaw...]}``
  (a folder's children, at most ``limit``).
* ``POST /v1/item/copy/<item_id>`` copies a file next to itself (named ``stem 2.ext`` as a
  taken name is; rclone notes the endpoint ignores a new name, so ``info_to_update`` is
  not read) and answers the copy's ``DriveItemRaw``.

``urls.url_download`` is present but empty, as ``update/documents`` answers it: rclone
keeps it and never fetches it (``Object.Open`` asks ``download/by_id``).
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from icloudfs.emulator.context import emulator_of, origin_of
from icloudfs.emulator.guard import require_drive
from icloudfs.emulator.item_ids import item_id, resolve
from icloudfs.emulator.names import name_key, split_name
from icloudfs.emulator.nodes import Renderer
from icloudfs.emulator.responses import drive_error, json_response, read_json
from icloudfs.emulator.routing import Routes
from icloudfs.emulator.store import CLOUD_DOCS, ROOT_ID, TRASH_PARENT, Item, Store

router = Routes("/docws")
_OK = {"status_code": 200, "error_message": ""}


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def document(store: Store, item: Item, owner: str) -> dict[str, Any]:
    """``item`` as a docws ``Document`` (``unified_format=false``).

    ``type`` is the drivewsid's kind (``FILE``/``FOLDER``): rclone rebuilds a drivewsid as
    ``type::zone::document_id`` (``Document.DriveID``)."""
    parent = store.get(item.parent) if item.parent else None
    data: dict[str, Any] = {}
    if item.kind == "FILE":  # what rclone's Copy reads back before its update/documents (iclouddrive.go)
        data = {
            "signature": item.blob or "",
            "reference_signature": item.blob or "",
            "wrapping_key": base64.b64encode(secrets.token_bytes(16)).decode(),
            "size": item.size,
            "owner": owner,
        }
    return {
        "status": _OK,
        "document_id": item.docwsid,
        "item_id": item_id(item),
        "urls": {"url_download": ""},
        "etag": item.etag,
        "parent_id": parent.docwsid if parent is not None else item.parent,
        "name": item.name,
        "type": item.drivewsid.split("::", 1)[0],
        "deleted": item.parent == TRASH_PARENT,
        "mtime": _ms(item.modified),
        "data": data,
        "size": item.size,
        "btime": _ms(item.created),
        "zone": item.zone,
        "lastOpenedTime": _ms(item.opened),
    }


def raw_item(item: Item) -> dict[str, Any]:
    """``item`` as a ``v1`` ``DriveItemRaw`` (rclone decodes ``size`` with ``json:",string"``)."""
    extension = split_name(item.name)[1] if item.kind == "FILE" else None
    return {
        "item_id": item_id(item),
        "item_info": {
            "name": item.name,
            "extension": extension or "",
            "size": str(item.size),
            "type": item.kind,
            "version": item.etag,
            "modified_at": str(_ms(item.modified)),
            "created_at": str(_ms(item.created)),
            "urls": {"url_download": ""},
        },
    }


def _by_path(store: Store, zone: str, path: str) -> Item | None:
    """The item at ``path`` below the zone's root (an app library's ``documents``), names
    compared NFC and case-insensitively as iCloud compares them."""
    node = store.get(ROOT_ID if zone == CLOUD_DOCS else f"FOLDER::{zone}::documents")
    for part in (p for p in path.split("/") if p):
        if node is None or not node.is_folder:
            return None
        key = name_key(part)
        node = next((child for child in store.children(node.drivewsid) if name_key(child.name) == key), None)
    return node


def _shaped(request: Request, item: Item) -> dict[str, Any]:
    """The unified (drivews node) or the docws ``Document`` shape, as ``unified_format`` asks."""
    emulator = emulator_of(request)
    if request.query_params.get("unified_format") == "true":
        return Renderer(emulator.store, origin_of(request)).node(item)
    return document(emulator.store, item, emulator.dsid)


def _not_found() -> Response:
    return drive_error(404, "NOT_FOUND", "No such item")


def _handled(request: Request, handle: str) -> tuple[Store, Item] | Response:
    """The store and the item a ``v1`` path names, or the answer refusing the request."""
    web = require_drive(request)
    if isinstance(web, Response):
        return web
    store = emulator_of(request).store
    item = resolve(store, handle)
    return _not_found() if item is None else (store, item)


@router.post("/ws/{zone}/list/lookup_by_path")
async def lookup_by_path(request: Request, zone: str) -> Response:
    web = require_drive(request)
    if isinstance(web, Response):
        return web
    path = await read_json(request)
    # rclone's body is one JSON string (backend/iclouddrive/api/drive.go GetItemByPath)
    if not isinstance(path, str):
        return drive_error(400, "INVALID_ARGUMENT", "The body must be a path string")
    item = _by_path(emulator_of(request).store, zone, path)
    return _not_found() if item is None else json_response([_shaped(request, item)])


@router.get("/ws/{zone}/list/lookup_by_id")
async def lookup_by_id(request: Request, zone: str) -> Response:
    web = require_drive(request)
    if isinstance(web, Response):
        return web
    # rclone: GetDocByItemID sends document_id + unified_format=false and decodes one Document
    item = resolve(emulator_of(request).store, request.query_params.get("document_id", ""), zone)
    return _not_found() if item is None else json_response(_shaped(request, item))


@router.get("/v1/item/{handle}")
async def v1_item(request: Request, handle: str) -> Response:
    found = _handled(request, handle)
    # rclone: GetItemRawByItemID decodes a DriveItemRaw
    return found if isinstance(found, Response) else json_response(raw_item(found[1]))


@router.get("/v1/enumerate/{handle}")
async def v1_enumerate(request: Request, handle: str) -> Response:
    found = _handled(request, handle)
    if isinstance(found, Response):
        return found
    store, folder = found
    if not folder.is_folder:
        return drive_error(400, "INVALID_ARGUMENT", "Only folders can be enumerated")
    limit = request.query_params.get("limit", "")
    if limit and not limit.isdigit():
        return drive_error(400, "INVALID_ARGUMENT", "limit must be a number")
    children = store.children(folder.drivewsid)
    # rclone: GetItemsInFolder sends limit and reads drive_item
    shown = children[: int(limit)] if limit else children
    return json_response({"drive_item": [raw_item(child) for child in shown]})


@router.post("/v1/item/copy/{handle}")
async def v1_copy(request: Request, handle: str) -> Response:
    found = _handled(request, handle)
    if isinstance(found, Response):
        return found
    store, item = found
    parent = store.get(item.parent)
    if parent is None or not parent.is_folder:
        return _not_found()
    if item.kind != "FILE":
        return drive_error(400, "INVALID_ARGUMENT", "Only files can be copied")
    # rclone: CopyDocByItemID posts {"info_to_update": {}} and decodes a DriveItemRaw
    source = await asyncio.to_thread(_staged_copy, store, item)
    copy = store.add_file(parent, item.name, source, zone=item.zone, mtime=item.modified, btime=item.created)
    return json_response(raw_item(copy))


def _staged_copy(store: Store, item: Item) -> Path:
    """A copy of ``item``'s content in the staging area, for ``add_file`` to adopt."""
    handle, name = tempfile.mkstemp(dir=store.staging)
    os.close(handle)
    if item.blob is not None:
        shutil.copyfile(store.blob_path(item.blob), name)
    return Path(name)
