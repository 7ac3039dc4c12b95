"""One upload job: it stores one version of a node's staged copy, unless it is cancelled first.

The job is a snapshot (``Job``: the generation, the copy it reads, the stored version it
replaces, the folder and name) taken when the upload starts; nothing is held while it runs, so
the file can be written, renamed or deleted meanwhile. Whoever does that cancels the job, and
its ``UploadControl`` stops it: ``check`` as the bytes go out, and ``committing`` just before
the request that would make them appear, which raises ``Cancelled`` instead. Setting
``committed`` there, under the node's lock, is the line: before it a cancel is immediate and
nothing appears remotely; after it the job ends as stored or failed, and namespace operations
wait the few requests that takes (never a transfer).

``conflicts.store`` does the storing; ``Uploader`` keeps the node's books before and after: a
stored version becomes the node's ``remote`` (and is shown in its folder's listing), a failed
upload is retried after a backoff (2 s doubling to 5 min), a cancelled one at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from icloudfs.cache.content import ContentCache
from icloudfs.cache.metadata import MetadataCache
from icloudfs.cache.writeback import conflicts, staged
from icloudfs.cache.writeback.node import FileNode, Job, Staged
from icloudfs.cache.writeback.settle import Settler
from icloudfs.cache.writeback.table import NodeTable
from icloudfs.drive.protocol import Drive
from icloudfs.drive.types import Item
from icloudfs.errors import Cancelled

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 2.0
BACKOFF_MAX_S = 300.0

Due = Callable[..., None]
"""``due(node, delay, backoff=False)``: queue the node's upload."""


class Books(Protocol):
    """What the write-back does for an upload: journal a digest at the commit point, journal a
    version written during the upload, and let a node go once nothing refers to it."""

    def record_attempt(self, node: FileNode, digest: str) -> None: ...

    def flush(self, node: FileNode) -> None: ...

    def retire_if_done(self, node: FileNode) -> None: ...


class JobControl:
    """The ``UploadControl`` of one job."""

    def __init__(self, node: FileNode, job: Job, recorder: Books) -> None:
        self._node, self._job, self._recorder = node, job, recorder

    def check(self) -> None:
        if self._job.cancelled:
            raise Cancelled(self._job.cancelled)

    def committing(self, sha256: str) -> None:
        with self._node.lock:
            if self._job.cancelled:
                raise Cancelled(self._job.cancelled)
            self._job.committed = True
        self._recorder.record_attempt(self._node, sha256)


def new_job(node: FileNode) -> Job:
    """The job for the node's current version (hold its lock; it has a dirty staged copy)."""
    staged = node.staged
    assert staged is not None
    job = Job(staged.generation, staged.path, node.remote, node.parent_id, node.name, staged.mtime)
    node.job = job
    return job


def cancel(node: FileNode, why: str) -> bool:
    """Cancel the node's upload if it has not reached its commit point (hold its lock);
    True if one was cancelled."""
    job = node.job
    if job is None or job.committed or job.cancelled:
        return False
    job.cancelled = why
    return True


class Uploader:
    """Runs upload jobs and keeps the books after them. See the module note."""

    def __init__(
        self,
        drive: Drive,
        meta: MetadataCache,
        content: ContentCache,
        table: NodeTable,
        settler: Settler,
        books: Books,
        *,
        delay: float,
    ) -> None:
        self._drive, self._meta, self._content = drive, meta, content
        self._table, self._settler, self._books = table, settler, books
        self.delay = delay
        self.due: Due = lambda node, delay, backoff=False: None  # set by the write-back's queue
        self.held: Callable[[], bool] = lambda: False  # set by the write-back: changes wait
        self._lock = threading.Lock()
        self.uploaded = 0
        self.conflicts = 0
        self.last_error = ""

    def start(self, node: FileNode) -> Job | None:
        """The scheduler's question: can the node's upload start now? (Its job, if so.)"""
        if self.held():  # a namespace change waits: the file's folder may not exist in iCloud yet
            return None
        with node.lock:
            if node.retired or not node.dirty or node.writers or node.ops or node.job is not None:
                return None
            return new_job(node)

    def run(self, node: FileNode, job: Job, *, raise_errors: bool = False) -> None:
        """Run one upload job to its end: stored, cancelled or failed."""
        try:
            if job.cancelled:
                raise Cancelled(job.cancelled)
            with node.lock:
                attempts = list(node.staged.attempts) if node.staged is not None else []
                resumed = node.staged is not None and node.staged.resumed
            parent = self._meta.folder_item(job.parent_id)
            stored, conflict = conflicts.store(
                self._drive,
                parent,
                job.base,
                job.name,
                job.source,
                job.mtime,
                attempts,
                resumed=resumed,
                control=JobControl(node, job, self._books),
            )
            if job.cancelled and not job.committed:  # an earlier upload of ours was found stored
                raise Cancelled(job.cancelled)
        except Cancelled:
            self._cancelled(node, job)
            if raise_errors:
                raise
            return
        except Exception as error:
            self._failed(node, job, error)
            if raise_errors:
                raise
            return
        self._stored(node, job, stored, conflict)

    def note_error(self, text: str) -> None:
        """The last error to show in ``status`` (one of the write-back's, not an upload's)."""
        with self._lock:
            self.last_error = text

    def counts(self) -> dict[str, Any]:
        with self._lock:
            return {"uploaded": self.uploaded, "conflicts": self.conflicts, "last_error": self.last_error}

    # -- internals ----------------------------------------------------------------------------

    def _stored(self, node: FileNode, job: Job, stored: Item, conflict: bool) -> None:
        with node.lock:
            copy = node.staged
            assert copy is not None
            unchanged = copy.path == job.source and copy.generation == job.generation
            copy.shared = copy.shared or unchanged  # before the cache may link it
        if unchanged:  # the blocks are there before the stored version can be found (offline too)
            self._import(node, copy, job.source, stored)
        with node.lock:
            before = node.remote
            node.job = None
            node.failures, node.last_error = 0, ""
            copy.resumed = False
            copy.stored_generation = job.generation
            node.remote = stored
            if conflict:
                node.name = stored.name  # later writes follow the copy, never the original
            if not node.deleted:
                self._table.show(node)
            node.changed.notify_all()
        self._table.bind(node, stored.id)
        if conflict and before is not None:
            self._table.unbind(node, before.id)  # that id is the other device's version now
        with self._lock:
            self.uploaded += 1
            self.conflicts += conflict
        if copy.path != job.source:
            job.source.unlink(missing_ok=True)
        self._meta.put(job.parent_id, stored)
        if before is not None and before.id != stored.id and not conflict:
            self._meta.remove(job.parent_id, before)
        if conflict:  # the name is the other device's version now
            self._meta.found_changed(job.parent_id, [job.name])
        if conflict:
            self._meta.invalidate(job.parent_id)
        if node.dirty:  # written again during the upload
            with node.lock:
                copy.journaled_generation = -1
            self._books.flush(node)
            if not node.writers:
                self.due(node, self.delay)
        else:
            self._settler.add(node)
        self._books.retire_if_done(node)

    def _import(self, node: FileNode, copy: Staged, source: Path, stored: Item) -> None:
        """The stored bytes become the version's content-cache blocks (a small file's copy by a
        hard link: then the copy is ``shared`` and is never changed in place again). Done while
        the job still holds the node: a node let go before would be looked up again from the
        stored version, whose blocks must be there, or a read offline fails."""
        try:
            linked = self._content.import_file(stored.docwsid, stored.etag, source)
        except OSError as error:  # a full cache disk: the blocks will be fetched when read
            log.warning("content cache: %s not kept after its upload: %s", node.name, error)
            linked = False
        if not linked:
            with node.lock:  # copied, or not kept: changes may go in place again
                if node.staged is copy and copy.fd >= 0:
                    copy.shared = staged.links(copy) > 1

    def _failed(self, node: FileNode, job: Job, error: Exception) -> None:
        with node.lock:
            if node.job is job:
                node.job = None
            node.failures += 1
            node.last_error = f"{type(error).__name__}: {error}"
            backoff = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (node.failures - 1))
            node.changed.notify_all()
        with self._lock:
            self.last_error = f"{node.name}: {node.last_error}"
        log.warning("upload of %s failed (%s); retrying in %.0f s", node.name, error, backoff)
        self.due(node, backoff, backoff=True)
        self._books.retire_if_done(node)

    def _cancelled(self, node: FileNode, job: Job) -> None:
        with node.lock:
            if node.job is job:
                node.job = None
            node.changed.notify_all()
            again = node.dirty and not node.writers and not node.ops
            forked = node.staged is None or node.staged.path != job.source
        if forked:
            job.source.unlink(missing_ok=True)
        if again:
            self.due(node, 0.0)
        self._books.retire_if_done(node)
