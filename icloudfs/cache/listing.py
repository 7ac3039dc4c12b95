"""One folder's listing as the metadata cache holds it, and what tells two listings apart.

The unit of the cache is a folder and its children, keyed by the name as compared locally
(NFC, case-folded: ``name_key``). ``differ`` says which names changed between two fetches of
one folder, for whoever shows them (the kernel) to forget. Rows are JSON (``to_json``), the
same form the write-back's change log uses for items.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import Any

from icloudfs.drive import names
from icloudfs.drive.types import Item, ItemKind, Listing

_TRASH_SUFFIX = "::TRASH_ROOT"


@dataclass(frozen=True)
class Changed:
    """Names in a folder whose entry changed: added, removed, renamed or replaced."""

    folder_id: str
    names: tuple[str, ...]  # as shown locally (``names.to_local``)
    # Found rather than made: a fetch found another device's change, or an upload found the
    # name taken (a conflict). Whoever showed the old entry cannot know, and file bytes they
    # hold are stale too. Else made by this mount (``put``/``remove``).
    found: bool


def name_key(item: Item) -> str:
    return names.key(names.to_local(item.name))


@dataclass
class CachedListing:
    """A folder and its children, and when they were fetched."""

    folder: Item
    children: dict[str, Item]  # name key -> remote item
    fetched: float  # time.time() of the fetch; 0 = must be fetched again
    # Set on listings whose subfolders were not fetched ahead: the folder ids of a prefetch's
    # last level (all of it, so the first one a walk reaches moves the prefetch on for them all),
    # or of itself when fetched for a lookup. Ids, not listings: a replaced listing is not kept.
    frontier: tuple[str, ...] | None = None
    folders: int | None = None  # how many children are folders (counted on first need)


def apply_change(children: dict[str, Item], key: str, item: Item, *, put: bool) -> bool:
    """Put ``item`` under ``key``, or remove it if it is still the one there; True if changed."""
    if put:
        children[key] = item
        return True
    current = children.get(key)
    if current is None or current.id != item.id:
        return False
    del children[key]
    return True


def differ(before: dict[str, Item], after: dict[str, Item]) -> tuple[str, ...]:
    """The local names whose entry is not the same in both: a file with any attribute changed,
    a folder that is another one or renamed (not one whose contents changed: that is its own
    listing's news, and forgetting the folder would drop all the kernel knows below it)."""
    found: set[str] = set()
    for key in before.keys() | after.keys():
        old, new = before.get(key), after.get(key)
        if old != new and not same_folder(old, new):
            found.update(names.to_local(i.name) for i in (old, new) if i is not None)
    return tuple(sorted(found))


def same_folder(old: Item | None, new: Item | None) -> bool:
    return (
        old is not None
        and new is not None
        and old.is_folder
        and (old.id, old.name, old.kind) == (new.id, new.name, new.kind)
    )


def from_drive(listing: Listing) -> CachedListing:
    children = {name_key(c): c for c in listing.children if not c.id.endswith(_TRASH_SUFFIX)}
    return CachedListing(listing.folder, children, time.time())


def item_to_row(item: Item) -> list[Any]:
    return [
        item.id,
        item.parent_id,
        item.name,
        item.kind.value,
        item.size,
        item.mtime,
        item.etag,
        item.zone,
        item.docwsid,
    ]


def item_from_row(row: list[Any]) -> Item:
    parent, zone = row[1], row[7]  # shared by many items: one string each
    parent = None if parent is None else sys.intern(parent)
    return Item(row[0], parent, row[2], ItemKind(row[3]), row[4], row[5], row[6], sys.intern(zone), row[8])


def to_json(listing: CachedListing) -> str:
    return json.dumps(
        {
            "folder": item_to_row(listing.folder),
            "fetched": listing.fetched,
            "children": [item_to_row(c) for c in listing.children.values()],
        },
        separators=(",", ":"),
    )


def from_json(data: str) -> CachedListing:
    raw = json.loads(data)
    children = (item_from_row(c) for c in raw["children"])
    return CachedListing(item_from_row(raw["folder"]), {name_key(c): c for c in children}, raw["fetched"])
