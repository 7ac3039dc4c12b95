"""File I/O: open, create, read, write, truncate, close, fsync and times, on write-back nodes.

Every open file is a node (``WriteBack.open``), so a handle follows its file through renames
and keeps working after an unlink. Reads come from the node's staged copy when it has one
(being written, or written and not yet uploaded, by any handle), else from the block cache at
the stored version the handle opened; a version that turned out stale (``Conflict``) is looked
up again once. The first write to a stored file copies into staging only what is kept
(``O_TRUNC`` and ``truncate`` skip the download). A call by path alone (``truncate(1)``,
``touch``) opens the node for itself and closes it again, so it is journaled and queued like
any close.

mtime can be set only by an upload: ``utimens`` on a file with pending bytes sets the mtime it
will be uploaded with; on a clean file with another mtime it stages the file and uploads it
again (``touch`` works; rsync's late utimens after an early upload keeps its mtime).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from icloudfs.cache.metadata import MetadataCache
from icloudfs.cache.reader import Reader
from icloudfs.cache.writeback import FileNode, Found, WriteBack
from icloudfs.drive import names
from icloudfs.drive.protocol import Drive
from icloudfs.drive.types import Item, ItemKind
from icloudfs.errors import AlreadyExists, Conflict, NotFound
from icloudfs.fs.attrs import Attributes
from icloudfs.fs.errors import IsAFolder, NotWritable, ReadOnly
from icloudfs.fs.handles import FileHandle, HandleTable
from icloudfs.fs.tree import Tree
from icloudfs.fs.unlinked import Unlinked

_T = TypeVar("_T")
_RETIRED_TRIES = 10  # a node retired between lookup and open is looked up again


class Files:
    """The file calls of the filesystem. See the module note."""

    def __init__(
        self,
        tree: Tree,
        attrs: Attributes,
        writeback: WriteBack,
        reader: Reader,
        meta: MetadataCache,
        drive: Drive,
        handles: HandleTable,
        unlinked: Unlinked,
    ) -> None:
        self._tree, self._attrs, self._writeback = tree, attrs, writeback
        self._reader, self._meta, self._drive = reader, meta, drive
        self._handles, self._unlinked = handles, unlinked

    def getattr(self, fh: int | None) -> dict[str, Any] | None:
        """The attributes of an open file (None: not a file handle; ask by path)."""
        handle = self._handles.find(fh)
        return self._attrs.of(handle.node) if isinstance(handle, FileHandle) else None

    def open(self, path: str, flags: int) -> int:
        writable = flags & os.O_ACCMODE != os.O_RDONLY
        node = self._open_node(path, writable=writable)
        try:
            if writable and flags & os.O_TRUNC:
                self._writeback.stage(node, keep=0)
                self._writeback.truncate(node, 0)
        except BaseException:
            self._writeback.release(node, writer=writable)
            raise
        return self._handles.add(FileHandle(node, writable, node.remote))

    def create(self, path: str, flags: int) -> int:
        parent, name = self._tree.parent_of(path)
        self._check_folder_writable(parent)
        if self._tree.child(parent, name) is not None:
            if flags & os.O_EXCL:
                raise AlreadyExists(path)
            return self.open(path, flags)  # the kernel thought it absent (a stale negative entry)
        self._unlinked.free(parent, name)
        node = self._writeback.create(parent.id, names.to_remote(name), time.time())
        self._attrs.changed(parent.id)
        return self._handles.add(FileHandle(node, writable=True, version=None))

    def read_into(self, fh: int, into: memoryview, offset: int) -> int:
        """Fill ``into`` from ``offset``; the bytes read (short at the end of the file)."""
        handle = self._handles.get(fh, FileHandle)
        got = self._writeback.read_into(handle.node, offset, into)
        if got is not None:
            return got
        return self._fresh(handle, lambda item: self._reader.read_into(item, offset, into, handle.stream))

    def write(self, fh: int, data: bytes | memoryview, offset: int) -> int:
        handle = self._handles.get(fh, FileHandle)
        if not handle.writable:
            raise NotWritable("opened read-only")
        self._staged(handle, keep=1 << 62)
        return self._writeback.write(handle.node, offset, data)

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> None:
        handle = self._handles.find(fh)
        if isinstance(handle, FileHandle) and handle.writable:
            self._staged(handle, keep=length)
            self._writeback.truncate(handle.node, length)
            return
        node = self._open_node(path or "/", writable=True)
        try:
            self._writeback.stage(node, keep=length)
            self._writeback.truncate(node, length)
        finally:
            self._writeback.release(node, writer=True)

    def flush(self, fh: int) -> None:
        self._writeback.flush(self._handles.get(fh, FileHandle).node)

    def fsync(self, fh: int) -> None:
        node = self._handles.get(fh, FileHandle).node
        if node.dirty:
            self._writeback.sync(node)

    def release(self, fh: int) -> None:
        handle = self._handles.pop(fh, FileHandle)
        self._writeback.release(handle.node, writer=handle.writable)

    def utimens(self, path: str | None, times: tuple[int, int] | None, fh: int | None = None) -> None:
        mtime = time.time() if times is None else times[1] / 1e9
        handle = self._handles.find(fh)
        if isinstance(handle, FileHandle):
            self._set_mtime(handle.node, mtime)
            return
        found = self._tree.resolve(path or "/")
        if isinstance(found, Item) and found.is_folder:
            self._attrs.set_folder_time(found.id, mtime)
            return
        node = self._open_node(path or "/", writable=False, found=found)
        try:
            self._set_mtime(node, mtime)
        finally:
            self._writeback.release(node, writer=False)

    # -- internals ----------------------------------------------------------------------------

    def _open_node(self, path: str, *, writable: bool, found: Found | None = None) -> FileNode:
        """The file's node with a handle counted on it (closed by ``release``)."""
        for _ in range(_RETIRED_TRIES):
            if found is None:
                found = self._tree.resolve(path)
            if isinstance(found, Item) and found.is_folder:
                raise IsAFolder(path)
            if writable:
                self._check_writable(found)
            node = self._writeback.open(found, writer=writable)
            if node is not None:
                return node
            found = None  # retired since the lookup: the name shows its stored version now
        raise NotFound(f"{path} kept changing while it was opened")

    def _staged(self, handle: FileHandle, keep: int) -> None:
        """Give the handle's node a staged copy, with ``keep`` bytes of its stored version."""
        self._writeback.stage(handle.node, keep)

    def _set_mtime(self, node: FileNode, mtime: float) -> None:
        if node.staged is None:
            stored = node.remote
            if stored is None or stored.kind is not ItemKind.FILE or int(stored.mtime) == int(mtime):
                return
            # a clean file: iCloud sets mtimes only by upload, so upload it again
            self._check_writable(node)
            self._writeback.stage(node, keep=stored.size)
        self._writeback.set_mtime(node, mtime)

    def _fresh(self, handle: FileHandle, action: Callable[[Item], _T]) -> _T:
        """Run ``action`` on the version the handle reads; if that went stale, once more on a
        fresh one."""
        with handle.lock:
            version = handle.version
        if version is None:  # a new file, unlinked before any write
            raise NotFound(f"{handle.node.name} has no content")
        try:
            return action(version)
        except Conflict:
            fresh = self._drive.stat(version.id)
            self._meta.put(fresh.parent_id or "", fresh)
            self._writeback.refreshed(handle.node, fresh)
            with handle.lock:
                handle.version = fresh
            return action(fresh)

    def _check_writable(self, found: Found) -> None:
        item = found.item() if isinstance(found, FileNode) else found
        if self._attrs.read_only:
            raise ReadOnly(item.name)
        if item.kind is ItemKind.PACKAGE:
            raise NotWritable(f"{item.name} is a package (read-only here)")

    def _check_folder_writable(self, folder: Item) -> None:
        if self._attrs.read_only:
            raise ReadOnly(folder.name)
