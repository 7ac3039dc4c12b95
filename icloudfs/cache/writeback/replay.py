"""Replaying namespace changes made while iCloud could not take them: in order, keeping both sides.

One thread makes the waiting changes remotely, oldest first, once iCloud answers again (after
a failure it tries again after 1 s, doubling to 30 s, or at once when asked: ``catch_up`` for
``fsync`` and unmount). Each is made from where the item is now, so a change cut short by a
crash or a lost answer is finished, not repeated. Meanwhile iCloud may have changed too; the
replay never drops either side:

- **mkdir** of a name taken meanwhile by a folder: that folder is used (the two merge); by a
  file: the folder is made as ``name (conflict …)``;
- **rename/move** of an item deleted or moved elsewhere meanwhile: it stays as iCloud has it
  (logged); to a name taken meanwhile, or over an item changed meanwhile: it goes beside it,
  as ``name (conflict …)``, and the other item stays;
- **delete** of a file changed meanwhile, or of a folder that has gained entries meanwhile:
  it is kept (logged), and shows again;
- a change iCloud refuses for good (its folder was deleted there meanwhile) is logged as an
  error, shown in ``status``, and dropped, so it cannot hold back the others; the folders it
  touched show what iCloud has.

"Changed" is judged by content: a file's size and modification time, a folder's entries. Not
by etag: every rename changes that, this mount's own too (a replace cut short by the outage
may have renamed its target aside and back).

After each change, the item as iCloud answered replaces what the change had shown (the
listings, the write-back node of a file, and the later changes of the same item, rebased; a
mkdir's placeholder id becomes the real one everywhere). Once none waits, uploads go on.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Protocol

from icloudfs.cache.listing import name_key
from icloudfs.cache.metadata import MetadataCache
from icloudfs.cache.writeback.changelog import Change, ChangeKind, ChangeLog
from icloudfs.cache.writeback.changes import LATER, Changes
from icloudfs.cache.writeback.conflicts import conflict_name
from icloudfs.cache.writeback.health import Troubles, describe
from icloudfs.cache.writeback.remote import RemoteNamespace
from icloudfs.drive import names
from icloudfs.drive.protocol import Drive
from icloudfs.drive.types import Item
from icloudfs.errors import AlreadyExists, DriveError, NotFound

log = logging.getLogger(__name__)

RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0
_TRASH_SUFFIX = "::TRASH_ROOT"


class Fixups(Protocol):
    """What the write-back does when a change has been made."""

    def folder_made(self, placeholder_id: str, real_id: str) -> None:
        """A mkdir's placeholder id is the real one now, in the nodes of files in the folder."""

    def item_moved(self, shown: Item, stored: Item, follow: bool) -> None:
        """A stored file's node learns where its version is now (``follow``: and shows it
        there: iCloud gave it another name than the change had shown)."""

    def change_refused(self, text: str) -> None:
        """iCloud refused a change for good: shown as the last error."""

    def changes_made(self) -> None:
        """No change waits any more: uploads go on."""


class Replayer:
    """The thread that replays waiting changes. See the module note."""

    def __init__(
        self,
        drive: Drive,
        meta: MetadataCache,
        changelog: ChangeLog,
        changes: Changes,
        remote: RemoteNamespace,
        troubles: Troubles,
        fixups: Fixups,
    ) -> None:
        self._drive, self._meta, self._log = drive, meta, changelog
        self._remote, self._troubles, self._fixups = remote, troubles, fixups
        self._replaying = threading.Lock()  # one change at a time, thread or ``catch_up``
        self._wake = threading.Condition()
        self._due = 0.0  # monotonic time of the next try
        self._failures = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.waiting = ""  # why changes wait (iCloud unreachable...), for ``status``
        changes.added = self.wake

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="icloudfs-replay", daemon=True)
        self._thread.start()

    def close(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join()

    def wake(self, *, now: bool = False) -> None:
        """A change was added (or, ``now``, someone waits for them: try at once, not after the
        pause that follows a failure)."""
        with self._wake:
            if now:
                self._due = 0.0
            self._wake.notify_all()

    def catch_up(self) -> None:
        """Make every waiting change now, in this thread; raises what keeps one waiting."""
        while (change := self._log.first()) is not None:
            self._replay_first(change)

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping:
                    wait = self._due - time.monotonic()
                    if len(self._log) and wait <= 0:
                        break
                    self._wake.wait(wait if len(self._log) else None)
                if self._stopping:
                    return
            change = self._log.first()
            if change is None:
                continue
            try:
                self._replay_first(change)
                self._failures = 0
            except Exception as error:  # never ends the thread: said, and tried again
                if isinstance(error, LATER):
                    self.waiting = describe(error)
                else:  # a bug, or the cache disk
                    self._troubles.report("replaying folder changes", error)
                self._failures += 1
                pause = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (self._failures - 1))
                with self._wake:
                    self._due = time.monotonic() + pause

    def _replay_first(self, change: Change) -> None:
        with self._replaying:
            if self._log.first() is not change:
                return  # made meanwhile by ``catch_up``
            try:
                before, after = self._replay(change)
            except LATER:
                raise
            except DriveError as error:  # refused for good: it must not hold back the rest
                self._refused(change, error)
                before = after = None
            self._log.made(change, before, after)
            touched = change.folders
            if after is not None:  # where it is now, and (a folder) what it holds
                touched |= {after.parent_id or "", after.id} if after.is_folder else {after.parent_id or ""}
            self._meta.reapply(touched)
        self._troubles.report("replaying folder changes", None)
        if self.waiting:
            log.info("iCloud takes changes again; %d more to make", len(self._log))
            self.waiting = ""
        if not len(self._log):
            self._fixups.changes_made()

    def _refused(self, change: Change, error: DriveError) -> None:
        """iCloud refused a change (its folder was deleted there, say): it is dropped, and the
        folders it touched show what iCloud has. No bytes go with it: a file's bytes are its
        upload's, which keeps them (and says so) until it is stored."""
        text = f"iCloud refused the {change.describe()} made here while it was unreachable: {error}"
        log.error("%s; the folders show what iCloud has", text)
        self._fixups.change_refused(text)
        for folder in change.folders:
            self._meta.invalidate(folder)

    # -- one change ---------------------------------------------------------------------------

    def _replay(self, change: Change) -> tuple[Item | None, Item | None]:
        """Make the change remotely; returns the item as the change showed it and as iCloud has
        it now (None: gone), for the later changes to be rebased on."""
        if change.kind is ChangeKind.MKDIR:
            return change.item, self._mkdir(change.item)
        if change.kind is ChangeKind.MOVE:
            return change.result, self._move(change)
        self._trash(change.item)
        return None, None

    def _mkdir(self, placeholder: Item) -> Item:
        parent = self._meta.folder_item(placeholder.parent_id or "")
        merged = False
        try:
            made = self._remote.mkdir(parent, placeholder.name)
        except AlreadyExists:
            existing = self._child(parent, placeholder.name)
            if existing is not None and existing.is_folder:
                log.info("folder %s made here while offline is also in iCloud: merged", placeholder.name)
                made, merged = existing, True
            else:
                made = self._remote.mkdir(parent, conflict_name(placeholder.name, datetime.now()))
                log.warning(
                    "%s was taken in iCloud meanwhile: the folder made here is %s",
                    placeholder.name,
                    made.name,
                )
        self._meta.folder_made(placeholder, made, merged=merged)
        self._fixups.folder_made(placeholder.id, made.id)
        return made

    def _move(self, change: Change) -> Item | None:
        shown = change.result
        assert shown is not None
        target_folder = self._meta.folder_item(change.parent_id)
        current = self._locate(change.item, target_folder.id)
        if current is None:
            log.warning(
                "%s was moved or deleted in iCloud before the %s made here could be: it stays so",
                change.item.name,
                change.describe(),
            )
            self._meta.remove(change.parent_id, shown)
            self._meta.invalidate(change.parent_id)
            return None
        name = change.name
        if current.parent_id == target_folder.id and current.name == name:
            made = current  # made already, by an attempt cut short
        else:
            target, name = self._target(change, name)
            try:
                made = self._moved(current, target_folder, name, target, change)
            except AlreadyExists:  # the name was taken in iCloud meanwhile
                name = conflict_name(change.name, datetime.now())
                current = self._locate(change.item, target_folder.id) or current  # it may be halfway
                made = self._moved(current, target_folder, name, None, change)
            if name != change.name:
                log.warning("%s was taken in iCloud meanwhile: %s is now %s", change.name, current.name, name)
        self._meta.put(made.parent_id or "", made)
        for before in (shown, current):  # where the change showed it, and where it was
            if before.parent_id != made.parent_id or name_key(before) != name_key(made):
                self._meta.remove(before.parent_id or "", before)
        self._fixups.item_moved(shown, made, name != change.name)
        return made

    def _moved(self, current: Item, folder: Item, name: str, target: Item | None, change: Change) -> Item:
        source = self._meta.folder_item(current.parent_id or "")
        return self._remote.move(current, source, folder, name, target, change.describe())

    def _target(self, change: Change, name: str) -> tuple[Item | None, str]:
        """The item a move replaces, if it is still as it was shown; otherwise the move goes
        beside it, under a conflict name."""
        if change.replacing is None:
            return None, name
        now = self._locate(change.replacing)
        if now is None:
            return None, name
        if self._unchanged(now, change.replacing):
            return now, name
        log.warning("%s changed in iCloud after it was replaced here: both are kept", now.name)
        return None, conflict_name(name, datetime.now())

    def _trash(self, item: Item) -> None:
        current = self._locate(item)
        if current is None:
            return  # gone in iCloud too
        if not self._unchanged(current, item):
            log.warning("%s changed in iCloud after it was deleted here: it is kept", current.name)
            self._meta.invalidate(current.parent_id or "")
            return
        self._remote.trash(current, item.name)
        self._meta.remove(current.parent_id or "", current)

    def _unchanged(self, now: Item, shown: Item) -> bool:
        """Whether iCloud's item still holds what was shown here: a file its size and time (a
        rename, ours or not, changes its etag, not its content), a folder nothing."""
        if now.is_folder:
            return not self._drive.list_folders([now.id])[0].children
        return (now.size, now.mtime) == (shown.size, shown.mtime)

    def _locate(self, item: Item, *elsewhere: str) -> Item | None:
        """The item as iCloud has it now, found where it was or in the folders ``elsewhere`` (a
        folder: anywhere but the trash); None if it is gone from there."""
        listings = []
        for folder_id in dict.fromkeys([item.parent_id or "", *elsewhere]):
            try:
                listings += self._drive.list_folders([folder_id])
            except NotFound:
                continue
        found = next((c for one in listings for c in one.children if c.id == item.id), None)
        if found is None and item.is_folder:
            try:
                found = self._drive.stat(item.id)
            except NotFound:
                return None
            if (found.parent_id or "").endswith(_TRASH_SUFFIX):
                return None
        return found

    def _child(self, parent: Item, name: str) -> Item | None:
        key = names.key(name)
        children = self._drive.list_folders([parent.id])[0].children
        return next((c for c in children if names.key(c.name) == key), None)
