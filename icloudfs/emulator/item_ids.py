"""``item_id``: the one opaque handle of an item that docws's ``v1`` routes take, and how it resolves.

Apple's drivews answers carry an ``item_id`` next to ``drivewsid``/``docwsid`` (an opaque
base64url token such as ``CJC_vaYFEAAiEH8Y2nkmm0bfntz-AmIQWC4`` in pyicloud's
``tests/const_drive.py`` fixtures); ``v1/item/{id}``, ``v1/enumerate/{id}`` and
``v1/item/copy/{id}`` name an item by it, with no zone in the path. Here it is the
base64url of ``<zone>::<docwsid>``, so it needs no table and names app-library roots
(docwsid ``documents`` in every library zone) apart.
"""

from __future__ import annotations

import base64
import binascii

from icloudfs.emulator.store import CLOUD_DOCS, Item, Store


def item_id(item: Item) -> str:
    """The ``item_id`` of ``item`` (stable for its lifetime: zone and docwsid never change)."""
    return base64.urlsafe_b64encode(f"{item.zone}::{item.docwsid}".encode()).decode().rstrip("=")


def resolve(store: Store, handle: str, zone: str = CLOUD_DOCS) -> Item | None:
    """The item named by an ``item_id``, a ``drivewsid`` or a docwsid in ``zone``.

    docws's ``list/lookup_by_id`` calls its parameter ``document_id`` yet rclone passes item
    ids and drivewsids to it (``backend/iclouddrive/api/drive.go`` GetDocByItemID and its
    callers), so all three forms are accepted."""
    if handle.count("::") == 2:
        return store.get(handle)
    decoded = _decode(handle)
    if decoded is not None and decoded.count("::") == 1:
        item_zone, docwsid = decoded.split("::")
        found = store.by_document(item_zone, docwsid)
        if found is not None:
            return found
    return store.by_document(zone, handle) if handle else None


def _decode(handle: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(handle + "=" * (-len(handle) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
