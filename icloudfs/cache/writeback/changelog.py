"""Namespace changes waiting to be made remotely: journaled, laid over listings, rebased as made.

A mkdir, rename/move or delete that iCloud cannot take now (``changes.py`` decides) becomes a
``Change``, committed to the journal before the call returns. ``ChangeLog`` keeps them in the
order they were made, until ``replay.py`` has made each remotely.

What the mount shows is iCloud's listing with the waiting changes laid over it: the metadata
cache calls ``overlay`` on every listing it stores or loads, so a fetch (a poll, a refresh, an
expired listing) never undoes a change that still waits. Items are matched by id, never by
name, so laying a change over a listing that already shows it changes nothing.

Each change records the item as it was shown when the change was made: its id and etag. When a
change has been made remotely (``made``), the later changes of the same item are rebased on the
item iCloud answered, so the replay of each can tell this mount's own changes from changes
made elsewhere meanwhile; and a mkdir's placeholder id (``NEWFOLDER::…``) is replaced, in every
later change, by the id iCloud gave the folder.

Locks: ``_lock`` guards the list and is a leaf (the metadata cache calls ``overlay`` holding its
own); ``_adding`` keeps journal order and list order the same, and is never taken under
``_lock``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import threading
from dataclasses import dataclass
from typing import Any

from icloudfs.cache.listing import item_from_row, item_to_row, name_key
from icloudfs.cache.writeback.journal import Journal
from icloudfs.drive.types import Item


class ChangeKind(enum.Enum):
    MKDIR = "mkdir"  # ``item`` is the new folder's placeholder
    MOVE = "move"  # rename and/or move ``item`` to ``parent_id``/``name``, over ``replacing``
    TRASH = "trash"  # ``item`` goes to Recently Deleted


@dataclass
class Change:
    """One namespace change made here, to be made remotely. See the module note."""

    kind: ChangeKind
    item: Item
    parent_id: str = ""  # MOVE: the folder it goes to
    name: str = ""  # MOVE: its new name (remote form)
    replacing: Item | None = None  # MOVE over an existing item: that item, as shown
    seq: int = 0

    @property
    def result(self) -> Item | None:
        """The item as shown once the change is made (None: deleted)."""
        if self.kind is ChangeKind.MOVE:
            return dataclasses.replace(self.item, parent_id=self.parent_id, name=self.name)
        return self.item if self.kind is ChangeKind.MKDIR else None

    @property
    def folders(self) -> set[str]:
        """The folders whose listings the change changes."""
        found = {self.item.parent_id or ""}
        return found | {self.parent_id} if self.kind is ChangeKind.MOVE else found

    def describe(self) -> str:
        if self.kind is ChangeKind.MOVE:
            return f"rename of {self.item.name} to {self.name}"
        return f"{self.kind.value} of {self.item.name}"

    def encode(self) -> str:
        return json.dumps(
            {
                "kind": self.kind.value,
                "item": item_to_row(self.item),
                "parent_id": self.parent_id,
                "name": self.name,
                "replacing": None if self.replacing is None else item_to_row(self.replacing),
            }
        )

    @classmethod
    def decode(cls, seq: int, data: str) -> Change:
        raw: dict[str, Any] = json.loads(data)
        replacing = None if raw["replacing"] is None else item_from_row(raw["replacing"])
        item = item_from_row(raw["item"])
        return cls(ChangeKind(raw["kind"]), item, raw["parent_id"], raw["name"], replacing, seq)

    def rebased(self, before: Item, after: Item) -> Change:
        """This change with ``before`` (an item, or a folder by id) as iCloud now has it."""

        def swap(item: Item | None) -> Item | None:
            if item is None:
                return None
            if item.id == before.id:
                return after
            if item.parent_id == before.id:
                return dataclasses.replace(item, parent_id=after.id)
            return item

        moved = swap(self.item)
        assert moved is not None
        target = after.id if self.parent_id == before.id else self.parent_id
        return dataclasses.replace(self, item=moved, parent_id=target, replacing=swap(self.replacing))


class ChangeLog:
    """The waiting namespace changes, in order. See the module note."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._lock = threading.Lock()
        self._adding = threading.Lock()
        self._changes = [Change.decode(seq, data) for seq, data in journal.changes()]
        self._folders = _count_folders(self._changes)

    def __len__(self) -> int:
        return len(self._changes)

    def first(self) -> Change | None:
        with self._lock:
            return self._changes[0] if self._changes else None

    def all(self) -> list[Change]:
        with self._lock:
            return list(self._changes)

    def add(self, change: Change) -> None:
        """Journal the change (durably, before this returns) and queue it after the others."""
        with self._adding:
            change.seq = self._journal.add_change(change.encode())
            with self._lock:
                self._changes.append(change)
                for folder in change.folders:
                    self._folders[folder] = self._folders.get(folder, 0) + 1

    def made(self, change: Change, before: Item | None, after: Item | None) -> None:
        """The change was made remotely: it goes, and if it turned ``before`` (as the change
        showed it) into ``after`` (as iCloud has it now), the later changes are rebased."""
        with self._adding:
            with self._lock:
                assert self._changes and self._changes[0] is change
                later = self._changes[1:]
                rewritten: list[tuple[int, str]] = []
                if before is not None and after is not None and before != after:
                    for index, other in enumerate(later):
                        rebased = other.rebased(before, after)
                        if rebased != other:
                            later[index] = rebased
                            rewritten.append((rebased.seq, rebased.encode()))
            alias = (before.id, after.id) if change.kind is ChangeKind.MKDIR and before and after else None
            self._journal.change_made(change.seq, rewritten, alias)
            with self._lock:
                self._changes = later
                self._folders = _count_folders(later)

    def overlay(self, folder_id: str, children: dict[str, Item]) -> bool:
        """Lay the waiting changes that touch this folder over its listing (by name key); True
        if that changed it. Cheap when nothing waits: it is called for every listing."""
        if not self._folders:
            return False
        with self._lock:
            if folder_id not in self._folders:
                return False
            changes = [c for c in self._changes if folder_id in c.folders]
        changed = False
        for change in changes:
            if change.kind is not ChangeKind.MKDIR and change.item.parent_id == folder_id:
                changed |= _drop(children, change.item.id)  # it leaves this folder
            result = change.result
            if result is not None and result.parent_id == folder_id:
                if change.replacing is not None:
                    _drop(children, change.replacing.id)
                _drop(children, result.id)
                children[name_key(result)] = result
                changed = True
        return changed


def _drop(children: dict[str, Item], item_id: str) -> bool:
    key = next((k for k, child in children.items() if child.id == item_id), None)
    if key is None:
        return False
    del children[key]
    return True


def _count_folders(changes: list[Change]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for change in changes:
        for folder in change.folders:
            counts[folder] = counts.get(folder, 0) + 1
    return counts
