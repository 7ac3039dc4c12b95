"""Plain values that cross the Drive seam."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ItemKind(enum.Enum):
    """What an item is, as the filesystem needs to know it."""

    FOLDER = "folder"
    APP_LIBRARY = "app_library"
    FILE = "file"
    PACKAGE = "package"  # .pages, .numbers, .key ...: read-only, content is a zip

    @property
    def is_folder(self) -> bool:
        return self in (ItemKind.FOLDER, ItemKind.APP_LIBRARY)


@dataclass(frozen=True, slots=True)
class Item:
    """One remote file or folder.

    ``id`` is the drivewsid (``FOLDER::zone::docwsid``); ``etag`` changes on every
    write, so (``docwsid``, ``etag``) names one version of the content.
    """

    id: str
    parent_id: str | None
    name: str
    kind: ItemKind
    size: int
    mtime: float
    etag: str
    zone: str
    docwsid: str

    @property
    def is_folder(self) -> bool:
        return self.kind.is_folder


@dataclass(frozen=True, slots=True)
class Listing:
    """A folder and its direct children, fetched together."""

    folder: Item
    children: tuple[Item, ...]


@dataclass(frozen=True, slots=True)
class Quota:
    """Storage use of the account, in bytes."""

    used: int
    total: int
