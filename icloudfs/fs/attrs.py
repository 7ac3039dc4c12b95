"""``stat`` as the kernel wants it, for stored items and for the write-back's nodes.

Modes come from the mount's umask (iCloud stores none); packages and read-only mounts drop the
write bits. A folder's ``st_nlink`` is 2 + its subfolders when its listing is in memory, and 1
("not counted", as btrfs reports) otherwise, which tells ``find`` not to rely on it.

iCloud keeps no settable folder times, so a folder's mtime (and ctime) is kept here for the life
of the mount (for the ``FOLDER_TIMES`` folders used last): set by ``utimens`` (``rsync -a``,
``cp -p`` and ``tar`` see the times they set), and moved to now when an entry is created,
removed or renamed in it (``make`` and backup tools rely on that).
"""

from __future__ import annotations

import stat
import threading
import time
from typing import Any

from cachetools import LRUCache

from icloudfs.cache.metadata import MetadataCache
from icloudfs.cache.writeback import FileNode, Found
from icloudfs.drive.types import ItemKind

BLKSIZE = 1 << 20
FOLDER_TIMES = 100_000  # folders whose times are kept; the least recent fall back to iCloud's


class Attributes:
    """Turns what a path resolves to into a ``stat`` dict. See the module note."""

    def __init__(self, meta: MetadataCache, *, uid: int, gid: int, umask: int, read_only: bool) -> None:
        self._meta = meta
        self._uid, self._gid, self._umask = uid, gid, umask
        self.read_only = read_only
        self._times_lock = threading.Lock()
        self._folder_times: LRUCache[str, float] = LRUCache(FOLDER_TIMES)  # folder id -> mtime

    def of(self, found: Found) -> dict[str, Any]:
        item = found.item() if isinstance(found, FileNode) else found
        if item.is_folder:
            mode = stat.S_IFDIR | (0o777 & ~self._umask)
            subfolders = self._meta.subfolders(item.id)
            links = 1 if subfolders is None else 2 + subfolders
            with self._times_lock:
                mtime = self._folder_times.get(item.id, item.mtime)
        else:
            mode = stat.S_IFREG | (0o666 & ~self._umask)
            if item.kind is ItemKind.PACKAGE or self.read_only:
                mode &= ~0o222
            links, mtime = 1, item.mtime
        stamp = int(mtime * 1e9)
        return {
            "st_mode": mode,
            "st_nlink": links,
            "st_size": item.size,
            "st_blocks": (item.size + 511) // 512,
            "st_blksize": BLKSIZE,
            "st_mtime": stamp,
            "st_ctime": stamp,
            "st_atime": stamp,
            "st_uid": self._uid,
            "st_gid": self._gid,
        }

    def set_folder_time(self, folder_id: str, mtime: float) -> None:
        with self._times_lock:
            self._folder_times[folder_id] = mtime

    def changed(self, *folder_ids: str) -> None:
        """Entries were created, removed or renamed in these folders: their times move."""
        now = time.time()
        with self._times_lock:
            for folder_id in folder_ids:
                self._folder_times[folder_id] = now
