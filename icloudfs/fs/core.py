"""POSIX semantics over the caches, without the kernel: what each FUSE call means.

Paths are resolved from the mounted folder one name at a time through cached
listings (names compared NFC + case-insensitively, shown as stored). Errors are
raised as ``icloudfs.errors`` / ``icloudfs.fs.errors`` and turned into errno by
``errno_map`` in the FUSE layer, never here.

What is worth knowing:
- Reads of clean files go through the block cache (``Reader``); a file with a
  staged copy (being written, or written and not yet uploaded) reads from it.
  A handle whose version went stale (``Conflict``) re-reads the item once.
- The first write to an existing file copies it into staging (only what is
  kept: ``O_TRUNC`` and ``truncate`` skip the download). New files exist at
  once with a temporary identity and are uploaded later by the write-back.
- Rename over an existing target never loses the target: a new local file
  renamed over a remote one becomes a pending *replace* of it (the editor and
  rsync pattern: zero requests now, one atomic replace later); otherwise the
  target is renamed aside, the source moved in, and only then is the target
  trashed (on failure it is renamed back).
- Deletions go to the drive's Recently Deleted, not into oblivion.
- Namespace calls on one folder are serialised by the kernel (it holds the
  folder's inode lock), so they need no lock of their own here; the caches
  guard their own state, and a file's uploads and renames share its
  ``Entry.remote_lock`` (see ``cache/writeback.py`` for the lock order).
- mtime can be set only by an upload: ``utimens`` on a file with pending bytes
  sets the mtime it will be uploaded with; on a clean file with another mtime
  it stages the file and uploads it again (``touch`` works; rsync's late
  utimens after an early upload keeps its mtime). Folder times cannot be stored
  in iCloud: a time set on a folder is remembered for the life of the mount.
  chmod/chown are accepted and ignored.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from icloudfs.cache.content import ContentCache
from icloudfs.cache.metadata import MetadataCache, is_local
from icloudfs.cache.prefetch import Reader
from icloudfs.cache.writeback import Entry, WriteBack
from icloudfs.drive import names
from icloudfs.drive.protocol import Drive
from icloudfs.drive.types import Item, ItemKind
from icloudfs.errors import AlreadyExists, Conflict, DriveError, NotFound
from icloudfs.fs.errors import (
    FolderNotEmpty,
    InvalidRequest,
    IsAFolder,
    NameTooLong,
    NotAFolder,
    NotWritable,
    ReadOnly,
    Unsupported,
)
from icloudfs.fs.handles import FileHandle, FolderHandle, HandleTable

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_QUOTA_TTL = 30.0
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_BLKSIZE = 1 << 20
_RACES = 100  # looks again at a name whose file is changing identity under us (1 ms apart)
NAME_MAX = 255  # bytes, as statfs reports; FUSE itself would pass up to 1024
_UNLIMITED = 1 << 50  # reported as free space when the drive does not say


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
        self._drive = drive
        self._poll_interval = poll_interval
        self.folder = folder
        self.read_only = read_only
        self._uid = os.getuid() if uid is None else uid
        self._gid = os.getgid() if gid is None else gid
        self._umask = umask
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
        self._top: Item | None = None
        self._whole_drive = not [p for p in folder.split("/") if p]
        self._libraries: tuple[float, list[Item]] = (0.0, [])
        self._quota: tuple[float, dict[str, int]] = (0.0, {})
        self._times_lock = threading.Lock()
        self._folder_times: dict[str, float] = {}  # folder id -> mtime set here (utimens)
        self._stop = threading.Event()
        self._housekeeper: threading.Thread | None = None
        self.mountpoint = ""  # set by whoever mounts it; shown by the control plane
        self.since = datetime.now(UTC)

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Find the mounted folder, resume pending uploads, start background work."""
        top = self.meta.root()
        for part in [p for p in self.folder.split("/") if p]:
            child = self.meta.lookup(top, part)
            if child is None or not child.is_folder:
                raise NotFound(f"folder {self.folder} not found on the drive")
            top = child
        self._top = top
        self.since = datetime.now(UTC)
        self.writeback.start()
        self._housekeeper = threading.Thread(
            target=self._housekeep, name="icloudfs-housekeeping", daemon=True
        )
        self._housekeeper.start()

    def drain(self, timeout: float, progress: Callable[[int], None] | None = None) -> bool:
        """Upload pending files now; True if none is left after ``timeout`` seconds."""
        return self.writeback.drain(timeout, progress)

    def close(self) -> None:
        """Stop background work; pending uploads stay journaled for the next start."""
        self._stop.set()
        if self._housekeeper is not None:
            self._housekeeper.join()
        self.writeback.close()
        self.reader.close()
        self._background.shutdown(wait=True, cancel_futures=True)
        self.meta.close()

    # -- attributes and listings --------------------------------------------------------------

    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, Any]:
        handle = self._handles.find(fh)
        if isinstance(handle, FileHandle) and (path is None or handle.entry is not None):
            return self._attrs(self._current(handle.entry.item() if handle.entry else handle.item))
        return self._attrs(self._current(self._resolve(path or "/")))

    def opendir(self, path: str) -> int:
        folder = self._resolve(path)
        if not folder.is_folder:
            raise NotAFolder(path)
        return self._handles.add(FolderHandle(folder))

    def readdir(self, fh: int, offset: int) -> list[tuple[str, dict[str, Any]]]:
        """Entries from ``offset`` on (``.`` and ``..`` first); a listing is taken at offset 0."""
        handle = self._handles.get(fh, FolderHandle)
        if offset == 0 or not handle.entries:
            attrs = self._attrs(handle.folder)
            children = [
                (names.to_local(c.name), self._attrs(self._current(c))) for c in self._children(handle.folder)
            ]
            handle.entries = [(".", attrs), ("..", attrs), *children]
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

    # -- files --------------------------------------------------------------------------------

    def open(self, path: str, flags: int) -> int:
        writable = flags & os.O_ACCMODE != os.O_RDONLY
        for _ in range(_RACES):
            item = self._resolve(path)
            if item.is_folder:
                raise IsAFolder(path)
            if writable:
                self._check_writable(item)
            handle = FileHandle(item, writable)
            entry = self.writeback.entry_for(item.id)
            if (entry is None and not is_local(item)) or (entry is not None and self._attach(handle, entry)):
                break
            # Its upload finished since the lookup (a new file's also gave it its remote id):
            # open the stored file instead.
        if writable and flags & os.O_TRUNC:
            self.writeback.truncate(self._staged(handle, keep=0), 0)
        return self._handles.add(handle)

    def create(self, path: str, flags: int) -> int:
        parent, name = self._parent_of(path)
        self._check_folder_writable(parent)
        if self.meta.lookup(parent, name) is not None:
            if flags & os.O_EXCL:
                raise AlreadyExists(path)
            return self.open(path, flags)  # the kernel thought it absent (a stale negative entry)
        entry = self.writeback.create(parent.id, names.to_remote(name), time.time())
        handle = FileHandle(entry.item(), writable=True)
        self._attach(handle, entry)
        return self._handles.add(handle)

    def read_into(self, fh: int, into: memoryview, offset: int) -> int:
        """Fill ``into`` from ``offset``; the bytes read (short at the end of the file)."""
        handle = self._handles.get(fh, FileHandle)
        entry = handle.entry or self._adopt(handle)
        if entry is not None:
            return self.writeback.read_into(entry, offset, into)
        return self._fresh(handle, lambda item: self.reader.read_into(item, offset, into, handle.stream))

    def write(self, fh: int, data: bytes | memoryview, offset: int) -> int:
        handle = self._handles.get(fh, FileHandle)
        if not handle.writable:
            raise NotWritable("opened read-only")
        entry = self._staged(handle, keep=handle.item.size)
        return self.writeback.write(entry, offset, data)

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> None:
        handle = self._handles.find(fh)
        if isinstance(handle, FileHandle) and handle.writable:
            self.writeback.truncate(self._staged(handle, keep=length), length)
            return
        item = self._resolve(path or "/")
        if item.is_folder:
            raise IsAFolder(path or "/")
        self._check_writable(item)
        entry = self.writeback.entry_for(item.id) or self._fresh_item(
            item, lambda fresh: self.writeback.stage(fresh, length)
        )
        self.writeback.truncate(entry, length)

    def flush(self, fh: int) -> None:
        entry = self._handles.get(fh, FileHandle).entry
        if entry is not None:
            self.writeback.flush(entry)

    def fsync(self, fh: int) -> None:
        entry = self._handles.get(fh, FileHandle).entry
        if entry is not None and entry.dirty:
            self.writeback.sync(entry)

    def release(self, fh: int) -> None:
        handle = self._handles.pop(fh, FileHandle)
        if handle.entry is not None:
            self.writeback.release(handle.entry, writer=handle.writable)

    def utimens(self, path: str | None, times: tuple[int, int] | None, fh: int | None = None) -> None:
        handle = self._handles.find(fh)
        mtime = time.time() if times is None else times[1] / 1e9
        if isinstance(handle, FileHandle) and handle.entry is not None:
            entry: Entry | None = handle.entry
        else:
            item = self._resolve(path or "/")
            if item.is_folder:
                # iCloud keeps no settable folder times; remember them for this mount, so that
                # `rsync -a` and `cp -p` see the times they set and a second run changes nothing.
                with self._times_lock:
                    self._folder_times[item.id] = mtime
                return
            entry = self.writeback.entry_for(item.id)
            if entry is None and int(item.mtime) != int(mtime) and item.kind is ItemKind.FILE:
                # A clean file: iCloud sets mtimes only by upload, so upload it again.
                self._check_writable(item)
                entry = self._fresh_item(item, lambda fresh: self.writeback.stage(fresh, keep=fresh.size))
        if entry is not None:
            self.writeback.set_mtime(entry, mtime)

    def ignore_mode_change(self, path: str | None) -> None:
        """chmod/chown: accepted and ignored (iCloud stores no modes or owners)."""
        if path is not None:
            self._resolve(path)

    # -- namespace ----------------------------------------------------------------------------

    def mkdir(self, path: str) -> None:
        parent, name = self._parent_of(path)
        self._check_folder_writable(parent)
        if self.meta.lookup(parent, name) is not None:
            raise AlreadyExists(path)
        folder = self._drive.mkdir(parent, names.to_remote(name))
        self.meta.created_folder(parent.id, folder)

    def unlink(self, path: str) -> None:
        parent, item = self._parent_and_item(path)
        if item.is_folder:
            raise IsAFolder(path)
        self._check_folder_writable(parent)
        self.writeback.settle()
        self._delete_file(item)
        self.meta.remove(parent.id, item)

    def rmdir(self, path: str) -> None:
        parent, item = self._parent_and_item(path)
        if not item.is_folder:
            raise NotAFolder(path)
        self._check_movable(item)
        self._check_folder_writable(parent)
        self._check_empty(item)
        self._remote(self._drive.trash, item)
        self.meta.remove(parent.id, item)
        self.meta.forget(item.id)

    def rename(self, old: str, new: str, flags: int = 0) -> None:
        if flags & _RENAME_EXCHANGE:
            raise InvalidRequest("exchanging names is not supported")
        src_parent, src = self._parent_and_item(old)
        dst_parent, dst_name = self._parent_of(new)
        self._check_movable(src)
        self._check_folder_writable(src_parent)
        self._check_folder_writable(dst_parent)
        target = self.meta.lookup(dst_parent, dst_name)
        if target is not None and target.id == src.id:
            target = None  # a change of case only
        if target is not None:
            if flags & _RENAME_NOREPLACE:
                raise AlreadyExists(new)
            if target.is_folder != src.is_folder:
                raise (IsAFolder if target.is_folder else NotAFolder)(new)
            if target.is_folder:
                self._check_empty(target)
        remote_name = names.to_remote(dst_name)
        self.writeback.settle()
        entry = self.writeback.entry_for(src.id)
        with entry.remote_lock if entry is not None else contextlib.nullcontext():
            if entry is not None and entry.base is None:
                self._rename_local(entry, dst_parent, remote_name, target)
            else:
                moved = self._rename_remote(src, src_parent, dst_parent, remote_name, target)
                if entry is not None:
                    self.writeback.relocate(entry, dst_parent.id, moved.name, moved)
                self.meta.remove(src_parent.id, src)
                self.meta.put(dst_parent.id, moved)

    def link(self) -> None:
        raise Unsupported("hard links are not supported by iCloud Drive")

    def symlink(self) -> None:
        raise Unsupported("symbolic links are not supported by iCloud Drive")

    def mknod(self) -> None:
        raise Unsupported("only regular files and folders can be stored")

    def readlink(self, path: str) -> str:
        self._resolve(path)
        raise InvalidRequest(f"{path} is not a symbolic link")

    # -- control plane ------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return {
            "metadata": self.meta.stats(),
            "content": self.content.stats(),
            "uploads": self.writeback.stats(),
            "open_handles": len(self._handles),
        }

    def refresh(self, path: str = "/", recursive: bool = False) -> int:
        """Fetch listings again (the whole subtree if ``recursive``); returns folders fetched."""
        item = self._resolve(path)
        if not item.is_folder:
            fresh = self._drive.stat(item.id)
            self.meta.put(fresh.parent_id or "", fresh)
            return 0
        count, level = 0, [item.id]
        while level:
            batch, level = level[:64], level[64:]
            subfolders = self.meta.refresh(batch)
            count += len(batch)
            if recursive:
                level.extend(f.id for f in subfolders)
        return count

    def uploads(self) -> list[dict[str, Any]]:
        """Pending uploads with their path (as far as known), state, attempts and last error."""
        pending = self.writeback.entries()
        for upload in pending:
            folder = self.meta.path_of(upload.pop("parent_id"), self.top.id)
            name = names.to_local(upload["name"])
            upload["path"] = f"{folder.rstrip('/')}/{name}" if folder is not None else name
        return pending

    def retry_uploads(self) -> int:
        """Retry failed uploads now rather than after their backoff; returns how many."""
        return self.writeback.retry_failed()

    def pin(self, path: str, keep: bool = True) -> tuple[int, int]:
        """Keep the files under ``path`` in the content cache for offline use (``keep=False``:
        stop keeping them); returns (files, bytes). Reading them is what fills the cache."""
        item = self._resolve(path)
        files = [] if item.is_folder else [item]
        folders = [item] if item.is_folder else []
        while folders:
            for child in self.meta.children(folders.pop()):
                (folders if child.is_folder else files).append(child)
        self.content.pin({f.docwsid for f in files}, keep=keep)
        return len(files), sum(f.size for f in files)

    def evict(self, path: str | None = "/") -> int:
        """Drop cached content under ``path`` (all with None; never pending writes); bytes freed."""
        if path is None:
            return self.content.clear()
        item = self._resolve(path)
        if item.is_folder:
            folders = [item.id, *(f.id for f in self.meta.known_folders(item.id))]
            files = self.meta.known_files(folders)
            for folder_id in folders:
                self.meta.invalidate(folder_id)
        else:
            files = [item]
        return self.content.evict({f.docwsid for f in files})

    # -- internals: resolution ----------------------------------------------------------------

    @property
    def top(self) -> Item:
        if self._top is None:
            raise RuntimeError("Filesystem.start() was not called")
        return self._top

    def _resolve(self, path: str) -> Item:
        item = self.top
        for part in _parts(path):
            if not item.is_folder:
                raise NotAFolder(path)
            child = self._lookup(item, part)
            if child is None:
                raise NotFound(path)
            item = child
        return item

    def _parent_of(self, path: str) -> tuple[Item, str]:
        parts = _parts(path)
        if not parts:
            raise InvalidRequest("the mount's own folder has no parent here")
        if len(parts[-1].encode()) > NAME_MAX:
            raise NameTooLong(path)
        parent = self._resolve("/".join(parts[:-1]))
        if not parent.is_folder:
            raise NotAFolder(path)
        return parent, parts[-1]

    def _parent_and_item(self, path: str) -> tuple[Item, Item]:
        parent, name = self._parent_of(path)
        item = self._lookup(parent, name)
        if item is None:
            raise NotFound(path)
        return parent, item

    def _lookup(self, folder: Item, name: str) -> Item | None:
        for _ in range(_RACES):
            found = self.meta.lookup(folder, name)
            if found is None or not is_local(found) or self.writeback.entry_for(found.id):
                break
            # A new file whose upload is giving it its remote id: the name is about to show
            # the stored file, and acting on the placeholder would make a second file.
            time.sleep(0.001)
        if found is None and self._whole_drive and folder.id == self.top.id:
            key = names.key(name)
            found = next((lib for lib in self._app_libraries() if names.key(lib.name) == key), None)
        return found

    def _children(self, folder: Item) -> list[Item]:
        children = self.meta.children(folder)
        if self._whole_drive and folder.id == self.top.id:
            taken = {names.key(c.name) for c in children}
            children += [lib for lib in self._app_libraries() if names.key(lib.name) not in taken]
        return children

    def _app_libraries(self) -> list[Item]:
        fetched, libraries = self._libraries
        if time.monotonic() - fetched > self.meta.ttl:
            try:
                libraries = self._drive.app_libraries()
            except DriveError as error:
                log.info("app libraries unavailable, using the last known: %s", error)
            self._libraries = (time.monotonic(), libraries)
        return libraries

    def _current(self, item: Item) -> Item:
        """The item as the mount shows it: local size and mtime while a staged copy exists."""
        entry = self.writeback.entry_for(item.id)
        return entry.item() if entry is not None else item

    def _attrs(self, item: Item) -> dict[str, Any]:
        if item.is_folder:
            mode = stat.S_IFDIR | (0o777 & ~self._umask)
        else:
            mode = stat.S_IFREG | (0o666 & ~self._umask)
            if item.kind is ItemKind.PACKAGE or self.read_only:
                mode &= ~0o222
        mtime = self._folder_times.get(item.id, item.mtime) if item.is_folder else item.mtime
        stamp = int(mtime * 1e9)
        return {
            "st_mode": mode,
            "st_nlink": 2 if item.is_folder else 1,
            "st_size": item.size,
            "st_blocks": (item.size + 511) // 512,
            "st_blksize": _BLKSIZE,
            "st_mtime": stamp,
            "st_ctime": stamp,
            "st_atime": stamp,
            "st_uid": self._uid,
            "st_gid": self._gid,
        }

    # -- internals: writing -------------------------------------------------------------------

    def _check_writable(self, item: Item) -> None:
        if self.read_only:
            raise ReadOnly(item.name)
        if item.kind is ItemKind.PACKAGE:
            raise NotWritable(f"{item.name} is a package (read-only here)")

    def _check_folder_writable(self, folder: Item) -> None:
        if self.read_only:
            raise ReadOnly(folder.name)

    def _check_movable(self, item: Item) -> None:
        if item.kind is ItemKind.APP_LIBRARY or item.id == self.top.id:
            raise Unsupported(f"{item.name or '/'} cannot be moved or removed")

    def _check_empty(self, folder: Item) -> None:
        """Refuse unless empty, by a listing fresh enough to trust a miss."""
        if self.meta.children(folder, max_age=self.meta.negative_ttl):
            raise FolderNotEmpty(folder.name)

    def _attach(self, handle: FileHandle, entry: Entry) -> bool:
        """Use ``entry`` for ``handle``; False if the entry was retired in the meantime."""
        if not self.writeback.attach(entry, writer=handle.writable):
            return False
        handle.entry = entry
        return True

    def _adopt(self, handle: FileHandle) -> Entry | None:
        """Start reading a staged copy that another handle created after this one opened."""
        with handle.lock:
            if handle.entry is None:
                entry = self.writeback.entry_for(handle.item.id)
                if entry is not None:
                    self._attach(handle, entry)
            return handle.entry

    def _staged(self, handle: FileHandle, keep: int) -> Entry:
        """The handle's staged copy, made on first need with ``keep`` bytes of the old content."""
        with handle.lock:
            if handle.entry is not None:
                return handle.entry
            while True:  # a staged copy retired between stage() and attach: stage again
                entry = self._fresh(handle, lambda item: self.writeback.stage(item, keep))
                if self._attach(handle, entry):
                    return entry

    def _fresh(self, handle: FileHandle, action: Callable[[Item], _T]) -> _T:
        """Run ``action`` on the handle's item; if that version went stale, once more on a fresh one."""
        try:
            return action(handle.item)
        except Conflict:
            handle.item = self._restat(handle.item)
            return action(handle.item)

    def _fresh_item(self, item: Item, action: Callable[[Item], _T]) -> _T:
        try:
            return action(item)
        except Conflict:
            return action(self._restat(item))

    def _restat(self, item: Item) -> Item:
        fresh = self._drive.stat(item.id)
        self.meta.put(fresh.parent_id or "", fresh)
        return fresh

    def _remote(self, action: Callable[..., _T], item: Item, *args: Any) -> _T:
        """A drive call on ``item``; on a stale etag, once more with the item as it is now."""
        try:
            return action(item, *args)
        except Conflict:
            return action(self._drive.stat(item.id), *args)

    def _delete_file(self, item: Item) -> None:
        """Send a file to Recently Deleted (if it exists remotely) and void pending uploads."""
        entry = self.writeback.entry_for(item.id)
        with entry.remote_lock if entry is not None else contextlib.nullcontext():
            remote = entry.base if entry is not None else item
            if remote is not None and not is_local(remote):
                with contextlib.suppress(NotFound):
                    self._remote(self._drive.trash, remote)
            if entry is not None:
                self.writeback.discard(entry)
            else:
                self.writeback.deleted(item.id)

    def _rename_local(self, entry: Entry, dst_parent: Item, name: str, target: Item | None) -> None:
        """Rename a file that exists only here (hold its ``remote_lock``)."""
        base = None
        if target is not None:
            target_entry = self.writeback.entry_for(target.id)
            if target_entry is not None:
                with target_entry.remote_lock:
                    base = target_entry.base
                    self.writeback.discard(target_entry)
            else:
                base = target
            if base is not None:  # becomes a replace of the target: it is never absent
                name = base.name
        self.writeback.relocate(entry, dst_parent.id, name, base)

    def _rename_remote(
        self, src: Item, src_parent: Item, dst_parent: Item, name: str, target: Item | None
    ) -> Item:
        """Move a remote item; an existing target is set aside first and trashed last."""
        entry = self.writeback.entry_for(src.id)
        source = entry.base if entry is not None and entry.base is not None else src
        if target is None:
            return self._move(source, src_parent, dst_parent, name)
        target_entry = self.writeback.entry_for(target.id)
        if target_entry is not None and target_entry.base is None:  # only here: just drop it
            self._delete_file(target)
            self.meta.remove(dst_parent.id, target)
            return self._move(source, src_parent, dst_parent, name)
        with target_entry.remote_lock if target_entry else contextlib.nullcontext():
            remote_target = target_entry.base if target_entry and target_entry.base else target
            aside = self._remote(
                self._drive.rename, remote_target, f".{target.name}.icloudfs-{uuid.uuid4().hex[:8]}"
            )
            try:
                moved = self._move(source, src_parent, dst_parent, name)
            except BaseException:
                try:
                    self._drive.rename(aside, target.name)
                except DriveError as error:
                    log.error("could not restore %s (left as %s): %s", target.name, aside.name, error)
                raise
            self.meta.remove(dst_parent.id, target)
            if target_entry is not None:
                self.writeback.discard(target_entry)
            try:
                self._drive.trash(aside)
            except DriveError as error:
                log.warning("replaced %s, but its old version %s stays: %s", name, aside.name, error)
        return moved

    def _move(self, item: Item, src_parent: Item, dst_parent: Item, name: str) -> Item:
        """Rename and/or move, in the order that cannot collide with a name on the way."""
        try:
            if src_parent.id == dst_parent.id:
                return item if item.name == name else self._remote(self._drive.rename, item, name)
            if item.name == name:
                return self._remote(self._drive.move, item, dst_parent)
            if self.meta.lookup(dst_parent, names.to_local(item.name)) is None:
                moved = self._remote(self._drive.move, item, dst_parent)
                return self._drive.rename(moved, name)
            if self.meta.lookup(src_parent, names.to_local(name)) is None:
                renamed = self._remote(self._drive.rename, item, name)
                return self._drive.move(renamed, dst_parent)
            hidden = self._remote(self._drive.rename, item, f".icloudfs-{uuid.uuid4().hex}")
            return self._drive.rename(self._drive.move(hidden, dst_parent), name)
        except BaseException:
            self.meta.invalidate(src_parent.id)
            self.meta.invalidate(dst_parent.id)
            raise

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


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p]
