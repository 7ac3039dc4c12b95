"""Drive items as drivews JSON, with exactly the fields pyicloud reads and Apple's fixtures show.

Files carry ``name`` without the extension plus ``extension`` (pyicloud shows
``name.extension``), ``size`` and second-precision UTC dates; folders carry
recursive ``fileCount``/``assetQuota`` and ``directChildrenCount``; items in the
trash carry ``parentId: "TRASH_ROOT"``, ``restorePath`` and ``dateExpiration``.
Only the folder being listed carries ``items``/``numberOfItems``. Every item carries
its ``item_id`` (see ``item_ids``).
"""

from __future__ import annotations

import time
from typing import Any

from icloudfs.emulator.item_ids import item_id
from icloudfs.emulator.names import split_name
from icloudfs.emulator.store import TRASH_PARENT, Item, Store

TRASH_DAYS = 30
_LIBRARY_TYPES = {
    "com.apple.Pages": (
        ["pages", "docx", "doc", "rtf", "txt"],
        ["com.apple.iwork.pages.pages", "org.openxmlformats.wordprocessingml.document"],
    ),
    "com.apple.Numbers": (
        ["numbers", "xlsx", "xls", "csv", "tsv"],
        ["com.apple.iwork.numbers.numbers", "org.openxmlformats.spreadsheetml.sheet"],
    ),
    "com.apple.Keynote": (
        ["key", "pptx", "ppt"],
        ["com.apple.iwork.keynote.key", "org.openxmlformats.presentationml.presentation"],
    ),
}


def iso(ts: float) -> str:
    """Apple's date form: ``2020-04-27T21:37:36Z`` (UTC, no fractions)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class Renderer:
    """Renders items for one request (icons need the origin the client used)."""

    def __init__(self, store: Store, origin: str) -> None:
        self.store = store
        self.origin = origin

    def node(self, item: Item) -> dict[str, Any]:
        data: dict[str, Any] = {
            "dateCreated": iso(item.created),
            "drivewsid": item.drivewsid,
            "docwsid": item.docwsid,
            "zone": item.zone,
            "name": item.name,
        }
        if item.parent:
            data["parentId"] = item.parent
        # rclone deletes only items whose listing gave an item_id (backend/iclouddrive/iclouddrive.go
        # Object.Remove); Apple's drivews answers carry one (pyicloud tests/const_drive.py)
        data["item_id"] = item_id(item)
        data["etag"] = item.etag
        data["type"] = item.kind
        if item.kind == "FILE":
            stem, ext = split_name(item.name)
            data["name"] = stem
            if ext is not None:
                data["extension"] = ext
            data.update(
                dateModified=iso(item.modified),
                dateChanged=iso(item.changed),
                lastOpenTime=iso(item.opened),
                size=item.size,
            )
        elif item.kind == "APP_LIBRARY":
            extensions, types = _LIBRARY_TYPES.get(item.zone, ([], []))
            data.update(
                maxDepth="ANY",
                icons=self._icons(item.zone),
                supportedExtensions=extensions,
                supportedTypes=types,
            )
        else:
            files, size = self.store.subtree_totals(item.drivewsid)
            data.update(
                assetQuota=size,
                fileCount=files,
                shareCount=0,
                shareAliasCount=0,
                directChildrenCount=self.store.child_count(item.drivewsid),
            )
        if item.parent == TRASH_PARENT:
            self._trash_fields(item, data)
        return data

    def listing(self, folder: Item) -> dict[str, Any]:
        """A folder with its children, as ``retrieveItemDetailsInFolders`` answers."""
        data = self.node(folder)
        if folder.kind == "APP_LIBRARY":
            files, size = self.store.subtree_totals(folder.drivewsid)
            data.update(
                assetQuota=size, fileCount=files, directChildrenCount=self.store.child_count(folder.drivewsid)
            )
        children = [self.node(child) for child in self.store.children(folder.drivewsid)]
        data.update(items=children, numberOfItems=len(children))
        return data

    def trash(self) -> dict[str, Any]:
        children = [self.node(child) for child in self.store.children(TRASH_PARENT)]
        return {"items": children, "numberOfItems": len(children), "drivewsid": TRASH_PARENT}

    def _trash_fields(self, item: Item, data: dict[str, Any]) -> None:
        home = self.store.path_of(item.restore_parent) if item.restore_parent else ""
        data["restorePath"] = f"{home}/{item.name}" if home else item.name
        data["dateExpiration"] = iso((item.trashed or item.changed) + TRASH_DAYS * 86400)
        data["isChainedToParent"] = True

    def _icons(self, zone: str) -> list[dict[str, Any]]:
        return [
            {
                "url": f"{self.origin}/drivews/getIcons?id={zone}&field=icon{n}x{n}_iOS",
                "type": "IOS",
                "size": n,
            }
            for n in (120, 80, 40)
        ]
