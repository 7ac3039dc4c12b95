"""Files unlinked while open: gone from their folder at once, readable until the last close.

libfuse renames such a file to ``.fuse_hidden…`` and unlinks that name when the last handle
closes. The rename makes the node deleted here (no request); its stored version stays in iCloud
for the handles to read, and goes to the trash at the last close. If the name is taken again
before that (``rm log; echo > log`` while a reader holds the old log), the old version is first
renamed aside remotely (one request, no transfer), so the new file gets the name and the reader
still gets its bytes. A crash before the last close leaves the old version in iCloud (under its
name, or the aside name ``.NAME.icloudfs-unlinked-XXXXXXXX``): nothing is lost, the unlink is.

The last close's unlink comes from libfuse itself, outside the kernel's folder lock, so it may
meet a call that takes the name again: ``_lock`` keeps the two apart.
"""

from __future__ import annotations

import contextlib
import logging
import threading

from icloudfs.cache.metadata import MetadataCache
from icloudfs.cache.writeback import FileNode, WriteBack
from icloudfs.drive.types import Item
from icloudfs.errors import NotFound

log = logging.getLogger(__name__)


class Unlinked:
    """The stored versions of files unlinked while open. See the module note."""

    def __init__(self, writeback: WriteBack, meta: MetadataCache) -> None:
        self._writeback, self._meta = writeback, meta
        self._lock = threading.Lock()

    def free(self, folder: Item, name: str) -> None:
        """A name is about to be taken: if an unlinked file's stored version still holds it,
        move that version aside first."""
        item = self._meta.lookup(folder, name)
        node = None if item is None else self._writeback.bound(item.id)
        if node is None or not node.trash_on_close:
            return
        with self._lock, self._writeback.quiesce(node, why="deleted") as (pinned,):
            assert pinned is not None
            stored = pinned.remote
            if not pinned.trash_on_close or stored is None:
                return
            aside = self._writeback.changes.set_aside(stored, folder, "unlinked-", name)
            self._meta.remove(folder.id, stored)
            self._writeback.moved(pinned, aside)

    def trash(self, node: FileNode, path: str) -> None:
        """The last handle closed (or the mount stops): the stored version goes to the trash."""
        with self._lock, self._writeback.quiesce(node, why="deleted") as (pinned,):
            assert pinned is not None
            stored = pinned.remote
            if pinned.trash_on_close and stored is not None:
                with contextlib.suppress(NotFound):  # its folder went to the trash with it
                    self._writeback.changes.trash(stored, path)
                self._meta.remove(stored.parent_id or "", stored)
                log.debug("%s: unlinked while open, now in the trash", path)
            self._writeback.trashed(pinned)
