"""A namespace change (mkdir, rename or move, delete): made in iCloud now, or journaled for later.

A change is made remotely at once when iCloud takes it. When it cannot (unreachable, throttling,
or a session that needs the user: ``LATER``), the change is journaled instead (``changelog.py``),
shown here at once, and made by ``replay.py`` once iCloud answers again; the call succeeds.
While any change waits, later ones queue behind it, whatever the network does: made out of
order, a rename could reach iCloud before the mkdir of its folder.

What each call returns is the item as it is now: as iCloud answered, or as the change shows it
(a new folder has the placeholder id ``NEWFOLDER::…`` until iCloud has made it).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from icloudfs.cache.metadata import NEW_FOLDER_PREFIX, MetadataCache
from icloudfs.cache.writeback.changelog import Change, ChangeKind, ChangeLog
from icloudfs.cache.writeback.remote import RemoteNamespace, aside_name
from icloudfs.drive.types import Item, ItemKind
from icloudfs.errors import AuthError, Throttled, Unavailable

log = logging.getLogger(__name__)

LATER = (Unavailable, Throttled, AuthError)
"""Failures after which a change is journaled rather than refused: iCloud will take it later."""


class Changes:
    """Namespace changes, now or later. See the module note."""

    def __init__(self, remote: RemoteNamespace, changelog: ChangeLog, meta: MetadataCache) -> None:
        self._remote, self._log, self._meta = remote, changelog, meta
        self.added: Callable[[], None] = lambda: None  # the replayer, told a change waits

    def waiting(self) -> int:
        return len(self._log)

    def mkdir(self, parent: Item, name: str) -> Item:
        if not self._log:
            try:
                return self._remote.mkdir(parent, name)
            except LATER as error:
                self._deferring(f"mkdir of {name}", error)
        placeholder = Item(
            f"{NEW_FOLDER_PREFIX}{uuid.uuid4().hex}",
            parent.id,
            name,
            ItemKind.FOLDER,
            0,
            time.time(),
            "",
            parent.zone,
            "",
        )
        self._later(Change(ChangeKind.MKDIR, placeholder))
        return placeholder

    def move(
        self, source: Item, src_parent: Item, dst_parent: Item, name: str, target: Item | None, path: str
    ) -> Item:
        """Move a stored item to ``name`` in ``dst_parent``, over ``target`` (a stored item that
        goes to Recently Deleted once the source has taken its name)."""
        if not self._log:
            try:
                return self._remote.move(source, src_parent, dst_parent, name, target, path)
            except LATER as error:
                self._deferring(f"rename of {path}", error)
        change = Change(ChangeKind.MOVE, source, dst_parent.id, name, target)
        self._later(change)
        if target is not None:
            self._meta.remove(dst_parent.id, target)
            if target.is_folder:
                self._meta.forget(target.id)
        result = change.result
        assert result is not None
        return result

    def set_aside(self, item: Item, folder: Item, why: str, path: str) -> Item:
        """Rename a stored item to a hidden name of ours, freeing its name."""
        return self.move(item, folder, folder, aside_name(item.name, why), None, path)

    def trash(self, item: Item, path: str) -> None:
        """Send a stored item to Recently Deleted."""
        if not self._log:
            try:
                self._remote.trash(item, path)
                return
            except LATER as error:
                self._deferring(f"deletion of {path}", error)
        self._later(Change(ChangeKind.TRASH, item))

    def _deferring(self, what: str, error: Exception) -> None:
        log.warning("iCloud cannot take changes now (%s): the %s is kept here and made later", error, what)

    def _later(self, change: Change) -> None:
        self._log.add(change)
        log.info("%s waits for iCloud (%d waiting)", change.describe(), len(self._log))
        self.added()
