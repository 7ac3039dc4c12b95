"""Namespace changes as iCloud takes them: the requests of a mkdir, a rename or move, a delete.

iCloud renames in place and moves keeping the name, one request each, and refuses a taken name.
So a move to a new name in another folder is two requests, in the order that cannot collide
with a name on the way; and a move over an existing item sets that item aside first, moves the
source in, and only then sends the item set aside to Recently Deleted (on failure it is renamed
back): the target is never lost. A stale etag is retried once with the item as it is now. A file's
cached content follows it to its new etag (a rename changes the etag, not the content),
unless a stale etag showed that the file had changed elsewhere meanwhile.

Used both for a change made at once and for one replayed later (``replay.py``).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from icloudfs.cache.content import ContentCache
from icloudfs.cache.metadata import MetadataCache
from icloudfs.drive.protocol import Drive
from icloudfs.drive.types import Item
from icloudfs.errors import AlreadyExists, Conflict, DriveError, NotFound

log = logging.getLogger(__name__)

_T = TypeVar("_T")
ASIDE_MARK = ".icloudfs-"  # in the names of items set aside while something takes their name


class RemoteNamespace:
    """The namespace requests. See the module note."""

    def __init__(self, drive: Drive, meta: MetadataCache, content: ContentCache) -> None:
        self._drive, self._meta, self._content = drive, meta, content
        self._stale = threading.local()  # ``seen``: a call of this thread met a stale etag

    def mkdir(self, parent: Item, name: str) -> Item:
        return self._drive.mkdir(parent, name)

    def trash(self, item: Item, path: str) -> None:
        self._call(self._drive.trash, item, path)

    def rename(self, item: Item, name: str, path: str) -> Item:
        return self._call(self._drive.rename, item, path, name)

    def move(
        self, source: Item, src_parent: Item, dst_parent: Item, name: str, target: Item | None, path: str
    ) -> Item:
        """Move a stored item to ``name`` in ``dst_parent``; an existing stored ``target`` is set
        aside first and trashed last (and renamed back if the move fails)."""
        self._stale.seen = False
        if target is None:
            return self._kept(source, self._move(source, src_parent, dst_parent, name, path))
        aside = self._call(self._drive.rename, target, path, aside_name(target.name))
        try:
            moved = self._move(source, src_parent, dst_parent, name, path)
        except BaseException:
            try:
                self._drive.rename(aside, target.name)
            except DriveError as error:
                log.error("could not restore %s (left as %s): %s", target.name, aside.name, error)
            raise
        self._meta.remove(dst_parent.id, target)
        if target.is_folder:
            self._meta.forget(target.id)
        try:
            self._drive.trash(aside)
        except DriveError as error:
            log.warning("replaced %s, but its old version %s stays: %s", name, aside.name, error)
        return self._kept(source, moved)

    def _kept(self, before: Item, after: Item) -> Item:
        """``after`` (the moved file); its cached blocks follow it if its content is ours."""
        same = after.docwsid == before.docwsid and not self._stale.seen
        if same and not after.is_folder and after.etag != before.etag:
            self._content.retag(after.docwsid, before.etag, after.etag)
        return after

    def _move(self, item: Item, src_parent: Item, dst_parent: Item, name: str, path: str) -> Item:
        """Rename and/or move. Into another folder under a new name, the usual order is move,
        then rename; where iCloud says a name on the way is taken, the other order, or through
        a hidden name. iCloud's answer decides, not the listings here: while changes made
        offline are replayed, what this mount shows is ahead of what iCloud has."""
        try:
            if src_parent.id == dst_parent.id:
                return item if item.name == name else self._call(self._drive.rename, item, path, name)
            if item.name == name:
                return self._call(self._drive.move, item, path, dst_parent)
            moved = _unless_taken(lambda: self._call(self._drive.move, item, path, dst_parent))
            if moved is not None:
                return self._drive.rename(moved, name)
            renamed = _unless_taken(lambda: self._call(self._drive.rename, item, path, name))
            if renamed is not None:
                return self._drive.move(renamed, dst_parent)
            hidden = self._call(self._drive.rename, item, path, f"{ASIDE_MARK}{uuid.uuid4().hex}")
            return self._drive.rename(self._drive.move(hidden, dst_parent), name)
        except BaseException:
            self._meta.invalidate(src_parent.id)
            self._meta.invalidate(dst_parent.id)
            raise

    def _call(self, action: Callable[..., _T], item: Item, path: str, *args: Any) -> _T:
        """A drive call on ``item``; on a stale etag, once more with the item as it is now. A
        ``NotFound`` means it went elsewhere meanwhile: a warning, then the error."""
        try:
            try:
                return action(item, *args)
            except Conflict:
                self._stale.seen = True
                return action(self._drive.stat(item.id), *args)
        except NotFound as error:
            log.warning("%s: %s is no longer in iCloud where it was listed (%s)", path, item.name, error)
            self._meta.invalidate(item.parent_id or "")
            raise


def aside_name(name: str, why: str = "") -> str:
    """The name an item takes while it is set aside: hidden, and marked as ours."""
    return f".{name}{ASIDE_MARK}{why}{uuid.uuid4().hex[:8]}"


def _unless_taken(call: Callable[[], Item]) -> Item | None:
    """The call's item, or None where iCloud says the name it needs is taken."""
    try:
        return call()
    except AlreadyExists:
        return None
