"""Drive JSON nodes -> ``Item`` values, following the field names pyicloud reads.

A node's display name is ``name`` + ``.`` + ``extension`` (pyicloud's rule);
dates are UTC ``YYYY-MM-DDTHH:MM:SSZ`` or carry an offset. Packages (Pages,
Numbers, Keynote documents) are bundles on Apple devices; Drive serves them as
a zip through ``package_token``, so they become read-only files here.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

from icloudfs.drive.types import Item, ItemKind
from icloudfs.errors import Unavailable

ROOT_ID = "FOLDER::com.apple.CloudDocs::root"
TRASH_ID = "FOLDER::com.apple.CloudDocs::TRASH_ROOT"

#: Document bundles that Drive hands out as zips (``package_token``).
PACKAGE_EXTENSIONS = frozenset(
    {"pages", "numbers", "key", "rtfd", "pages-tef", "numbers-tef", "key-tef", "band", "logicx"}
)

_KINDS = {
    "FOLDER": ItemKind.FOLDER,
    "APP_LIBRARY": ItemKind.APP_LIBRARY,
    "APP_CONTAINER": ItemKind.APP_LIBRARY,
}


def display_name(node: dict[str, Any]) -> str:
    """``name.extension`` as pyicloud shows it."""
    name = str(node.get("name") or "")
    extension = node.get("extension")
    return f"{name}.{extension}" if extension else name


def parse_date(value: str | None) -> float:
    """Seconds since the epoch; 0 when Drive gives no date (folders often have none)."""
    if not value:
        return 0.0
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def to_item(node: dict[str, Any]) -> Item:
    """One Drive node as an ``Item``; a malformed node is ``Unavailable`` (retried, then EIO-like)."""
    try:
        return _to_item(node)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise Unavailable(f"iCloud sent a malformed item ({type(error).__name__}: {error})") from error


def _to_item(node: dict[str, Any]) -> Item:
    node_type = str(node.get("type") or "FILE").upper()
    kind = _KINDS.get(node_type)
    if kind is None:
        is_package = node_type == "PACKAGE" or str(node.get("extension", "")).lower() in PACKAGE_EXTENSIONS
        kind = ItemKind.PACKAGE if is_package else ItemKind.FILE
    parent = node.get("parentId")
    return Item(
        id=str(node["drivewsid"]),
        parent_id=None if parent is None else sys.intern(str(parent)),  # shared by its siblings
        name=display_name(node) if node["drivewsid"] != ROOT_ID else "",
        kind=kind,
        size=int(node.get("size") or 0),
        mtime=parse_date(node.get("dateModified") or node.get("dateChanged") or node.get("dateCreated")),
        etag=str(node.get("etag") or ""),
        zone=sys.intern(str(node.get("zone") or "com.apple.CloudDocs")),
        docwsid=str(node.get("docwsid") or ""),
    )
