"""drivews routes (``/drivews/...``): listing, app libraries, create/rename/move/trash/put back/delete.

Refusals (all-or-nothing: a request with one bad item changes nothing):

* unknown item or destination: 404 ``{"errorCode": "NOT_FOUND", "items": [{"drivewsid",
  "status": "ID_INVALID"}]}``;
* stale etag: 409 ``{"errorCode": "ETAG_CONFLICT", "items": [{"drivewsid", "etag": <current>,
  "status": "ETAG_CONFLICT"}]}`` (the per-item status is what rclone's client reads);
* name taken in the destination (NFC, case-insensitive): 409 ``{"errorCode": "NAME_CONFLICT",
  "items": [{"drivewsid"?, "name", "status": "NAME_CONFLICT"}]}``; createFolders uses the
  key ``folders`` instead of ``items``;
* impossible requests (empty name, moving a folder into itself, touching the root): 400
  ``{"errorCode": "INVALID_ARGUMENT", ...}``.

An unknown folder in ``retrieveItemDetailsInFolders`` is an ``{"drivewsid", "status":
"ID_INVALID"}`` entry in the list, as Apple answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from icloudfs.emulator.context import emulator_of, origin_of
from icloudfs.emulator.guard import require_drive
from icloudfs.emulator.names import name_key
from icloudfs.emulator.nodes import Renderer
from icloudfs.emulator.responses import drive_error, json_response, read_json
from icloudfs.emulator.routing import Routes
from icloudfs.emulator.store import (
    APP_LIBRARIES,
    ROOT_ID,
    TRASH_ID,
    TRASH_PARENT,
    Item,
    NameConflict,
    Store,
)

router = Routes("/drivews")
_MAX_NAME = 255


def _renderer(request: Request) -> Renderer:
    return Renderer(emulator_of(request).store, origin_of(request))


def _not_found(ids: list[str], key: str = "items") -> Response:
    return drive_error(
        404, "NOT_FOUND", "No such item", key, [{"drivewsid": i, "status": "ID_INVALID"} for i in ids]
    )


def _name_conflict(entries: list[dict[str, Any]], key: str = "items") -> Response:
    return drive_error(
        409,
        "NAME_CONFLICT",
        "An item with this name already exists",
        key,
        [{**e, "status": "NAME_CONFLICT"} for e in entries],
    )


def _invalid(reason: str) -> Response:
    return drive_error(400, "INVALID_ARGUMENT", reason)


def _bad_name(name: Any) -> bool:
    return not isinstance(name, str) or not name.strip() or len(name) > _MAX_NAME or name in (".", "..")


def _resolve(store: Store, entries: list[dict[str, Any]]) -> list[Item] | Response:
    """The items a batch names, or the 404/409 refusing it (unknown ids first, then stale etags)."""
    items = [store.get(str(e.get("drivewsid", ""))) for e in entries]
    missing = [str(e.get("drivewsid")) for e, item in zip(entries, items, strict=True) if item is None]
    if missing:
        return _not_found(missing)
    found = [item for item in items if item is not None]
    stale = [
        {"drivewsid": item.drivewsid, "etag": item.etag, "status": "ETAG_CONFLICT"}
        for e, item in zip(entries, found, strict=True)
        if e.get("etag") not in (None, item.etag)
    ]
    if stale:
        return drive_error(409, "ETAG_CONFLICT", "The item was changed by someone else", "items", stale)
    if any(item.drivewsid == ROOT_ID or item.kind == "APP_LIBRARY" for item in found):
        return _invalid("The root and app libraries cannot be changed")
    return found


async def _batch(
    request: Request,
    apply: Callable[[Store, list[Item], dict[str, Any]], list[Item] | Response],
    extra: Callable[[Item], dict[str, Any]] | None = None,
) -> Response:
    """Shared shape of renameItems/moveItems/...: guard, resolve, apply, answer ``{"items": [...]}``."""
    web = require_drive(request)
    if isinstance(web, Response):
        return web
    store = emulator_of(request).store
    body: dict[str, Any] = await read_json(request) or {}
    entries = list(body.get("items") or [])
    items = _resolve(store, entries)
    if isinstance(items, Response):
        return items
    done = apply(store, items, body)
    if isinstance(done, Response):
        return done
    render = _renderer(request)
    return json_response(
        {"items": [{**render.node(item), **(extra(item) if extra else {}), "status": "OK"} for item in done]}
    )


@router.post("/retrieveItemDetailsInFolders")
async def retrieve(request: Request) -> Response:
    web = require_drive(request)
    if isinstance(web, Response):
        return web
    store = emulator_of(request).store
    render = _renderer(request)
    answer: list[dict[str, Any]] = []
    for entry in await read_json(request) or []:
        wsid = str(entry.get("drivewsid", ""))
        item = store.get(wsid)
        if wsid == TRASH_ID:
            answer.append(render.trash())
        elif item is None:
            answer.append({"drivewsid": wsid, "status": "ID_INVALID"})
        else:
            answer.append(render.listing(item) if item.is_folder else render.node(item))
    return json_response(answer)


@router.get("/retrieveAppLibraries")
async def app_libraries(request: Request) -> Response:
    web = require_drive(request)
    if isinstance(web, Response):
        return web
    store = emulator_of(request).store
    render = _renderer(request)
    libraries = [store.get(f"FOLDER::{zone}::documents") for zone in APP_LIBRARIES]
    return json_response({"items": [render.node(item) for item in libraries if item is not None]})


@router.post("/createFolders")
async def create_folders(request: Request) -> Response:
    web = require_drive(request)
    if isinstance(web, Response):
        return web
    store = emulator_of(request).store
    body: dict[str, Any] = await read_json(request) or {}
    dest_id = str(body.get("destinationDrivewsId", ""))
    dest = store.get(dest_id)
    if dest is None or not dest.is_folder or dest.parent == TRASH_PARENT:
        return _not_found([dest_id], "folders")
    folders = list(body.get("folders") or [])
    names = [f.get("name") for f in folders]
    if any(_bad_name(n) for n in names):
        return _invalid("Invalid folder name")
    keys = [name_key(n) for n in names]
    taken = [
        {"name": n, "clientId": f.get("clientId")}
        for n, f, k in zip(names, folders, keys, strict=True)
        if store.name_taken(dest.drivewsid, n) or keys.count(k) > 1
    ]
    if taken:
        return _name_conflict(taken, "folders")
    render = _renderer(request)
    created = []
    for name, folder in zip(names, folders, strict=True):
        try:
            item = store.create_folder(dest, name)
        except NameConflict:
            return _name_conflict([{"name": name, "clientId": folder.get("clientId")}], "folders")
        created.append({**render.node(item), "clientId": folder.get("clientId"), "status": "OK"})
    return json_response({"destinationDrivewsId": dest.drivewsid, "folders": created})


def _rename(store: Store, items: list[Item], body: dict[str, Any]) -> list[Item] | Response:
    names = [e.get("name") for e in body.get("items") or []]
    if any(_bad_name(n) for n in names):
        return _invalid("Invalid name")
    taken = [
        {"drivewsid": i.drivewsid, "name": n}
        for i, n in zip(items, names, strict=True)
        if store.name_taken(i.parent, n, exclude=i.drivewsid)
    ]
    if taken:
        return _name_conflict(taken)
    try:
        return [store.rename(item, name) for item, name in zip(items, names, strict=True)]
    except NameConflict as err:
        return _name_conflict([{"name": str(err)}])


def _move(store: Store, items: list[Item], body: dict[str, Any]) -> list[Item] | Response:
    dest_id = str(body.get("destinationDrivewsId", ""))
    dest = store.get(dest_id)
    if dest is None or not dest.is_folder or dest.parent == TRASH_PARENT:
        return _not_found([dest_id])
    if any(item.is_folder and store.is_within(dest.drivewsid, item.drivewsid) for item in items):
        return _invalid("A folder cannot be moved into itself")
    keys = [name_key(item.name) for item in items]
    taken = [
        {"drivewsid": i.drivewsid, "name": i.name}
        for i, k in zip(items, keys, strict=True)
        if store.name_taken(dest.drivewsid, i.name, exclude=i.drivewsid) or keys.count(k) > 1
    ]
    if taken:
        return _name_conflict(taken)
    try:
        return [store.move(item, dest) for item in items]
    except NameConflict as err:
        return _name_conflict([{"name": str(err)}])


def _trash(store: Store, items: list[Item], body: dict[str, Any]) -> list[Item] | Response:
    if any(item.parent == TRASH_PARENT for item in items):
        return _invalid("Already in the trash")
    return [store.trash(item) for item in items]


def _put_back(store: Store, items: list[Item], body: dict[str, Any]) -> list[Item] | Response:
    if any(item.parent != TRASH_PARENT for item in items):
        return _invalid("Not in the trash")
    return [store.put_back(item) for item in items]


def _delete(store: Store, items: list[Item], body: dict[str, Any]) -> list[Item] | Response:
    for item in items:
        store.delete(item)
    return items


@router.post("/renameItems")
async def rename_items(request: Request) -> Response:
    return await _batch(request, _rename)


@router.post("/moveItems")
async def move_items(request: Request) -> Response:
    return await _batch(request, _move)


@router.post("/moveItemsToTrash")
async def move_to_trash(request: Request) -> Response:
    return await _batch(request, _trash)


@router.post("/putBackItemsFromTrash")
async def put_back(request: Request) -> Response:
    return await _batch(request, _put_back)


@router.post("/deleteItems")
async def delete_items(request: Request) -> Response:
    return await _batch(request, _delete, extra=lambda item: {"isDeleted": True, "etag": "null"})
