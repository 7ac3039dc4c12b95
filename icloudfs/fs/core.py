"""POSIX semantics over the caches, without the kernel: what each FUSE call means.

``Filesystem`` assembles the caches for one mounted folder and hands each call to the part that
owns it:

- ``tree.Tree``: paths to folders, stored files and write-back nodes (listings with the nodes
  of files being written laid over them; names NFC + case-insensitive, shown as stored);
- ``attrs.Attributes``: ``stat`` of what a path resolves to, folder times and link counts;
- ``files.Files``: open, read, write, truncate, close, fsync, times;
- ``namespace.Namespace``: mkdir, unlink, rmdir, rename (none of them waits for a transfer);
- ``verbs.Verbs``: the control plane's stats, refresh, uploads, pin and evict.

Errors are raised as ``icloudfs.errors`` / ``icloudfs.fs.errors`` and turned into errno by
``errno_map`` in the FUSE layer, never here. chmod/chown are accepted and ignored.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from icloudfs.cache.content import ContentCache
from icloudfs.cache.listing import Changed
from icloudfs.cache.lock import CacheLock
from icloudfs.cache.metadata import MetadataCache
from icloudfs.cache.reader import Reader
from icloudfs.cache.writeback import WriteBack
from icloudfs.drive import names
from icloudfs.drive.protocol import Drive
from icloudfs.drive.types import Item
from icloudfs.errors import DriveError
from icloudfs.fs.attrs import Attributes
from icloudfs.fs.errors import InvalidRequest, NotAFolder, Unsupported
from icloudfs.fs.files import Files
from icloudfs.fs.handles import FolderHandle, HandleTable
from icloudfs.fs.kernel import KernelCache, NoKernel, answering
from icloudfs.fs.namespace import Namespace
from icloudfs.fs.tree import NAME_MAX, Tree
from icloudfs.fs.unlinked import Unlinked
from icloudfs.fs.verbs import Verbs

log = logging.getLogger(__name__)

_QUOTA_TTL = 30.0
_UNLIMITED = 1 << 50  # reported as free space when the drive does not say

__all__ = ["NAME_MAX", "Filesystem"]


class Filesystem:
    """The mounted folder as POSIX sees it. See the module note."""

    def __init__(
        self,
        drive: Drive,
        *,
        cache_dir: Path,
        cache_size: int,
        folder: str = "/",
        metadata_ttl: float = 60.0,
        negative_ttl: float = 5.0,
        write_back: float = 2.0,
        read_only: bool = False,
        uid: int | None = None,
        gid: int | None = None,
        umask: int = 0o022,
        prefetch_folders: bool = True,
        poll_interval: float = 60.0,
    ) -> None:
        self._cache_lock = CacheLock(cache_dir)  # first: a busy folder is refused before it is read
        self._drive = drive
        self._poll_interval = poll_interval
        self.folder = folder
        self.read_only = read_only
        self._background = ThreadPoolExecutor(2, thread_name_prefix="icloudfs-meta")
        self.meta = MetadataCache(
            drive,
            cache_dir / "metadata.db",
            ttl=metadata_ttl,
            negative_ttl=negative_ttl,
            background=self._background.submit if prefetch_folders else None,
        )
        self.content = ContentCache(
            cache_dir / "blocks", cache_size, pinned=lambda: self.writeback.pinned_bytes()
        )
        self.reader = Reader(drive, self.content)
        self.writeback = WriteBack(
            drive, self.meta, self.content, self.reader, cache_dir / "writeback", delay=write_back
        )
        self._handles = HandleTable()
        self.tree = Tree(self.meta, self.writeback, drive, folder)
        self.attrs = Attributes(
            self.meta,
            uid=os.getuid() if uid is None else uid,
            gid=os.getgid() if gid is None else gid,
            umask=umask,
            read_only=read_only,
        )
        self.unlinked = Unlinked(self.writeback, self.meta)
        self.files = Files(
            self.tree, self.attrs, self.writeback, self.reader, self.meta, drive, self._handles, self.unlinked
        )
        self.names = Namespace(self.tree, self.attrs, self.writeback, self.meta, self.unlinked)
        self.verbs = Verbs(self.tree, self.meta, self.content, self.writeback, drive)
        self._quota: tuple[float, dict[str, int]] = (0.0, {})
        self._stop = threading.Event()
        self._housekeeper: threading.Thread | None = None
        self.mountpoint = ""  # set by whoever mounts it; shown by the control plane
        self.kernel: KernelCache = NoKernel()  # set by whoever mounts it
        self.meta.on_change = self._changed
        self.since = datetime.now(UTC)

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Find the mounted folder, resume pending uploads, start background work."""
        self.tree.start()
        self.since = datetime.now(UTC)
        self.writeback.start()
        self._housekeeper = threading.Thread(
            target=self._housekeep, name="icloudfs-housekeeping", daemon=True
        )
        self._housekeeper.start()

    def pending_uploads(self) -> int:
        """Files whose latest bytes are not in iCloud yet (journaled, they resume on restart)."""
        return self.writeback.pending()

    def drain(self, timeout: float, progress: Callable[[int], None] | None = None) -> bool:
        """Upload pending files now; True if none is left after ``timeout`` seconds."""
        return self.writeback.drain(timeout, progress)

    def close(self) -> None:
        """Stop background work; pending uploads stay journaled for the next start. Files
        unlinked while open and still open (a lazy unmount) go to the trash now."""
        self._stop.set()
        if self._housekeeper is not None:
            self._housekeeper.join()
        for node in self.writeback.unlinked_open():
            try:
                self.unlinked.trash(node, node.name)
            except DriveError as error:
                log.warning("%s was unlinked while open; it stays in iCloud: %s", node.name, error)
        self.writeback.close()
        self.reader.close()
        self._background.shutdown(wait=True, cancel_futures=True)
        self.meta.close()
        self._cache_lock.release()

    @property
    def top(self) -> Item:
        return self.tree.top

    @property
    def negative_ttl(self) -> float:
        """How long a name found absent stays absent (the kernel may trust it as long)."""
        return self.meta.negative_ttl

    def _changed(self, change: Changed) -> None:
        """A listing changed: tell the kernel, unless it made the change itself (see ``kernel``)."""
        if answering.get() and not change.found:
            return
        try:
            path = self.tree.path_of(change.folder_id)
        except RuntimeError:  # not started: the kernel holds nothing yet
            return
        if path is not None:  # else outside the mounted folder, or never shown
            self.kernel.forget(path, change.names, contents=change.found)

    # -- attributes and listings --------------------------------------------------------------

    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, Any]:
        attrs = self.files.getattr(fh)
        return attrs if attrs is not None else self.attrs.of(self.tree.resolve(path or "/"))

    def opendir(self, path: str) -> int:
        folder = self.tree.resolve(path)
        if not isinstance(folder, Item) or not folder.is_folder:
            raise NotAFolder(path)
        return self._handles.add(FolderHandle(folder))

    def readdir(self, fh: int, offset: int) -> list[tuple[str, dict[str, Any]]]:
        """Entries from ``offset`` on (``.`` and ``..`` first); a listing is taken at offset 0."""
        handle = self._handles.get(fh, FolderHandle)
        if offset == 0 or not handle.entries:
            own = self.attrs.of(handle.folder)
            children = [(names.to_local(c.name), self.attrs.of(c)) for c in self.tree.children(handle.folder)]
            handle.entries = [(".", own), ("..", own), *children]
        return handle.entries[offset:]

    def releasedir(self, fh: int) -> None:
        self._handles.pop(fh, FolderHandle)

    def statfs(self) -> dict[str, int]:
        fetched, figures = self._quota
        if time.monotonic() - fetched > _QUOTA_TTL:
            quota = self._drive.quota()
            total, used = (quota.total, quota.used) if quota else (_UNLIMITED, 0)
            free = max(0, total - used) // 4096
            figures = {
                "f_bsize": 4096,
                "f_frsize": 4096,
                "f_blocks": total // 4096,
                "f_bfree": free,
                "f_bavail": free,
                "f_files": 1 << 32,
                "f_ffree": 1 << 31,
                "f_favail": 1 << 31,
                "f_namemax": NAME_MAX,
            }
            self._quota = (time.monotonic(), figures)
        return figures

    # -- files (see ``files.py``) -------------------------------------------------------------

    def open(self, path: str, flags: int) -> int:
        return self.files.open(path, flags)

    def create(self, path: str, flags: int) -> int:
        return self.files.create(path, flags)

    def read_into(self, fh: int, into: memoryview, offset: int) -> int:
        return self.files.read_into(fh, into, offset)

    def write(self, fh: int, data: bytes | memoryview, offset: int) -> int:
        return self.files.write(fh, data, offset)

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> None:
        self.files.truncate(path, length, fh)

    def flush(self, fh: int) -> None:
        self.files.flush(fh)

    def fsync(self, fh: int) -> None:
        self.files.fsync(fh)

    def release(self, fh: int) -> None:
        self.files.release(fh)

    def utimens(self, path: str | None, times: tuple[int, int] | None, fh: int | None = None) -> None:
        self.files.utimens(path, times, fh)

    def ignore_mode_change(self, path: str | None) -> None:
        """chmod/chown: accepted and ignored (iCloud stores no modes or owners)."""
        if path is not None:
            self.tree.resolve(path)

    # -- namespace (see ``namespace.py``) -----------------------------------------------------

    def mkdir(self, path: str) -> None:
        self.names.mkdir(path)

    def unlink(self, path: str) -> None:
        self.names.unlink(path)

    def rmdir(self, path: str) -> None:
        self.names.rmdir(path)

    def rename(self, old: str, new: str, flags: int = 0) -> None:
        self.names.rename(old, new, flags)

    def link(self) -> None:
        raise Unsupported("hard links are not supported by iCloud Drive")

    def symlink(self) -> None:
        raise Unsupported("symbolic links are not supported by iCloud Drive")

    def mknod(self) -> None:
        raise Unsupported("only regular files and folders can be stored")

    def readlink(self, path: str) -> str:
        self.tree.resolve(path)
        raise InvalidRequest(f"{path} is not a symbolic link")

    # -- control plane (see ``verbs.py``) -----------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return {
            "metadata": self.meta.stats(),
            "content": self.content.stats(),
            "uploads": self.writeback.stats(),
            "open_handles": len(self._handles),
        }

    def refresh(self, path: str = "/", recursive: bool = False) -> int:
        return self.verbs.refresh(path, recursive)

    def uploads(self) -> list[dict[str, Any]]:
        return self.verbs.uploads()

    def retry_uploads(self) -> int:
        """Retry failed uploads now rather than after their backoff; returns how many."""
        return self.writeback.retry_failed()

    def pin(self, path: str, keep: bool = True) -> tuple[int, int]:
        return self.verbs.pin(path, keep)

    def evict(self, path: str | None = "/") -> int:
        return self.verbs.evict(path)

    # -- housekeeping -------------------------------------------------------------------------

    def _housekeep(self) -> None:
        """Save listings every few seconds; poll for remote changes every ``poll_interval``."""
        next_poll = time.monotonic() + self._poll_interval
        while not self._stop.wait(2.0):
            try:
                self.meta.flush()
                if self._poll_interval > 0 and time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + self._poll_interval
                    self.meta.poll(self._poll_interval)
            except Exception:
                log.exception("background metadata work failed")
