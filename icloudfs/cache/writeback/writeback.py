"""``WriteBack``: what the filesystem asks of the write-back, on nodes (see the package note).

It is the one seam the filesystem calls (life cycle, handles, content, namespace, stats), which
is why it is longer than its siblings; each call is short and hands the work to them: nodes
(``table.py``), staged copies (``staged.py``), rows (``rows.py``), uploads (``upload.py``,
``queue.py``), settling (``settle.py``), start-up (``recovery.py``) and namespace changes
(``changes``: made now, or journaled and replayed in order, ``replay.py``). While a namespace
change waits, no upload starts: a file may be in a folder that iCloud has not made yet.

Locks, in the order they may be taken:
0. ``_settling`` (one settle at a time), taken with nothing else held;
1. ``FileNode.staging`` (one download into a new staged copy at a time) and
   ``FileNode.journaling`` (a node's journal rows are written in order);
2. ``FileNode.lock`` (its ``changed`` condition): the node's fields and staged file descriptor;
   short holds, no drive call and no journal commit under it;
3. leaves: the ``NodeTable``'s lock, ``UploadQueue``'s, ``_lock`` (counters, the rows to
   settle), the ``Journal``'s and the metadata and content caches' own.
A namespace operation holds no lock while it waits for an upload's commit: it waits on the
node's condition.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from icloudfs.cache.content import ContentCache
from icloudfs.cache.metadata import MetadataCache
from icloudfs.cache.reader import Reader
from icloudfs.cache.writeback import recovery, staged
from icloudfs.cache.writeback.changelog import ChangeLog
from icloudfs.cache.writeback.changes import LATER, Changes
from icloudfs.cache.writeback.health import Troubles
from icloudfs.cache.writeback.journal import Journal
from icloudfs.cache.writeback.node import FileNode, Job, NodeState, Staged
from icloudfs.cache.writeback.queue import UploadQueue
from icloudfs.cache.writeback.remote import RemoteNamespace
from icloudfs.cache.writeback.replay import Replayer
from icloudfs.cache.writeback.rows import NodeRows
from icloudfs.cache.writeback.settle import Settler
from icloudfs.cache.writeback.table import NodeTable
from icloudfs.cache.writeback.upload import Uploader, cancel, new_job
from icloudfs.drive.protocol import Drive
from icloudfs.drive.types import Item
from icloudfs.errors import Cancelled, Conflict, NotFound

log = logging.getLogger(__name__)

_STAGE_TRIES = 3

Found = Item | FileNode


class WriteBack:
    """Nodes, their staged copies, the journal and the uploads. See the package note."""

    def __init__(
        self,
        drive: Drive,
        meta: MetadataCache,
        content: ContentCache,
        reader: Reader,
        folder: Path,
        *,
        delay: float,
        # Small files are round-trip bound (three calls each): more threads than that paid off
        # once the calls got cheap (bench/README has the measurements).
        workers: int = 32,
    ) -> None:
        self._drive = drive
        self._meta = meta
        self._content = content
        self._reader = reader
        self.delay = delay
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._files = staged.StagedFiles(folder / "staged")
        self._journal = Journal(folder / "journal.db")
        self._table = NodeTable()
        self._troubles = Troubles()
        self._rows = NodeRows(self._journal, self._troubles)
        self._settler = Settler(meta, self._journal, self._troubles)
        self._uploader = Uploader(drive, meta, content, self._table, self._settler, self, delay=delay)
        self._queue = UploadQueue(
            workers=workers,
            find=self._table.get,
            start=self._start_job,
            run=self._uploader.run,
            settle=lambda: self.settle(),
            settling=self._settler.pending,
            trouble=self._troubles.report,
        )
        self._uploader.due = self._queue.due
        self._uploader.held = lambda: bool(self._changelog)
        self._settler.wake = self._queue.wake
        self._changelog = ChangeLog(self._journal)
        remote = RemoteNamespace(drive, meta, content)
        self.changes = Changes(remote, self._changelog, meta)
        self._replayer = Replayer(drive, meta, self._changelog, self.changes, remote, self._troubles, self)

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Bring back every journaled node and change and queue them, then start the scheduler
        and the replay of changes."""
        nodes = recovery.resume(self._journal, self._files)
        for node in nodes:
            self._table.add(node)
            self._table.show(node)
            self._queue.due(node, 0.0)
        if nodes:
            log.info("write-back: resuming %d pending upload(s)", len(nodes))
        if self._changelog:
            log.info("write-back: %d folder change(s) made offline wait for iCloud", len(self._changelog))
        self._meta.overlay = self._changelog.overlay
        self._queue.start()
        self._replayer.start()

    def drain(self, timeout: float, progress: Callable[[int], None] | None = None) -> bool:
        """Upload everything pending now; True when nothing is left within ``timeout``.

        A ``timeout`` of 0 only reports: nothing is started."""
        if timeout <= 0:
            return self.pending() == 0
        deadline = time.monotonic() + timeout
        self._replayer.wake(now=True)
        self._queue.drain(node.key for node in self._table.live() if node.dirty)
        try:
            while True:
                left = self.pending()
                if progress is not None:
                    progress(left)
                if left == 0:
                    return True
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)
        finally:
            self._queue.undrain()

    def close(self) -> None:
        """Stop uploading; what was not stored stays journaled for the next start. Uploads in
        flight are cancelled unless past their commit point (those end first)."""
        for node in self._table.live():
            with node.lock:
                cancel(node, "unmounting")
        self._replayer.close()
        self._queue.close()
        try:
            self.settle()
        except (OSError, sqlite3.Error) as error:
            log.warning("write-back: stored files' journal rows stay for the next start: %s", error)
        for node in self._table.live():
            with node.lock:
                if node.staged is not None and node.staged.fd >= 0:
                    staged.close_fd(node.staged)
        self._journal.close()

    # -- finding ------------------------------------------------------------------------------

    def shown_at(self, folder_id: str, name: str) -> FileNode | None:
        """The node shown at ``name`` in the folder (a file with a staged copy), if any."""
        return self._table.shown_at(folder_id, name)

    def shown_in(self, folder_id: str) -> list[FileNode]:
        return self._table.shown_in(folder_id)

    def bound(self, remote_id: str) -> FileNode | None:
        """The node a listing's file is, here (while it lives)."""
        return self._table.bound(remote_id)

    def bound_among(self, items: Iterable[Item]) -> dict[str, FileNode]:
        return self._table.bound_among(items)

    # -- handles ------------------------------------------------------------------------------

    def open(self, found: Found, *, writer: bool) -> FileNode | None:
        """A file handle starts using the file: its node (one is made for a stored file that has
        none). None if ``found`` is a node that was retired since it was looked up (look again)."""
        return self._pin(found, handles=1, writers=int(writer))

    def unlinked_open(self) -> list[FileNode]:
        """Files unlinked while open whose stored versions wait to go to the trash."""
        return [node for node in self._table.live() if node.trash_on_close]

    def release(self, node: FileNode, *, writer: bool) -> None:
        """A file handle is closed: make its changes durable and queue the upload.

        The handle is let go even when journaling fails (a full disk): the close reports the
        error, and the node must not stay pinned by a handle that no longer exists."""
        try:
            self.flush(node)
        finally:
            with node.lock:
                node.handles -= 1
                node.writers -= writer
                due = node.dirty and not node.writers
            if due:
                self._queue.due(node, self.delay)
            self.retire_if_done(node)

    def create(self, parent_id: str, name: str, mtime: float) -> FileNode:
        """A new, empty file, open for writing by its creator; shown in its folder at once."""
        key = uuid.uuid4().hex
        node = FileNode(key, parent_id, name, None, handles=1, writers=1)
        node.staged = self._files.create(key, mtime)
        node.staged.generation = 1  # a new file is uploaded even if it stays empty
        self._table.add(node)
        self._table.show(node)
        return node

    # -- content ------------------------------------------------------------------------------

    def stage(self, node: FileNode, keep: int) -> Staged:
        """The node's staged copy, made on first need with the first ``keep`` bytes of its stored
        version. If that version changes while they are fetched (a rename gave it a new etag),
        they are fetched again from the new one."""
        with node.lock:
            if node.staged is not None:
                return node.staged
        with node.staging:
            for _ in range(_STAGE_TRIES):
                with node.lock:
                    if node.staged is not None:
                        return node.staged
                    base = node.remote
                if base is None:
                    raise NotFound(f"{node.name} has neither a staged copy nor a stored version")
                copy = self._files.create(node.key, base.mtime)
                try:
                    self._copy_in(copy, base, min(keep, base.size))
                except Conflict:  # the version changed (a rename, another device): look again
                    staged.close(copy)
                    self._restat(node, base)
                    continue
                except BaseException:
                    staged.close(copy)
                    raise
                with node.lock:
                    if node.remote is base:
                        node.staged = copy
                        if not node.deleted:
                            self._table.show(node)
                        return copy
                staged.close(copy)  # renamed meanwhile: its bytes again, from the new version
            raise Conflict(f"{node.name} kept changing while it was being read")

    def refreshed(self, node: FileNode, fresh: Item) -> None:
        """A stored file was looked up again and found changed (same id, new etag): a node with
        no staged copy follows it (one with a copy finds out at its upload, as a conflict)."""
        with node.lock:
            if node.staged is None and node.remote is not None and node.remote.id == fresh.id:
                node.remote = fresh

    def write(self, node: FileNode, offset: int, data: bytes | memoryview) -> int:
        with node.lock:
            copy = self._before_change(node, "written again")
            return staged.write(copy, offset, data)

    def truncate(self, node: FileNode, length: int) -> None:
        with node.lock:
            staged.truncate(self._before_change(node, "truncated"), length)

    def read_into(self, node: FileNode, offset: int, into: memoryview) -> int | None:
        """Fill ``into`` from the staged copy; None when there is none (read the stored file)."""
        with node.lock:
            if node.staged is None:
                return None
            return staged.read_into(node.staged, offset, into)

    def set_mtime(self, node: FileNode, mtime: float) -> None:
        """The mtime the upload will carry. iCloud takes an mtime only with content, so a new
        mtime (in whole seconds, its precision) makes the file due for upload."""
        with node.lock:
            copy = node.staged
            assert copy is not None
            if int(copy.mtime) != int(mtime):
                copy.generation += 1
                cancel(node, "its mtime changed")
            copy.mtime = mtime
            copy.journaled_generation = -1

    def flush(self, node: FileNode) -> None:
        """Journal the node, with its bytes, if it changed since last journaled (``rows.py``)."""
        self._rows.flush(node)

    def sync(self, node: FileNode) -> None:
        """Upload now and return once this version is stored (fsync); raises what the upload
        raised. An upload of an older version under way is cancelled, or waited for if past its
        commit point. While iCloud cannot take it (unreachable...), the bytes are durable in the
        journal: that is returned as success, and the upload goes on when iCloud can take it
        (editors and git fsync every save, and must keep working offline)."""
        self.flush(node)
        try:
            self._upload_now(node)
        except LATER as error:
            log.info("fsync of %s: kept in the journal until iCloud takes it (%s)", node.name, error)

    def _upload_now(self, node: FileNode) -> None:
        self._replayer.catch_up()  # the file may be in a folder iCloud has not made yet
        while True:
            with node.lock:
                copy = node.staged
                if copy is None or not node.dirty:
                    return
                while node.job is not None or node.ops:
                    if node.job is not None and node.job.generation < copy.generation:
                        cancel(node, "an fsync wants a newer version")
                    node.changed.wait()
                if not node.dirty:
                    return
                job = new_job(node)
            self._queue.cancel(node.key)
            with contextlib.suppress(Cancelled):  # changed or moved meanwhile: go again
                self._uploader.run(node, job, raise_errors=True)

    # -- namespace ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def quiesce(self, *found: Found | None, why: str) -> Iterator[list[FileNode | None]]:
        """Pin these files for a namespace operation, with no upload running on them: one not
        past its commit point is cancelled (and queued again afterwards, at once), one past it
        is waited for (a few requests, never a transfer). Yields their nodes, in order."""
        # A stored file's row must not outlive a rename or unlink of it (after a crash it would
        # upload the old name again): forget those rows first, waiting for a settle under way.
        with contextlib.suppress(OSError, sqlite3.Error):
            self.settle()
        nodes: list[FileNode | None] = []
        try:
            for one in found:
                nodes.append(None if one is None else self._pin_for_op(one))
            for quiet in sorted((n for n in nodes if n is not None), key=lambda n: n.key):
                with quiet.lock:
                    if cancel(quiet, why):
                        log.info("upload of %s cancelled: %s; it is queued again", quiet.name, why)
                    while quiet.job is not None and quiet.job.committed:
                        quiet.changed.wait()
            yield nodes
        finally:
            for pinned in nodes:
                if pinned is not None:
                    self._unpin_op(pinned)

    def relocate(self, node: FileNode, parent_id: str, name: str, replacing: FileNode | None) -> None:
        """Move a file that is not stored yet (quiesced): nothing remote happens now. Over
        ``replacing``, it takes over that file's stored version and its upload replaces it (an
        editor's or rsync's save: no request now, one replace later); ``replacing`` is gone."""
        taken = None
        if replacing is not None:
            with replacing.lock:
                taken, replacing.remote = replacing.remote, None
            if taken is not None:
                self._table.unbind(replacing, taken.id)
        with node.lock:
            node.parent_id = parent_id
            node.name = taken.name if taken is not None else name  # keeps the stored name's case
            if taken is not None:
                node.remote = taken
            self._table.show(node)
        if taken is not None:
            self._table.bind(node, taken.id)
        self._rows.rewrite(node)  # before the replaced one's row goes: a crash keeps the newer
        if replacing is not None:
            self.unlink(replacing)

    def moved(self, node: FileNode, item: Item, *, follow: bool = True) -> None:
        """A stored file was renamed or moved (quiesced) and is now ``item``; ``follow``: the
        node is shown there too (not when a later change, still waiting, moves it on)."""
        with node.lock:
            node.remote = item
            if follow:
                node.parent_id, node.name = item.parent_id or node.parent_id, item.name
                if node.staged is not None and not node.deleted:
                    self._table.show(node)
        self._table.bind(node, item.id)
        self._rows.rewrite(node)  # a pending replace must name the version's new etag

    # -- namespace changes made later (``replay.Fixups``) -------------------------------------

    def folder_made(self, placeholder_id: str, real_id: str) -> None:
        for node in self._table.live():
            with node.lock:
                if node.parent_id != placeholder_id:
                    continue
                node.parent_id = real_id
                if node.staged is not None and not node.deleted:
                    self._table.show(node)
            self._rows.rewrite(node)

    def item_moved(self, shown: Item, stored: Item, follow: bool) -> None:
        node = self._table.bound(shown.id)
        if node is None or node.retired:
            return
        with self.quiesce(node, why="renamed") as (pinned,):
            if pinned is not None and pinned.remote is not None and pinned.remote.id == shown.id:
                self.moved(pinned, stored, follow=follow)

    def change_refused(self, text: str) -> None:
        self._uploader.note_error(text)

    def changes_made(self) -> None:
        self._queue.now(n.key for n in self._table.live() if n.dirty and not n.writers)

    def unlink(self, node: FileNode, *, trash_on_close: bool = False) -> None:
        """The file is deleted: it is gone from its folder at once, and its pending upload is
        void. Its stored version, if any, is in the trash already, or with ``trash_on_close``
        (unlinked while open) stays for the open handles to read until ``trashed``."""
        with node.lock:
            node.deleted = True
            node.trash_on_close = trash_on_close and node.remote is not None
            cancel(node, "deleted")
        self._table.hide(node)
        self._queue.cancel(node.key)
        self._journal.delete(node.key)
        self.retire_if_done(node)

    def trashed(self, node: FileNode) -> None:
        """The stored version of a file unlinked while open went to the trash: let it go."""
        with node.lock:
            node.trash_on_close = False
        self.retire_if_done(node)

    # -- stats and control --------------------------------------------------------------------

    def pending(self) -> int:
        """Uploads and namespace changes not made remotely yet."""
        return sum(1 for node in self._table.live() if node.dirty) + len(self._changelog)

    def entries(self) -> list[dict[str, Any]]:
        """Pending uploads, one dict each: parent_id, name, size, state, attempts, last_error."""
        found = []
        for node in self._table.live():
            with node.lock:
                if node.dirty and node.staged is not None:
                    found.append(
                        {
                            "parent_id": node.parent_id,
                            "name": node.name,
                            "size": node.staged.size,
                            "state": node.state.value,
                            "attempts": node.failures,
                            "last_error": node.last_error or None,
                        }
                    )
        return found

    def retry_failed(self) -> int:
        """Queue every failed upload for now instead of after its backoff; returns how many."""
        failed = [n.key for n in self._table.live() if n.state is NodeState.FAILED and not n.writers]
        self._queue.now(failed)
        return len(failed)

    def pinned_bytes(self) -> int:
        return sum(n.staged.size for n in self._table.live() if n.staged is not None)

    def stats(self) -> dict[str, Any]:
        states = [node.state for node in self._table.live()]
        return {
            "queued": sum(s in (NodeState.QUEUED, NodeState.OPEN, NodeState.FAILED) for s in states),
            "in_progress": states.count(NodeState.UPLOADING),
            "failed": states.count(NodeState.FAILED),
            **self._uploader.counts(),
            "staged_bytes": self.pinned_bytes(),
            "changes": len(self._changelog),
            "paused": self._paused(),
        }

    def _paused(self) -> str | None:
        troubles = self._troubles.summary()
        waiting = self._replayer.waiting if self._changelog else ""
        if waiting:
            waiting = f"{len(self._changelog)} folder change(s) made offline wait for iCloud ({waiting})"
        return "; ".join(t for t in (troubles, waiting) if t) or None

    def settle(self) -> None:
        """Forget the journal rows of stored files now (``settle.py``)."""
        self._settler.settle()

    def record_attempt(self, node: FileNode, digest: str) -> None:
        self._rows.record_attempt(node, digest)

    # -- internals: pins ----------------------------------------------------------------------

    def _pin(self, found: Found, *, handles: int = 0, writers: int = 0, ops: int = 0) -> FileNode | None:
        return self._table.pin(found, handles=handles, writers=writers, ops=ops)

    def _pin_for_op(self, found: Found) -> FileNode:
        node = self._pin(found, ops=1)
        if node is None:  # retired since it was looked up: it is its stored version now
            assert isinstance(found, FileNode)
            if found.remote is None:
                raise NotFound(f"{found.name} was deleted")
            node = self._pin(found.remote, ops=1)
        assert node is not None
        return node

    def _unpin_op(self, node: FileNode) -> None:
        with node.lock:
            node.ops -= 1
            node.changed.notify_all()
            due = node.dirty and not node.writers and not node.ops and node.job is None
        if due:
            self._queue.due(node, 0.0)
        self.retire_if_done(node)

    def _start_job(self, node: FileNode) -> Job | None:
        return self._uploader.start(node)

    def retire_if_done(self, node: FileNode) -> None:
        """Forget a node nothing refers to any more: clean (or deleted) and closed."""
        with node.lock:
            busy = node.handles or node.ops or node.job is not None or node.trash_on_close
            if node.retired or busy or node.dirty:
                return
            node.retired = True
            if node.staged is not None:
                staged.close(node.staged)
            self._table.drop(node)

    # -- internals: content -------------------------------------------------------------------

    def _restat(self, node: FileNode, base: Item) -> None:
        fresh = self._drive.stat(base.id)
        self._meta.put(fresh.parent_id or "", fresh)
        with node.lock:
            if node.remote is base:
                node.remote = fresh

    def _copy_in(self, copy: Staged, base: Item, keep: int) -> None:
        """The first ``keep`` bytes of ``base`` into a new copy (clean: it holds the stored bytes)."""
        bs = self._reader.block_size
        for index, future in enumerate(self._reader.fetch_blocks(base, keep)):
            staged.pwrite(copy, future.result()[: keep - index * bs], index * bs)
        copy.size = keep

    def _before_change(self, node: FileNode, why: str) -> Staged:
        """Get the staged copy ready to change (hold the node's lock): an upload of it not past
        its commit point is cancelled (it would store bytes already old); one past it may read
        the copy again (a conflict copy), so it, and the content cache's hard link, keep the old
        copy while the change goes to a new one."""
        copy = node.staged
        assert copy is not None
        if cancel(node, why):
            log.info("upload of %s cancelled: %s", node.name, why)
        job = node.job
        reading = job is not None and job.committed and job.source == copy.path
        if reading or copy.shared:
            staged.fork(copy, keep_old=reading)
        return copy
