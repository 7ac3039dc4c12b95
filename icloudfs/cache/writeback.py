"""Safe write-back: local staged copies, a durable journal, and uploads that never lose data.

A file being written lives as a staged copy in the cache folder (``Entry``).
Writes go to that copy at any offset; nothing is sent until the file has been
closed for ``delay`` seconds (so a burst of writes, or an editor's save dance,
costs one upload), or at once on ``fsync``, which returns only when the bytes
are stored remotely.

Durability: when a written file is closed (flush/release) its journal row
(SQLite, synchronous=FULL) is committed before the call returns, durably with
the bytes it stands for: a small file's bytes are in the row itself (one commit
for both; on start they are put back into a staged copy a crash cut short),
a bigger file's staged copy is fdatasync'ed first. On start every journal row
is queued again, so a crash or a kill between close and upload only delays the
upload. Pending uploads are never thrown away; ``drain`` uploads what it can in
the time given and leaves the rest journaled.

Replacing an existing file uses ``drive.replace`` with the etag the local copy
was based on: the new bytes are stored before the old retire. If that etag is
stale (someone else changed the file), the local version is uploaded beside it
as ``name (conflict YYYY-MM-DD HHMMSS).ext`` and the entry follows that copy;
nothing is overwritten (``conflicts.py``). A failed upload keeps the local bytes and is retried
with exponential backoff (2 s doubling to 5 min).

Writes during an upload do not wait for it: the writer first copies the staged
file (copy-on-write, only in that case) and the upload goes on from the old copy.

Locks, in the order they may be taken:
1. ``Entry.remote_lock``: held across drive calls that change this file
   (upload, and the filesystem's rename/unlink of it), so they never interleave.
2. ``Entry.lock``: the entry's fields and staged file descriptor (short holds).
3. ``WriteBack._lock`` (with its condition ``_wake``): the index, the queue, stats.
4. ``Journal``'s own lock. Commits wait for the disk (synchronous=FULL), so
   nothing else is held while one runs.
Metadata and content caches have their own leaf locks. No drive call is made
while holding 2, 3 or 4.

Journal writes are what a small file costs locally, so there are few: the row
written at close already carries the digest of a small file's bytes (the upload
then needs no write of its own), and rows of stored files are forgotten in
batches, after the listings that show the stored versions are on disk.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import hashlib
import heapq
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from icloudfs.cache import conflicts
from icloudfs.cache.content import ContentCache
from icloudfs.cache.journal import Journal
from icloudfs.cache.metadata import (
    LOCAL_PREFIX,
    MetadataCache,
    is_local,
    item_from_row,
    item_to_row,
)
from icloudfs.cache.prefetch import Reader
from icloudfs.drive import names
from icloudfs.drive.protocol import Drive
from icloudfs.drive.types import Item, ItemKind

log = logging.getLogger(__name__)

_BACKOFF_FIRST = 2.0
MAX_ATTEMPTS = 64  # upload digests remembered per entry: every version sent since the last stored one
DIGEST_AT_CLOSE = 1 << 20  # files up to this size are hashed when journaled, not when uploaded
# Files up to this size keep their bytes in their journal row: the row's commit makes them durable,
# so closing one costs one sync instead of two (the copy's fdatasync and the commit).
IN_ROW = 64 << 10
SETTLE_EVERY_S = 0.2  # how long stored files' journal rows may wait to be forgotten together
_BACKOFF_MAX = 300.0
WRITE_OUT_EVERY = 8 << 20  # bytes written to a staged copy between starts of its write-out
_SYNC_FILE_RANGE_WRITE = 2
_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(eq=False)
class Entry:
    """A file with a local staged copy (new, or changed since it was read)."""

    key: str
    parent_id: str
    name: str  # remote form
    base: Item | None  # the remote version the local bytes started from; None = new file
    mtime: float
    path: Path
    size: int = 0
    generation: int = 0  # bumped on every change
    stored_generation: int = 0  # the generation last uploaded (or staged from the drive)
    journaled_generation: int = -1
    writers: int = 0
    handles: int = 0
    deleted: bool = False
    uploading: Path | None = None
    shared: bool = False  # the staged copy is also a content-cache block: change a copy of it
    unwritten: int = 0  # bytes written since the staged copy's write-out was last started
    failures: int = 0
    last_error: str = ""
    attempts: list[str] = field(default_factory=list)  # sha256 of uploads begun, oldest first
    resumed: bool = False  # some of those uploads were begun before a crash
    journal_row: str = ""  # the entry's row as last written to the journal
    settling: int = 0  # stored versions whose journal rows are not forgotten yet
    fd: int = -1
    lock: threading.Lock = field(default_factory=threading.Lock)
    remote_lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def item_id(self) -> str:
        return self.base.id if self.base is not None else LOCAL_PREFIX + self.key

    @property
    def dirty(self) -> bool:
        return self.generation != self.stored_generation and not self.deleted

    def item(self) -> Item:
        """How the file looks now: its remote item (or a placeholder) with local size and mtime."""
        if self.base is not None:
            return dataclasses.replace(self.base, size=self.size, mtime=self.mtime)
        return Item(
            self.item_id,
            self.parent_id,
            self.name,
            ItemKind.FILE,
            self.size,
            self.mtime,
            "",
            "",
            self.key,
        )


class WriteBack:
    """Staged files, their journal and the upload queue. See the module note."""

    def __init__(
        self,
        drive: Drive,
        meta: MetadataCache,
        content: ContentCache,
        reader: Reader,
        folder: Path,
        *,
        delay: float,
        # Small files are round-trip bound (three calls each): 4 -> 16 halved `cp -r` on wan; 32
        # paid off once the calls got cheaper (1,000 uploads at 20 ms: 4.5 -> 2.6 s, bench/README).
        workers: int = 32,
    ) -> None:
        self._drive = drive
        self._meta = meta
        self._content = content
        self._reader = reader
        self.delay = delay
        self._files = folder / "staged"
        self._files.mkdir(parents=True, exist_ok=True)
        self._journal = Journal(folder / "journal.db")
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._settled: list[tuple[Entry, str]] = []  # stored entries and the journal rows to forget
        self._by_id: dict[str, Entry] = {}
        self._due: dict[str, float] = {}  # entry key -> monotonic time to upload
        self._heap: list[tuple[float, str]] = []  # the same, soonest first (stale pairs skipped)
        self._live: dict[str, Entry] = {}  # entry key -> entry
        self._stage_locks: dict[str, threading.Lock] = {}
        self._tombstones: set[str] = set()  # ids of remote files deleted here
        # id of a version this mount replaced -> the version it stored in its place (iCloud gives
        # a replaced file a new id): a lookup made just before may still name the old one
        self._successors: dict[str, Item] = {}
        # Due entries go to the upload threads through a plain queue, not an executor: a
        # future per upload (its condition, lock and work item) cost 5% of the daemon's CPU
        # in `cp -r` of small files. The threads start with the first upload; None stops one.
        self._ready: queue.SimpleQueue[Entry | None] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._max_workers = workers
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._draining = 0
        self.uploaded = 0
        self.conflicts = 0
        self.last_error = ""

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Queue every journaled entry again, then start the scheduler."""
        newest: dict[tuple[str, str], Entry] = {}  # (folder id, name key) -> its latest row
        for key, data in self._journal.rows():  # oldest write first
            entry = self._entry_from(key, json.loads(data))
            if entry is None:
                continue
            entry.journal_row = data
            slot = (entry.parent_id, names.key(entry.name))
            older = newest.pop(slot, None)
            if older is not None:
                self._supersede(older, entry)
            newest[slot] = entry
        for entry in newest.values():
            self._index(entry)
            self._queue(entry, 0.0)
        known = {entry.path.name for entry in newest.values()}
        for stray in self._files.iterdir():  # copies that a crash left unreferenced
            if stray.name not in known:
                stray.unlink()
        if newest:
            log.info("write-back: resuming %d pending upload(s)", len(newest))
        self._thread = threading.Thread(target=self._schedule, name="icloudfs-writeback", daemon=True)
        self._thread.start()

    def drain(self, timeout: float, progress: Callable[[int], None] | None = None) -> bool:
        """Upload everything pending now; True when nothing is left within ``timeout``.

        A ``timeout`` of 0 only reports: nothing is started.
        """
        if timeout <= 0:
            return self.pending() == 0
        deadline = time.monotonic() + timeout
        with self._wake:
            self._draining += 1  # files closed meanwhile are queued without delay
            for entry in self._live.values():
                if entry.dirty:
                    self._set_due(entry.key, 0.0)
            self._wake.notify_all()
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
            with self._wake:
                self._draining -= 1

    def close(self) -> None:
        """Stop scheduling; whatever was not uploaded stays in the journal."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join()
        for _ in self._workers:
            self._ready.put(None)
        for worker in self._workers:
            worker.join()
        self.settle()
        with self._lock:
            entries = list(self._live.values())
        for entry in entries:
            with entry.lock:
                if entry.fd >= 0:
                    os.close(entry.fd)
                    entry.fd = -1
        self._journal.close()

    # -- entries ------------------------------------------------------------------------------

    def entry_for(self, item_id: str) -> Entry | None:
        with self._lock:
            return self._by_id.get(item_id)

    def create(self, parent_id: str, name: str, mtime: float) -> Entry:
        """A new, empty local file; it shows in its folder at once."""
        entry = self._new_entry(parent_id, name, None, mtime)
        entry.generation = 1  # a new file is uploaded even if it stays empty
        self._index(entry)
        return entry

    def stage(self, item: Item, keep: int) -> Entry:
        """The entry of a remote file, copying its first ``keep`` bytes when there is none yet.

        A version this mount has since replaced is staged as its successor: based on the old
        one, the upload would find it gone and store the bytes as a conflict copy."""
        with self._lock:
            while item.id in self._successors:
                item = self._successors[item.id]
            entry = self._by_id.get(item.id)
            lock = self._stage_locks.setdefault(item.id, threading.Lock())
        if entry is not None:
            return entry
        with lock:
            entry = self.entry_for(item.id)
            if entry is not None:
                return entry
            entry = self._new_entry(item.parent_id or "", item.name, item, item.mtime)
            keep = min(keep, item.size)
            bs = self._reader.block_size
            try:
                for index, future in enumerate(self._reader.fetch_blocks(item, keep)):
                    os.pwrite(entry.fd, future.result()[: keep - index * bs], index * bs)
            except BaseException:
                os.close(entry.fd)
                entry.path.unlink(missing_ok=True)
                raise
            entry.size = keep
            with self._lock:
                entry.deleted = item.id in self._tombstones  # unlinked while still open
            self._index(entry)
        with self._lock:
            self._stage_locks.pop(item.id, None)
        return entry

    def deleted(self, item_id: str) -> None:
        """A remote file without a staged copy was deleted: a handle still open on it may write,
        but must not bring it back."""
        with self._lock:
            if len(self._tombstones) > 10_000:
                self._tombstones.clear()
            self._tombstones.add(item_id)

    def attach(self, entry: Entry, *, writer: bool) -> bool:
        """A file handle starts using this entry; False if it was retired since it was looked up
        (its upload finished and nothing held it open)."""
        with entry.lock:
            if entry.fd < 0:
                return False
            entry.handles += 1
            entry.writers += writer
        return True

    def release(self, entry: Entry, *, writer: bool) -> None:
        """A file handle is closed: make its changes durable and queue the upload.

        The handle is let go even when journaling fails (a full disk): the close reports the
        error, and the entry must not stay pinned by a handle that no longer exists."""
        try:
            self.flush(entry)
        finally:
            with entry.lock:
                entry.handles -= 1
                entry.writers -= writer
                idle = entry.writers == 0
            if entry.dirty and idle:
                self._queue(entry, self.delay)
            self._drop_if_done(entry)

    def flush(self, entry: Entry) -> None:
        """Journal the entry, with its bytes, if it changed since last journaled."""
        with entry.lock:
            if not entry.dirty or entry.journaled_generation == entry.generation:
                return
            hashed = entry.size <= DIGEST_AT_CLOSE  # then the upload need not journal it again
            if hashed and entry.size > IN_ROW:  # smaller ones are hashed as read for the row
                _remember(entry, conflicts.file_digest(entry.path))
            generation = entry.generation
        self._write_row(entry, hash_content=hashed)
        with entry.lock:
            entry.journaled_generation = max(entry.journaled_generation, generation)

    def sync(self, entry: Entry) -> None:
        """Upload now and return once stored (fsync); raises what the upload raised."""
        self.flush(entry)
        with self._lock:
            self._due.pop(entry.key, None)
        self._upload(entry, raise_errors=True)

    def read_into(self, entry: Entry, offset: int, into: memoryview) -> int:
        with entry.lock:
            return os.preadv(entry.fd, [into], offset)

    def write(self, entry: Entry, offset: int, data: bytes | memoryview) -> int:
        with entry.lock:
            self._own_copy(entry)
            written = os.pwrite(entry.fd, data, offset)
            entry.size = max(entry.size, offset + written)
            entry.generation += 1
            entry.mtime = time.time()
            entry.unwritten += written
            if entry.unwritten >= WRITE_OUT_EVERY:
                entry.unwritten = 0
                _start_write_out(entry.fd)
        return written

    def truncate(self, entry: Entry, length: int) -> None:
        with entry.lock:
            self._own_copy(entry)
            os.ftruncate(entry.fd, length)
            entry.size = length
            entry.generation += 1
            entry.mtime = time.time()
        if entry.writers == 0:  # truncate(1) without an open handle
            self.flush(entry)
            self._queue(entry, self.delay)

    def set_mtime(self, entry: Entry, mtime: float) -> None:
        """The mtime the upload will carry. iCloud takes an mtime only with content, so a new
        mtime (in whole seconds, its precision) makes the file due for upload."""
        with entry.lock:
            if int(entry.mtime) != int(mtime):
                entry.generation += 1
            entry.mtime = mtime
            entry.journaled_generation = -1
            idle = entry.dirty and entry.writers == 0
        if idle:
            self.flush(entry)
            self._queue(entry, self.delay)

    def relocate(self, entry: Entry, parent_id: str, name: str, base: Item | None) -> None:
        """The file was renamed or moved (caller holds ``remote_lock``)."""
        with entry.lock:
            before = entry.item()
            entry.parent_id, entry.name, entry.base = parent_id, name, base
            entry.journaled_generation = -1
            after = entry.item()
        with self._lock:
            self._by_id.pop(before.id, None)
            self._by_id[after.id] = entry
        self._meta.clear_overlay(before.parent_id or "", before)
        self._meta.overlay(parent_id, after)
        if entry.dirty and entry.writers == 0:
            self.flush(entry)

    def discard(self, entry: Entry) -> None:
        """The file was deleted or overwritten: its pending upload is void (hold ``remote_lock``)."""
        with entry.lock:
            entry.deleted = True
            placeholder = entry.item()
        self._journal.delete(entry.key)
        with self._lock:
            self._due.pop(entry.key, None)
            if self._by_id.get(placeholder.id) is entry:
                del self._by_id[placeholder.id]
        self._meta.clear_overlay(entry.parent_id, placeholder)
        self._drop_if_done(entry)

    # -- stats --------------------------------------------------------------------------------

    def pending(self) -> int:
        with self._lock:
            return sum(1 for e in self._live.values() if e.dirty)

    def entries(self) -> list[dict[str, Any]]:
        """Pending uploads, one dict each: parent_id, name, size, state, attempts, last_error."""
        with self._lock:
            live = [e for e in self._live.values() if e.dirty]
        return [
            {
                "parent_id": e.parent_id,
                "name": e.name,
                "size": e.size,
                "state": "uploading"
                if e.uploading
                else "failed"
                if e.failures
                else "open"
                if e.writers
                else "queued",
                "attempts": e.failures,
                "last_error": e.last_error or None,
            }
            for e in live
        ]

    def retry_failed(self) -> int:
        """Queue every failed upload for now instead of after its backoff; returns how many."""
        with self._wake:
            failed = [e for e in self._live.values() if e.dirty and e.failures and not e.writers]
            for entry in failed:
                self._set_due(entry.key, 0.0)
            self._wake.notify_all()
        return len(failed)

    def pinned_bytes(self) -> int:
        with self._lock:
            return sum(e.size for e in self._live.values())

    def stats(self) -> dict[str, Any]:
        with self._lock:
            live = list(self._live.values())
            uploaded, conflicts, last_error = self.uploaded, self.conflicts, self.last_error
        return {
            "queued": sum(1 for e in live if e.dirty and e.uploading is None),
            "in_progress": sum(1 for e in live if e.uploading is not None),
            "failed": sum(1 for e in live if e.dirty and e.failures),
            "uploaded": uploaded,
            "conflicts": conflicts,
            "staged_bytes": sum(e.size for e in live),
            "last_error": last_error,
        }

    # -- uploading ----------------------------------------------------------------------------

    def _schedule(self) -> None:
        """Hand due uploads to the pool; every ``SETTLE_EVERY_S``, settle stored ones.

        It wakes at every close, so each pass costs O(due uploads) and settling (which writes
        whole folder listings) is rate-limited: once per close made ``cp -r`` of 1,000 files
        quadratic, a quarter of the daemon's CPU."""
        next_settle = 0.0
        while True:
            with self._wake:
                if self._stopping:
                    return
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    when, key = heapq.heappop(self._heap)
                    if self._due.get(key) != when:
                        continue  # rescheduled or cancelled since
                    del self._due[key]
                    entry = self._live.get(key)  # one still open is queued again by release()
                    if entry is not None and entry.dirty and not entry.writers:
                        self._hand_over(entry)
                wait = (self._heap[0][0] if self._heap else now + 60.0) - now
                if self._settled:
                    wait = min(wait, next_settle - now)
                self._wake.wait(max(0.01, wait))
            if time.monotonic() >= next_settle and self._settled:
                self.settle()
                next_settle = time.monotonic() + SETTLE_EVERY_S

    def _hand_over(self, entry: Entry) -> None:
        """Give a due entry to an upload thread (hold ``_lock``)."""
        if not self._workers:
            for n in range(self._max_workers):
                worker = threading.Thread(target=self._work, name=f"icloudfs-upload-{n}", daemon=True)
                worker.start()
                self._workers.append(worker)
        self._ready.put(entry)

    def _work(self) -> None:
        while (entry := self._ready.get()) is not None:
            if self._stopping:  # queued uploads are dropped on close; they stay journaled
                continue
            try:
                self._upload(entry, raise_errors=False)
            except Exception:  # after the upload (a full disk while journaling): keep the thread
                log.exception("write-back: finishing the upload of %s failed", entry.name)

    def settle(self) -> None:
        """Forget the journal rows of stored files, once their listings are on disk: after a
        crash, a stale persisted listing would make our own upload look like a remote change
        (and the next write a false conflict). A row written again since (the file changed
        once more) differs from the one remembered, so it stays.

        Also called before a file is deleted or renamed, or a crash right after would upload
        it again from its row, bringing back a name the user removed."""
        with self._lock:
            settled, self._settled = self._settled, []
        if not settled:
            return
        self._meta.flush()
        self._journal.forget((e.key, row) for e, row in settled)
        for entry, _ in settled:  # a row is useless without its staged copy: they go together
            with entry.lock:
                entry.settling -= 1
                gone = entry.fd < 0 and not entry.settling
            if gone:
                entry.path.unlink(missing_ok=True)

    def _queue(self, entry: Entry, delay: float, *, backoff: bool = False) -> None:
        """Upload after ``delay`` (at once while draining, unless this is a retry's backoff)."""
        with self._wake:
            if not self._stopping:
                hurry = self._draining and not backoff
                self._set_due(entry.key, time.monotonic() + (0.0 if hurry else delay))
                self._wake.notify_all()

    def _set_due(self, key: str, when: float) -> None:
        """Upload ``key`` at ``when`` (hold ``_lock``)."""
        self._due[key] = when
        heapq.heappush(self._heap, (when, key))

    def _upload(self, entry: Entry, *, raise_errors: bool) -> None:
        with entry.remote_lock:
            with entry.lock:
                if not entry.dirty:
                    return
                generation, source, base = entry.generation, entry.path, entry.base
                parent_id, name, mtime = entry.parent_id, entry.name, entry.mtime
                entry.uploading = source
            try:
                parent = self._meta.folder_item(parent_id)
                stored, conflict = conflicts.store(
                    self._drive,
                    parent,
                    base,
                    name,
                    source,
                    mtime,
                    entry.attempts,
                    resumed=entry.resumed,
                    control=_Control(functools.partial(self._record_attempt, entry)),
                )
            except Exception as error:
                self._failed(entry, error)
                if raise_errors:
                    raise
                return
            self._stored(entry, generation, source, stored, conflict)

    def _record_attempt(self, entry: Entry, digest: str) -> None:
        """Journal the digest of bytes an upload sent, before the request that makes them appear
        (the drive calls this): if we crash after iCloud stored them, the next attempt
        recognises them as ours, not as a conflict. Small files' digests were journaled at close.
        Hashed as the bytes go out, a big file is not read an extra time before its upload
        starts (1 GiB: 0.9 s of SHA-256 here, 10% of its upload on a 1 Gbit/s link)."""
        with entry.lock:
            if digest in entry.attempts:
                return
            _remember(entry, digest)
        self._write_row(entry)

    def _write_row(self, entry: Entry, *, hash_content: bool = False) -> None:
        """Write the entry's row; when the call returns, the row and the staged bytes are on disk
        (a small file's in the row, a bigger one's synced in place). ``hash_content``: remember
        the digest of a small file's bytes too, read once for both."""
        with entry.lock:
            content = os.pread(entry.fd, entry.size, 0) if entry.size <= IN_ROW else None
            if content is None:
                os.fdatasync(entry.fd)
            elif hash_content:
                _remember(entry, hashlib.sha256(content).hexdigest())
            data = self._entry_to(entry)
        self._journal.write(entry.key, data, content)
        with entry.lock:
            entry.journal_row = data

    def _stored(self, entry: Entry, generation: int, source: Path, stored: Item, conflict: bool) -> None:
        with entry.lock:
            before = entry.item()
            entry.uploading = None
            entry.failures = 0
            entry.resumed = False
            entry.base = stored
            entry.stored_generation = generation
            if conflict:
                entry.name = stored.name
            unchanged = entry.path == source and entry.generation == generation
            superseded = entry.path != source
            entry.shared = entry.shared or unchanged  # before the cache may link it
            after = entry.item()
        with self._lock:
            self.uploaded += 1
            self.conflicts += conflict
            self._by_id.pop(before.id, None)
            self._by_id[stored.id] = entry
            if before.id != stored.id and not conflict and not is_local(before):
                if len(self._successors) > 10_000:
                    self._successors.clear()
                self._successors[before.id] = stored
        if superseded:
            source.unlink(missing_ok=True)
        # The listing gets the stored item before the overlay moves to it: the name is never
        # shown absent, even for a moment (a lookup then would leave a negative dentry).
        self._meta.put(entry.parent_id, stored)
        if before.id != stored.id:
            self._meta.remove(entry.parent_id, before)
        self._meta.overlay(entry.parent_id, after)
        if conflict:
            self._meta.clear_overlay(entry.parent_id, before)
            self._meta.invalidate(entry.parent_id)
        if unchanged and not self._content.import_file(stored.docwsid, stored.etag, source):
            with entry.lock:  # copied, or not kept: changes may go in place again
                if entry.path == source and entry.fd >= 0:
                    entry.shared = os.fstat(entry.fd).st_nlink > 1
        if entry.dirty:  # written again during the upload
            with entry.lock:
                entry.journaled_generation = -1
            self.flush(entry)
            if entry.writers == 0:
                self._queue(entry, self.delay)
        else:
            with entry.lock:
                row = entry.journal_row
                entry.settling += 1
            with self._lock:
                self._settled.append((entry, row))
        self._drop_if_done(entry)

    def _failed(self, entry: Entry, error: Exception) -> None:
        with entry.lock:
            entry.uploading = None
            entry.failures += 1
            entry.last_error = f"{type(error).__name__}: {error}"
            backoff = min(_BACKOFF_MAX, _BACKOFF_FIRST * 2 ** (entry.failures - 1))
        with self._lock:
            self.last_error = f"{entry.name}: {entry.last_error}"
        log.warning("upload of %s failed (%s); retrying in %.0f s", entry.name, error, backoff)
        self._queue(entry, backoff, backoff=True)

    # -- internals ----------------------------------------------------------------------------

    def _supersede(self, older: Entry, newer: Entry) -> None:
        """Two rows for one name after a crash: a stored version whose row was not forgotten yet
        and a newer one written over it. Only the newer is uploaded (racing it, the older could
        overwrite it or make it a conflict copy), knowing the older's uploads as ours too."""
        log.info("write-back: %s was journaled twice; resuming the newer version", newer.name)
        merged = [d for d in older.attempts if d not in newer.attempts] + newer.attempts
        newer.attempts = merged[-MAX_ATTEMPTS:]
        self._write_row(newer)  # before the older row goes, so a crash now keeps both digests
        self._journal.delete(older.key)
        os.close(older.fd)

    def _new_entry(self, parent_id: str, name: str, base: Item | None, mtime: float) -> Entry:
        key = uuid.uuid4().hex
        path = self._files / f"{key}.0"
        entry = Entry(key, parent_id, name, base, mtime, path)
        entry.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        return entry

    def _own_copy(self, entry: Entry) -> None:
        """Before changing a file that is being uploaded, or that the content cache shares as
        the block of the version stored, move to a copy (hold ``entry.lock``)."""
        uploading = entry.uploading is not None and entry.uploading == entry.path
        if not uploading and not entry.shared:
            return
        count = int(entry.path.suffix[1:]) + 1
        path = entry.path.with_suffix(f".{count}")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        copied = 0
        while copied < entry.size:
            copied += os.copy_file_range(entry.fd, fd, entry.size - copied, copied, copied)
        os.close(entry.fd)
        if not uploading:  # the stored version lives on as the cache's block, if it took it
            entry.path.unlink(missing_ok=True)
        entry.fd, entry.path, entry.shared = fd, path, False
        entry.journaled_generation = -1

    def _index(self, entry: Entry) -> None:
        """Make the entry live: found by id, and shown in its folder over any listing."""
        item = entry.item()
        with self._lock:
            self._live[entry.key] = entry
            self._by_id[item.id] = entry
        self._meta.overlay(entry.parent_id, item)

    def _drop_if_done(self, entry: Entry) -> None:
        """Forget an entry that is clean (or deleted) and no longer open."""
        with entry.lock:
            if entry.dirty or entry.handles or entry.uploading is not None or entry.fd < 0:
                return
            os.close(entry.fd)
            entry.fd = -1
            path = None if entry.settling else entry.path  # else ``settle`` removes it
            item = entry.item()
        with self._lock:
            self._live.pop(entry.key, None)
            if self._by_id.get(item.id) is entry:
                del self._by_id[item.id]
        self._meta.clear_overlay(entry.parent_id, item)
        if path is not None:
            path.unlink(missing_ok=True)

    def _entry_to(self, entry: Entry) -> str:
        return json.dumps(
            {
                "parent_id": entry.parent_id,
                "name": entry.name,
                "base": None if entry.base is None else item_to_row(entry.base),
                "mtime": entry.mtime,
                "file": entry.path.name,
                "attempts": entry.attempts,
            }
        )

    def _entry_from(self, key: str, data: dict[str, Any]) -> Entry | None:
        path = self._files / data["file"]
        content = self._journal.content(key)
        if content is not None and _restore(path, content):
            log.warning("write-back: %s was cut short by a crash; restored from the journal", data["name"])
        if not path.exists():
            log.error("write-back: staged copy of %s is missing; dropping it", data["name"])
            self._journal.delete(key)
            return None
        base = None if data["base"] is None else item_from_row(data["base"])
        entry = Entry(key, data["parent_id"], data["name"], base, data["mtime"], path)
        entry.attempts = list(data.get("attempts", []))
        entry.resumed = bool(entry.attempts)
        entry.fd = os.open(path, os.O_RDWR)
        status = os.fstat(entry.fd)
        entry.size, entry.shared = status.st_size, status.st_nlink > 1  # linked into the cache
        entry.generation, entry.stored_generation, entry.journaled_generation = 1, 0, 1
        return entry


@dataclass
class _Control:
    """An upload's control: never cancelled; its digest is journaled at the commit."""

    committing: Callable[[str], None]

    def check(self) -> None:
        pass


def _start_write_out(fd: int) -> None:
    """Have the kernel start writing the file's dirty pages to disk, without waiting: close's
    fdatasync then finds most of a big file on disk already (a 1 GiB ``cp`` waited 1.8 s in
    it), instead of the disk idling through the copy and the copy idling through the sync."""
    if _libc.sync_file_range(fd, ctypes.c_int64(0), ctypes.c_int64(0), _SYNC_FILE_RANGE_WRITE) != 0:
        log.debug("sync_file_range: %s", os.strerror(ctypes.get_errno()))


def _restore(path: Path, content: bytes) -> bool:
    """Make the staged copy hold ``content`` (the bytes its row kept) if it is missing or differs;
    True if it had to be written. The copy is replaced, not rewritten: one that is also a
    content-cache block (hard-linked) keeps its bytes."""
    try:
        if path.read_bytes() == content:
            return False
    except FileNotFoundError:
        pass
    fresh = path.with_name(path.name + ".restoring")  # a crash now leaves a stray, removed on start
    with fresh.open("wb") as fh:
        fh.write(content)
        fh.flush()
        os.fdatasync(fh.fileno())
    os.replace(fresh, path)
    return True


def _remember(entry: Entry, digest: str) -> None:
    """Add a digest to the entry's uploads (hold ``entry.lock``)."""
    if digest not in entry.attempts:
        entry.attempts = [*entry.attempts[-(MAX_ATTEMPTS - 1) :], digest]
