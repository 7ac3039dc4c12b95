"""docws routes (``/docws/ws/<zone>/...``): download tickets, upload tickets and ``update/documents``.

``download/by_id`` answers a ``data_token`` (or ``package_token`` for Pages/Numbers/
Keynote packages, stored as zips) whose URL is a signed content URL pinned to the
current version. ``upload/web`` hands out a signed upload URL; ``update/documents``
with ``add_file`` redeems the upload receipt into a new file. A taken name does not
fail: the new file is called ``stem 2.ext`` as iCloud does, so clients replace a
file by uploading and then swapping names. The answer has the shape rclone reads:
``{"status": {...}, "results": [{"status", "operation_id", "document": {document_id,
item_id, etag, parent_id (parent docwsid), name (full), type, zone, size, mtime, btime,
...}}]}``; the new item's drivewsid is ``FILE::<zone>::<document_id>``.
"""

from __future__ import annotations

import base64
import secrets
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from icloudfs.emulator.context import emulator_of, origin_of
from icloudfs.emulator.guard import require_drive
from icloudfs.emulator.item_ids import item_id
from icloudfs.emulator.responses import drive_error, json_response, read_json
from icloudfs.emulator.routing import Routes
from icloudfs.emulator.sessions import Sessions
from icloudfs.emulator.store import Item

router = Routes("/docws/ws/{zone}")
PACKAGE_EXTENSIONS = ("pages", "numbers", "key")
_OK = {"status_code": 200, "error_message": ""}


def _ticket(url: str, item: Item) -> dict[str, str]:
    return {
        "url": url,
        "token": secrets.token_urlsafe(16),
        "signature": item.blob or "",
        "wrapping_key": base64.b64encode(secrets.token_bytes(16)).decode(),
        "reference_signature": item.blob or "",
    }


@router.get("/download/by_id")
async def download_ticket(request: Request, zone: str) -> Response:
    web = require_drive(request)
    if isinstance(web, Response):
        return web
    emulator = emulator_of(request)
    document_id = request.query_params.get("document_id", "")
    item = emulator.store.by_document(zone, document_id)
    if item is None or item.kind != "FILE" or item.blob is None:
        return drive_error(404, "NOT_FOUND", "No such document")
    url = origin_of(request) + emulator.sign(f"/content/{item.blob}", f"/{quote(item.name)}", web.token)
    key = "package_token" if item.name.rsplit(".", 1)[-1].lower() in PACKAGE_EXTENSIONS else "data_token"
    return json_response(
        {
            "document_id": item.docwsid,
            "item_id": item_id(item),
            "owner_dsid": int(emulator.dsid),
            key: _ticket(url, item),
            "double_etag": item.etag,
        }
    )


@router.post("/upload/web")
async def upload_ticket(request: Request, zone: str) -> Response:
    web = require_drive(request)
    if isinstance(web, Response):
        return web
    emulator = emulator_of(request)
    token = request.query_params.get("token")
    # rclone sends no token (backend/iclouddrive/api/drive.go CreateUpload): the cookies suffice
    if token is not None and token != Sessions.validate_value(web):
        return json_response({"success": False, "error": "Invalid token"}, 401)
    document_id = secrets.token_hex(16).upper()
    document_id = "-".join(
        (document_id[:8], document_id[8:12], document_id[12:16], document_id[16:20], document_id[20:])
    )
    url = origin_of(request) + emulator.sign(f"/upload/{zone}/{document_id}")
    return json_response([{"document_id": document_id, "url": url, "owner": emulator.dsid}])


@router.post("/update/documents")
async def update_documents(request: Request, zone: str) -> Response:
    web = require_drive(request)
    if isinstance(web, Response):
        return web
    emulator = emulator_of(request)
    store = emulator.store
    body: dict[str, Any] = await read_json(request) or {}
    if body.get("command") != "add_file":
        return drive_error(400, "INVALID_ARGUMENT", "Only add_file is supported")
    path = body.get("path") or {}
    parent_docwsid = str(path.get("starting_document_id", ""))
    parent = store.by_document(zone, parent_docwsid)
    name = str(path.get("path", "")).rsplit("/", 1)[-1]
    if parent is None and store.in_another_zone(zone, parent_docwsid):
        # a parent in an app container committed under another zone (rclone issue 9729)
        reason = "Request has out of order children to be chained but the parents were missing"
        return drive_error(412, "VALIDATING_REFERENCE_ERROR", reason)
    if parent is None or not parent.is_folder:
        return drive_error(404, "NOT_FOUND", "No such folder")
    if not name:
        return drive_error(400, "INVALID_ARGUMENT", "Missing name")
    receipt = str((body.get("data") or {}).get("receipt", ""))
    if receipt:
        source = store.staging / Path(receipt).name
        if not source.is_file():
            return drive_error(400, "INVALID_ARGUMENT", "Unknown upload receipt")
    else:
        source = Path(tempfile.mkstemp(dir=store.staging)[1])  # an empty file: no upload needed
    docwsid = str(body.get("document_id") or "") or None
    if docwsid and store.by_document(parent.zone, docwsid):
        docwsid = None
    item = store.add_file(
        parent,
        name,
        source,
        zone=parent.zone,
        docwsid=docwsid,
        mtime=_seconds(body.get("mtime")),
        btime=_seconds(body.get("btime")),
    )
    document = {
        "status": _OK,
        "document_id": item.docwsid,
        "item_id": item_id(item),
        "urls": {"url_download": ""},
        "etag": item.etag,
        "parent_id": parent.docwsid,
        "name": item.name,
        "type": "FILE",
        "deleted": False,
        "mtime": int(item.modified * 1000),
        "last_editor_name": "",
        "data": {**(body.get("data") or {}), "owner": emulator.dsid},
        "size": item.size,
        "btime": int(item.created * 1000),
        "zone": item.zone,
        "file_flags": body.get("file_flags") or {},
        "lastOpenedTime": int(item.opened * 1000),
        "restorePath": None,
        "hasChainedParent": True,
    }
    return json_response(
        {"status": _OK, "results": [{"status": _OK, "operation_id": None, "document": document}]}
    )


def _seconds(ms: Any) -> float | None:
    return float(ms) / 1000 if isinstance(ms, (int, float)) else None
