"""Namespace calls: mkdir, unlink, rmdir and rename.

Files go through their write-back nodes, quiesced for the call (``WriteBack.quiesce``): an upload
of the file not past its commit point is cancelled and queued again afterwards, one past it is
waited for (a few requests, never a transfer). Then:

- a file not stored yet is renamed or deleted here only: no request. Renamed over an existing
  file, it takes over that file's stored version, and its upload replaces it (the editor and
  rsync pattern: no request now, one atomic replace later);
- a stored file or a folder is renamed, moved or sent to the trash remotely at once (over an
  existing target, the target is set aside first and trashed last: ``writeback/remote.py``);
  when iCloud cannot take it now, the change is journaled, shown here at once and made later
  (``writeback/changes.py``), and the call succeeds.

Deletions go to the drive's Recently Deleted. A file unlinked while open (libfuse renames it to
``.fuse_hidden…`` first) is gone from its folder at once, and its stored version stays for its
handles until the last one closes (``unlinked.py``).

Namespace calls on one folder are serialised by the kernel (it holds the folder's inode lock),
so they need no lock of their own here. A remote item that is not found where the listing said
(deleted elsewhere meanwhile) is logged as a warning with the path, never a silent ENOENT.
"""

from __future__ import annotations

import contextlib
import logging

from icloudfs.cache.metadata import MetadataCache
from icloudfs.cache.writeback import Found, WriteBack
from icloudfs.drive import names
from icloudfs.drive.types import Item, ItemKind
from icloudfs.errors import AlreadyExists, NotFound
from icloudfs.fs.attrs import Attributes
from icloudfs.fs.errors import FolderNotEmpty, InvalidRequest, IsAFolder, NotAFolder, ReadOnly, Unsupported
from icloudfs.fs.tree import Tree, is_hidden
from icloudfs.fs.unlinked import Unlinked

log = logging.getLogger(__name__)

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2


class Namespace:
    """The namespace calls of the filesystem. See the module note."""

    def __init__(
        self,
        tree: Tree,
        attrs: Attributes,
        writeback: WriteBack,
        meta: MetadataCache,
        unlinked: Unlinked,
    ) -> None:
        self._tree, self._attrs, self._writeback = tree, attrs, writeback
        self._meta, self._unlinked = meta, unlinked
        self._changes = writeback.changes

    def mkdir(self, path: str) -> None:
        parent, name = self._tree.parent_of(path)
        self._check_folder_writable(parent)
        if self._tree.child(parent, name) is not None:
            raise AlreadyExists(path)
        self._unlinked.free(parent, name)
        folder = self._changes.mkdir(parent, names.to_remote(name))
        self._meta.created_folder(parent.id, folder)
        self._attrs.changed(parent.id)

    def unlink(self, path: str) -> None:
        if is_hidden(path):  # the last handle of a file unlinked while open has closed
            unlinked = self._tree.hidden(path)
            self._tree.unhide(path)
            self._unlinked.trash(unlinked, path)
            return
        parent, found = self._file_to_delete(path)
        with self._writeback.quiesce(found, why="deleted") as (node,):
            assert node is not None
            stored = node.remote
            if stored is not None:
                with contextlib.suppress(NotFound):  # gone already (logged): gone is what was asked
                    self._changes.trash(stored, path)
                self._meta.remove(parent.id, stored)
            self._writeback.unlink(node)
        self._attrs.changed(parent.id)

    def rmdir(self, path: str) -> None:
        parent, found = self._tree.parent_and_child(path)
        if not isinstance(found, Item) or not found.is_folder:
            raise NotAFolder(path)
        self._check_movable(found)
        self._check_folder_writable(parent)
        self._check_empty(found)
        self._changes.trash(found, path)
        self._meta.remove(parent.id, found)
        self._meta.forget(found.id)
        for unlinked in self._tree.forget_hidden_in(found.id):
            # in the trash with its folder; and libfuse, unable to name it now, will not
            # unlink its hidden name (``fstat`` of it gives ESTALE: libfuse cannot name it)
            self._writeback.trashed(unlinked)
        self._attrs.changed(parent.id)

    def rename(self, old: str, new: str, flags: int = 0) -> None:
        if flags & RENAME_EXCHANGE:
            raise InvalidRequest("exchanging names is not supported")
        if is_hidden(new):  # libfuse, unlinking (or renaming over) a file that is open
            self._unlink_open(old, new)
            return
        src_parent, src = self._tree.parent_and_child(old)
        dst_parent, dst_name = self._tree.parent_of(new)
        self._check_movable(src)
        self._check_folder_writable(src_parent)
        self._check_folder_writable(dst_parent)
        target = self._tree.child(dst_parent, dst_name)
        if target is src or (isinstance(target, Item) and isinstance(src, Item) and target.id == src.id):
            target = None  # a change of case only
        src_is_folder = isinstance(src, Item) and src.is_folder
        if target is not None:
            if flags & RENAME_NOREPLACE:
                raise AlreadyExists(new)
            target_is_folder = isinstance(target, Item) and target.is_folder
            if target_is_folder != src_is_folder:
                raise (IsAFolder if target_is_folder else NotAFolder)(new)
            if isinstance(target, Item) and target.is_folder:
                self._check_empty(target)
        else:
            self._unlinked.free(dst_parent, dst_name)
        remote_name = names.to_remote(dst_name)
        if isinstance(src, Item) and src.is_folder:
            assert target is None or isinstance(target, Item)
            moved = self._changes.move(src, src_parent, dst_parent, remote_name, target, new)
            self._meta.remove(src_parent.id, src)
            self._meta.put(dst_parent.id, moved)
        else:
            self._rename_file(src, src_parent, dst_parent, remote_name, target, new)
        self._attrs.changed(src_parent.id, dst_parent.id)

    # -- internals ----------------------------------------------------------------------------

    def _file_to_delete(self, path: str) -> tuple[Item, Found]:
        parent, found = self._tree.parent_and_child(path)
        if isinstance(found, Item) and found.is_folder:
            raise IsAFolder(path)
        self._check_folder_writable(parent)
        return parent, found

    def _unlink_open(self, old: str, hidden: str) -> None:
        parent, found = self._file_to_delete(old)
        with self._writeback.quiesce(found, why="deleted") as (node,):
            assert node is not None
            self._writeback.unlink(node, trash_on_close=True)
            self._tree.hide(hidden, node)
        self._attrs.changed(parent.id)

    def _rename_file(
        self, src: Found, src_parent: Item, dst_parent: Item, name: str, target: Found | None, path: str
    ) -> None:
        with self._writeback.quiesce(src, target, why="renamed") as (node, replaced):
            assert node is not None
            if node.remote is None:  # not stored yet: only here
                self._writeback.relocate(node, dst_parent.id, name, replaced)
                return
            before = node.remote
            stored_target = None if replaced is None else replaced.remote
            if replaced is not None and stored_target is None:
                self._writeback.unlink(replaced)  # the target exists only here: it just goes
            moved = self._changes.move(before, src_parent, dst_parent, name, stored_target, path)
            if replaced is not None and stored_target is not None:
                self._writeback.unlink(replaced)
            self._writeback.moved(node, moved)
            self._meta.remove(src_parent.id, before)
            self._meta.put(dst_parent.id, moved)

    def _check_folder_writable(self, folder: Item) -> None:
        if self._attrs.read_only:
            raise ReadOnly(folder.name)

    def _check_movable(self, found: Found) -> None:
        if isinstance(found, Item) and (found.kind is ItemKind.APP_LIBRARY or found.id == self._tree.top.id):
            raise Unsupported(f"{found.name or '/'} cannot be moved or removed")

    def _check_empty(self, folder: Item) -> None:
        """Refuse unless empty, by a listing fresh enough to trust a miss."""
        if self._tree.children(folder, max_age=self._meta.negative_ttl):
            raise FolderNotEmpty(folder.name)
