"""Paths: folder listings from the metadata cache, with the write-back's nodes laid over them.

A name in a folder is, first to last:
1. a node shown there: a file with a staged copy (new, written, or being uploaded), whatever a
   listing says there;
2. the listing's item, unless a live node is bound to it: then that node if it is a plain open
   file, and nothing if the node is unlinked or shown elsewhere (renamed, or written under
   another name), so an unlink or a rename is final at once whatever a listing fetched earlier
   says;
3. at the top of a whole-drive mount, an app library (Pages, Numbers...).

Names compare NFC + case-insensitively and show as stored. A path component over 255 bytes is
refused on every call (the kernel leaves that check to the filesystem). libfuse renames a file
unlinked while open to ``.fuse_hidden<16 hex digits>`` and keeps using that name for it (in
whatever folder it is by then): those names are held here, by name (libfuse makes each unique),
never in a folder.
"""

from __future__ import annotations

import logging
import re
import threading
import time

from icloudfs.cache.listing import name_key
from icloudfs.cache.metadata import MetadataCache
from icloudfs.cache.writeback import FileNode, Found, WriteBack
from icloudfs.drive import names
from icloudfs.drive.protocol import Drive
from icloudfs.drive.types import Item
from icloudfs.errors import DriveError, NotFound
from icloudfs.fs.errors import InvalidRequest, NameTooLong, NotAFolder

log = logging.getLogger(__name__)

NAME_MAX = 255  # bytes, as statfs reports; FUSE itself would pass up to 1024
_HIDDEN = re.compile(r"\.fuse_hidden[0-9a-f]{16}")


def parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


def is_hidden(path: str) -> bool:
    """A name libfuse gives a file unlinked while open."""
    found = parts(path)
    return bool(found) and _HIDDEN.fullmatch(found[-1]) is not None


def key_of(found: Found) -> str:
    return names.key(names.to_local(found.name)) if isinstance(found, FileNode) else name_key(found)


class Tree:
    """Resolves paths below the mounted folder. See the module note."""

    def __init__(self, meta: MetadataCache, writeback: WriteBack, drive: Drive, folder: str) -> None:
        self._meta = meta
        self._writeback = writeback
        self._drive = drive
        self.folder = folder
        self._top: Item | None = None
        self._whole_drive = not parts(folder)
        self._libraries: tuple[float, list[Item]] = (0.0, [])
        self._hidden_lock = threading.Lock()
        self._hidden: dict[str, FileNode] = {}  # libfuse's hidden name -> the unlinked node

    def start(self) -> None:
        """Find the mounted folder."""
        top = self._meta.root()
        for part in parts(self.folder):
            child = self._meta.lookup(top, part)
            if child is None or not child.is_folder:
                raise NotFound(f"folder {self.folder} not found on the drive")
            top = child
        self._top = top

    @property
    def top(self) -> Item:
        if self._top is None:
            raise RuntimeError("Filesystem.start() was not called")
        return self._top

    # -- resolving ----------------------------------------------------------------------------

    def resolve(self, path: str) -> Found:
        if is_hidden(path):
            return self.hidden(path)
        found: Found = self.top
        for part in _checked(path):
            if not isinstance(found, Item) or not found.is_folder:
                raise NotAFolder(path)
            child = self.child(found, part)
            if child is None:
                raise NotFound(path)
            found = child
        return found

    def parent_of(self, path: str) -> tuple[Item, str]:
        """The folder a new name goes in, and the name."""
        found = _checked(path)
        if not found:
            raise InvalidRequest("the mount's own folder has no parent here")
        parent = self.resolve("/".join(found[:-1]))
        if not isinstance(parent, Item) or not parent.is_folder:
            raise NotAFolder(path)
        return parent, found[-1]

    def parent_and_child(self, path: str) -> tuple[Item, Found]:
        parent, name = self.parent_of(path)
        child = self.child(parent, name)
        if child is None:
            raise NotFound(path)
        return parent, child

    def child(self, folder: Item, name: str) -> Found | None:
        node = self._writeback.shown_at(folder.id, name)
        if node is not None:
            return node
        item = self._meta.lookup(folder, name)
        if item is not None and not item.is_folder:
            bound = self._writeback.bound(item.id)
            if bound is None:
                return item
            if bound.deleted or bound.staged is not None:
                return None  # unlinked here, or shown under another name
            if bound.remote is not None and bound.remote.etag != item.etag:
                self._writeback.refreshed(bound, item)
            return bound
        if item is None and self._whole_drive and folder.id == self.top.id:
            key = names.key(name)
            return next((lib for lib in self.app_libraries() if names.key(lib.name) == key), None)
        return item

    def children(self, folder: Item, *, max_age: float | None = None) -> list[Found]:
        items = self._meta.children(folder, max_age=max_age)
        shown: dict[str, Found] = dict(items)
        bound = self._writeback.bound_among(items.values())
        for key, item in items.items() if bound else ():
            node = bound.get(item.id)
            if node is not None and not node.deleted and node.staged is None:
                shown[key] = node  # a plain open file
            elif node is not None:
                del shown[key]  # unlinked here, or shown under another name
        for node in self._writeback.shown_in(folder.id):
            shown[key_of(node)] = node
        if self._whole_drive and folder.id == self.top.id:
            for library in self.app_libraries():
                shown.setdefault(name_key(library), library)
        return list(shown.values())

    def path_of(self, folder_id: str) -> str | None:
        """The mount path of a folder the caches know (None: outside the mount, or unknown).
        An app library hangs under the top of a whole-drive mount by name, not by parent id."""
        path = self._meta.path_of(folder_id, self.top.id)
        if path is not None or not self._whole_drive:
            return path
        for library in self._libraries[1]:
            inner = self._meta.path_of(folder_id, library.id)
            if inner is not None:
                return "/" + names.to_local(library.name) + ("" if inner == "/" else inner)
        return None

    def app_libraries(self) -> list[Item]:
        fetched, libraries = self._libraries
        if time.monotonic() - fetched > self._meta.ttl:
            try:
                libraries = self._drive.app_libraries()
            except DriveError as error:
                log.info("app libraries unavailable, using the last known: %s", error)
            self._libraries = (time.monotonic(), libraries)
        return libraries

    # -- libfuse's hidden names ---------------------------------------------------------------

    def hide(self, path: str, node: FileNode) -> None:
        with self._hidden_lock:
            self._hidden[parts(path)[-1]] = node

    def hidden(self, path: str) -> FileNode:
        with self._hidden_lock:
            node = self._hidden.get(parts(path)[-1])
        if node is None:
            raise NotFound(path)
        return node

    def unhide(self, path: str) -> None:
        with self._hidden_lock:
            self._hidden.pop(parts(path)[-1], None)

    def forget_hidden_in(self, folder_id: str) -> list[FileNode]:
        """Forget the files unlinked while open that were in this folder (it is gone: libfuse
        can no longer name them), and return them."""
        with self._hidden_lock:
            gone = {name: node for name, node in self._hidden.items() if node.parent_id == folder_id}
            for name in gone:
                del self._hidden[name]
        return list(gone.values())


def _checked(path: str) -> list[str]:
    found = parts(path)
    if any(len(part.encode()) > NAME_MAX for part in found):
        raise NameTooLong(path)
    return found
