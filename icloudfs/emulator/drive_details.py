"""drivews ``retrieveItemDetails``: items by drivewsid, without their children.

rclone asks it with ``[{"items": [{"drivewsid", "partialData", "includeHierarchy"}, ...]}]``
and decodes a flat list of drivews nodes (``backend/iclouddrive/api/drive.go``
GetItemsByDriveID with ``includeChildren`` false). The answer has one node per requested
item, in order; an unknown one is ``{"drivewsid", "status": "ID_INVALID"}`` as
``retrieveItemDetailsInFolders`` answers it. ``includeHierarchy`` is not honoured (no
client asks for it).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from icloudfs.emulator.context import emulator_of, origin_of
from icloudfs.emulator.guard import require_drive
from icloudfs.emulator.nodes import Renderer
from icloudfs.emulator.responses import json_response, read_json
from icloudfs.emulator.routing import Routes

router = Routes("/drivews")


@router.post("/retrieveItemDetails")
async def retrieve_details(request: Request) -> Response:
    web = require_drive(request)
    if isinstance(web, Response):
        return web
    store = emulator_of(request).store
    render = Renderer(store, origin_of(request))
    body = await read_json(request)
    wanted = [
        str(entry.get("drivewsid", ""))
        for group in (body if isinstance(body, list) else [])
        if isinstance(group, dict)
        for entry in group.get("items") or []
        if isinstance(entry, dict)
    ]
    answer: list[dict[str, Any]] = []
    for wsid in wanted:
        item = store.get(wsid)
        answer.append({"drivewsid": wsid, "status": "ID_INVALID"} if item is None else render.node(item))
    return json_response(answer)
