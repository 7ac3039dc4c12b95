"""drivews routes (``/drivews/...``): listing, app libraries, create/rename/move/trash/put back/delete.

``renameItems``, ``moveItems``, ``moveItemsToTrash``, ``putBackItemsFromTrash`` and
``deleteItems`` answer 200 with one entry per item, each with its own ``status``, as Apple
does (rclone's ``api/drive.go`` reads ``items[i].status`` and retries on ``ETAG_CONFLICT``
with the etag that entry returns): an item refused does not stop the others.

* unknown item: ``{"drivewsid", "status": "ID_INVALID"}``;
* stale etag: ``{"drivewsid", "etag": <current>, "status": "ETAG_CONFLICT"}``;
* name taken in the destination (NFC, case-insensitive): ``{"drivewsid", "name", "status":
  "NAME_CONFLICT"}``.

What makes the whole request impossible is still refused as a whole: an unknown destination
folder (404 ``NOT_FOUND``), an empty or invalid name, moving a folder into itself, touching the
root (400 ``INVALID_ARGUMENT``). ``createFolders`` refuses a taken name with 409
``NAME_CONFLICT`` (its key is ``folders``).

``deleteItems`` moves a live item to Recently Deleted (as pyicloud's README says Apple does),
and removes one already there for good.

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


Outcome = Item | dict[str, Any]
"""What one item of a batch became: the changed item, or its refusal (``{"status": ...}``)."""

Apply = Callable[[Store, Item, dict[str, Any], dict[str, Any]], Outcome]
"""``apply(store, item, entry, body)``: one item's change (``entry`` is its part of the body)."""

Check = Callable[[Store, list[Item], dict[str, Any]], Response | None]
"""A check of the whole request before any item is changed: its refusal, or None."""


async def _batch(request: Request, apply: Apply, check: Check | None = None) -> Response:
    """Shared shape of renameItems/moveItems/...: guard, then each item on its own (an unknown id
    or a stale etag refuses that item only), answered ``{"items": [...]}`` with a status each."""
    web = require_drive(request)
    if isinstance(web, Response):
        return web
    store = emulator_of(request).store
    body: dict[str, Any] = await read_json(request) or {}
    entries = [e for e in body.get("items") or [] if isinstance(e, dict)]
    found = {str(e.get("drivewsid", "")): store.get(str(e.get("drivewsid", ""))) for e in entries}
    known = [item for item in found.values() if item is not None]
    if any(item.drivewsid == ROOT_ID or item.kind == "APP_LIBRARY" for item in known):
        return _invalid("The root and app libraries cannot be changed")
    refusal = check(store, known, body) if check is not None else None
    if refusal is not None:
        return refusal
    render = _renderer(request)
    answers: list[dict[str, Any]] = []
    for entry in entries:
        wsid = str(entry.get("drivewsid", ""))
        item = store.get(wsid)  # as it is now: an earlier entry may have changed it
        if item is None:
            answers.append({"drivewsid": wsid, "status": "ID_INVALID"})
        elif entry.get("etag") not in (None, item.etag):
            answers.append({"drivewsid": wsid, "etag": item.etag, "status": "ETAG_CONFLICT"})
        else:
            outcome = apply(store, item, entry, body)
            answers.append({**render.node(outcome), "status": "OK"} if isinstance(outcome, Item) else outcome)
    return json_response({"items": answers})


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


def _check_names(store: Store, items: list[Item], body: dict[str, Any]) -> Response | None:
    names = [e.get("name") for e in body.get("items") or [] if isinstance(e, dict)]
    return _invalid("Invalid name") if any(_bad_name(n) for n in names) else None


def _rename(store: Store, item: Item, entry: dict[str, Any], body: dict[str, Any]) -> Outcome:
    name = str(entry.get("name"))
    refused = {"drivewsid": item.drivewsid, "name": name, "status": "NAME_CONFLICT"}
    if store.name_taken(item.parent, name, exclude=item.drivewsid):
        return refused
    try:
        return store.rename(item, name)
    except NameConflict:
        return refused


def _destination(store: Store, body: dict[str, Any]) -> Item | None:
    dest = store.get(str(body.get("destinationDrivewsId", "")))
    return dest if dest is not None and dest.is_folder and dest.parent != TRASH_PARENT else None


def _check_move(store: Store, items: list[Item], body: dict[str, Any]) -> Response | None:
    dest = _destination(store, body)
    if dest is None:
        return _not_found([str(body.get("destinationDrivewsId", ""))])
    if any(item.is_folder and store.is_within(dest.drivewsid, item.drivewsid) for item in items):
        return _invalid("A folder cannot be moved into itself")
    return None


def _move(store: Store, item: Item, entry: dict[str, Any], body: dict[str, Any]) -> Outcome:
    dest = _destination(store, body)
    assert dest is not None  # checked first
    refused = {"drivewsid": item.drivewsid, "name": item.name, "status": "NAME_CONFLICT"}
    if store.name_taken(dest.drivewsid, item.name, exclude=item.drivewsid):
        return refused
    try:
        return store.move(item, dest)
    except NameConflict:
        return refused


def _trash(store: Store, item: Item, entry: dict[str, Any], body: dict[str, Any]) -> Outcome:
    if item.parent == TRASH_PARENT:
        return {"drivewsid": item.drivewsid, "status": "ID_INVALID"}  # gone from the drive already
    return store.trash(item)


def _put_back(store: Store, item: Item, entry: dict[str, Any], body: dict[str, Any]) -> Outcome:
    if item.parent != TRASH_PARENT:
        return {"drivewsid": item.drivewsid, "status": "ID_INVALID"}
    return store.put_back(item)


def _delete(store: Store, item: Item, entry: dict[str, Any], body: dict[str, Any]) -> Outcome:
    if item.parent != TRASH_PARENT:
        return store.trash(item)  # a live item goes to Recently Deleted first
    store.delete(item)
    return {"drivewsid": item.drivewsid, "etag": "null", "isDeleted": True, "status": "OK"}


@router.post("/renameItems")
async def rename_items(request: Request) -> Response:
    return await _batch(request, _rename, _check_names)


@router.post("/moveItems")
async def move_items(request: Request) -> Response:
    return await _batch(request, _move, _check_move)


@router.post("/moveItemsToTrash")
async def move_to_trash(request: Request) -> Response:
    return await _batch(request, _trash)


@router.post("/putBackItemsFromTrash")
async def put_back(request: Request) -> Response:
    return await _batch(request, _put_back)


@router.post("/deleteItems")
async def delete_items(request: Request) -> Response:
    return await _batch(request, _delete)
