"""A file's identity in the mount (``FileNode``), its local content (``Staged``) and the upload
in flight for it (``Job``).

A node stands for one file for as long as anything here refers to it: an open handle, a staged
copy not yet stored, a namespace operation under way. Its ``key`` never changes in that time;
the journal, the staged copy's name and a new file's placeholder id (``LOCAL::key``) are built
on it. Where the file is stored remotely is an attribute, ``remote``, which an upload changes:
iCloud gives every new version a new id. So a decision made about a node stays true while an
upload runs, and nothing needs to look a file up again by an id that may have gone.

``NodeState`` names what the write-back is doing with a node; it is read off the fields (one
truth), not kept beside them.
"""

from __future__ import annotations

import dataclasses
import enum
import threading
from dataclasses import dataclass, field
from pathlib import Path

from icloudfs.cache.metadata import LOCAL_PREFIX
from icloudfs.drive.types import Item, ItemKind


class NodeState(enum.Enum):
    """Where a node is in the write-back."""

    CLEAN = "clean"  # nothing to upload
    OPEN = "open"  # changed, and still open for writing: uploaded after the last close
    QUEUED = "queued"  # waiting for its write-back delay or a free upload thread
    UPLOADING = "uploading"
    FAILED = "failed"  # the last upload failed; retried after a backoff (or at the next close)
    DELETED = "deleted"  # unlinked; kept only for the handles still open on it


MAX_ATTEMPTS = 64  # upload digests a node remembers: every version sent since the last stored one


@dataclass(eq=False)
class Staged:
    """A file's staged copy: its bytes on the cache disk and how far they are journaled and stored.

    ``generation`` counts changes; the copy is dirty while it differs from ``stored_generation``.
    """

    path: Path
    fd: int
    mtime: float  # the mtime the next upload carries
    size: int = 0
    generation: int = 0
    stored_generation: int = 0
    journaled_generation: int = -1
    unwritten: int = 0  # bytes written since the copy's write-out to disk was last started
    shared: bool = False  # also a content-cache block (hard link): change a copy of it, never it
    attempts: list[str] = field(default_factory=list)  # sha256 of uploads begun, oldest first
    resumed: bool = False  # some of those uploads were begun before a crash
    journal_row: str = ""  # the row as last written to the journal ("" = none)
    settling: int = 0  # stored versions whose journal rows are not forgotten yet

    @property
    def dirty(self) -> bool:
        return self.generation != self.stored_generation

    def remember(self, digest: str) -> None:
        """Add the digest of an upload begun (hold the node's lock)."""
        if digest not in self.attempts:
            self.attempts = [*self.attempts[-(MAX_ATTEMPTS - 1) :], digest]


@dataclass(eq=False)
class Job:
    """One upload of one version: what it sends, from where, to where. ``cancelled`` is set by
    whoever changed the file meanwhile; ``committed`` by the upload at its commit point, after
    which it cannot be cancelled (it ends stored or failed)."""

    generation: int
    source: Path
    base: Item | None
    parent_id: str
    name: str
    mtime: float
    cancelled: str = ""  # why, when cancelled
    committed: bool = False


@dataclass(eq=False)
class FileNode:
    """One file of the mount while anything refers to it. See the module note.

    ``parent_id`` and ``name`` (remote form) say where it is shown; for a stored node they are
    where ``remote`` is, once any operation under way has finished. Fields are guarded by
    ``lock``; ``changed`` is signalled when an upload ends or a namespace operation finishes.
    """

    key: str
    parent_id: str
    name: str
    remote: Item | None  # the stored version; None until a new file is first stored
    staged: Staged | None = None
    handles: int = 0
    writers: int = 0
    ops: int = 0  # namespace operations under way: no upload starts meanwhile
    deleted: bool = False
    trash_on_close: bool = False  # unlinked while open: its stored version goes when it closes
    retired: bool = False  # forgotten by the table: look the file up again
    job: Job | None = None
    failures: int = 0
    last_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    staging: threading.Lock = field(default_factory=threading.Lock)  # one download into it at a time
    journaling: threading.Lock = field(default_factory=threading.Lock)  # its rows are written in order
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    @property
    def dirty(self) -> bool:
        """Local bytes not stored yet (and wanted: a deleted file is never uploaded)."""
        return self.staged is not None and self.staged.dirty and not self.deleted

    @property
    def state(self) -> NodeState:
        if self.deleted:
            return NodeState.DELETED
        if self.job is not None and not self.job.cancelled:
            return NodeState.UPLOADING
        if not self.dirty:
            return NodeState.CLEAN
        if self.failures:
            return NodeState.FAILED
        return NodeState.OPEN if self.writers else NodeState.QUEUED

    @property
    def item_id(self) -> str:
        return self.remote.id if self.remote is not None else LOCAL_PREFIX + self.key

    def item(self) -> Item:
        """How the file looks now: its stored item (or a placeholder), with the staged copy's
        size and mtime when it has one, at the place it is shown."""
        staged = self.staged
        if self.remote is not None:
            if staged is None:
                return self.remote
            return dataclasses.replace(
                self.remote, parent_id=self.parent_id, name=self.name, size=staged.size, mtime=staged.mtime
            )
        size, mtime = (staged.size, staged.mtime) if staged is not None else (0, 0.0)
        return Item(self.item_id, self.parent_id, self.name, ItemKind.FILE, size, mtime, "", "", self.key)
