"""Serving reads from the block cache, fetching what is missing, ahead of a sequential reader.

A read needs the blocks that cover it; cached ones are read from disk (only the
slice asked for, straight into the caller's buffer), missing ones are fetched as
ranged reads, in parallel, and stored. Concurrent readers of one block share one
fetch, so two processes reading the same file cost one download.

Each open file has a ``ReadStream`` that decides how far to read ahead:

- A read that starts where the previous one ended (give or take one window, as
  the kernel's readahead requests arrive out of order from several threads) is
  sequential. The window starts at one block and doubles on every sequential
  read up to ``max_window``; blocks in ``[end, end + window)`` are fetched in the
  background, each as its own ranged request, so a long read keeps several
  requests in flight.
- Any other read is random: the window collapses and only the blocks under the
  request are fetched, so a seek into a large file never drags the whole file in.
- When a read has to wait for its own blocks, its read-ahead is sent once they
  have arrived, so they do not share the link with it (the first read of a file
  answers in one block's time, not two).
- A block fetched for a waiting read is handed over as it arrives (``_Arrival``):
  a read of a file's first bytes returns after a round trip and a few KiB, not
  once the whole block is in (a 1 MiB block takes 42 ms at 25 MB/s).

Demand fetches and read-ahead use separate thread pools, so a burst of
read-ahead never queues in front of a read someone is waiting for; a demand
read that finds its block queued for read-ahead takes it over.

``_lock`` guards the in-flight table (and may take the content cache's lock
inside it); streams are per handle and guarded by their own small lock.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from icloudfs.cache.content import ContentCache
from icloudfs.drive.protocol import Drive
from icloudfs.drive.types import Item

log = logging.getLogger(__name__)

_BlockKey = tuple[str, str, int]  # docwsid, etag, index


class _Arrival:
    """The bytes of a block download so far, for reads that want only its front."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._over = False
        self._changed = threading.Condition()

    def add(self, position: int, piece: bytes) -> None:
        with self._changed:
            if position <= len(self._data):  # in order; a retry sends the front again
                self._data[position : position + len(piece)] = piece
                self._changed.notify_all()

    def end(self) -> None:
        with self._changed:
            self._over = True
            self._changed.notify_all()

    def take(self, start: int, stop: int) -> bytes | None:
        """Bytes ``[start, stop)`` once they are in; None if the download ended without them."""
        with self._changed:
            self._changed.wait_for(lambda: len(self._data) >= stop or self._over)
            return bytes(self._data[start:stop]) if len(self._data) >= stop else None


@dataclass
class ReadStream:
    """Read-ahead state of one open file."""

    next_offset: int = 0
    window: int = 0
    ahead_until: int = 0  # read-ahead has been scheduled up to this byte
    lock: threading.Lock = field(default_factory=threading.Lock)


class Reader:
    """Reads file content through the block cache. See the module note."""

    def __init__(
        self,
        drive: Drive,
        cache: ContentCache,
        *,
        workers: int = 64,
        ahead_workers: int = 16,
        max_window: int = 64 << 20,
    ) -> None:
        self._drive = drive
        self._cache = cache
        self.block_size = cache.block_size
        self.max_window = max(self.block_size, min(max_window, cache.limit // 4))
        self._demand = ThreadPoolExecutor(workers, thread_name_prefix="icloudfs-read")
        self._ahead = ThreadPoolExecutor(ahead_workers, thread_name_prefix="icloudfs-ahead")
        self._lock = threading.Lock()
        self._inflight: dict[_BlockKey, tuple[Future[bytes], _Arrival | None]] = {}  # None: read-ahead

    def read_into(self, item: Item, offset: int, into: memoryview, stream: ReadStream) -> int:
        """Fill ``into`` with this version of ``item`` from ``offset``; the bytes read (short at EOF)."""
        end = min(offset + len(into), item.size)
        if offset >= end:
            return 0
        ahead = self._plan_ahead(item, offset, end, stream)
        bs = self.block_size
        first, last = offset // bs, (end - 1) // bs
        pending: list[tuple[int, int, int, Future[bytes], _Arrival | None]] = []  # at, start, stop
        for index in range(first, last + 1):
            start, stop = self._span(index, offset, end)
            at = index * bs + start - offset  # where the block's part goes in ``into``
            part = into[at : at + stop - start]
            if self._cache.read_into(item.docwsid, item.etag, index, start, part) != len(part):
                pending.append((at, start, stop, *self._fetch(item, index)))
        if ahead is not None:
            if pending:  # the reader waits for these: let them have the link to themselves
                pending[-1][3].add_done_callback(lambda _: self._schedule_ahead(item, end, *ahead))
            else:
                self._schedule_ahead(item, end, *ahead)
        for at, start, stop, future, arrival in pending:
            piece = arrival.take(start, stop) if arrival is not None else None
            if piece is None:
                piece = future.result()[start:stop]
            into[at : at + len(piece)] = piece
            if len(piece) < stop - start:  # the remote file is shorter than its listing said
                return at + len(piece)
        return end - offset

    def fetch_blocks(self, item: Item, length: int) -> list[Future[bytes]]:
        """The blocks covering ``[0, length)``, fetched in parallel (to stage a file for writing)."""
        count = (min(length, item.size) + self.block_size - 1) // self.block_size
        return [self._block(item, index)[0] for index in range(count)]

    def close(self) -> None:
        self._ahead.shutdown(wait=False, cancel_futures=True)
        self._demand.shutdown(wait=True, cancel_futures=True)

    # -- internals ----------------------------------------------------------------------------

    def _span(self, index: int, offset: int, end: int) -> tuple[int, int]:
        """The part of block ``index`` that ``[offset, end)`` covers, relative to the block."""
        bs = self.block_size
        return max(offset - index * bs, 0), min(end - index * bs, bs)

    def _block(self, item: Item, index: int) -> tuple[Future[bytes], _Arrival | None]:
        """One whole block, from the cache or fetched."""
        length = min(self.block_size, item.size - index * self.block_size)
        cached = bytearray(length)
        if self._cache.read_into(item.docwsid, item.etag, index, 0, memoryview(cached)) == length:
            done: Future[bytes] = Future()
            done.set_result(bytes(cached))
            return done, None
        return self._fetch(item, index)

    def _plan_ahead(self, item: Item, offset: int, end: int, stream: ReadStream) -> tuple[int, int] | None:
        """Update the stream's window; the byte range to read ahead, if any."""
        with stream.lock:
            sequential = abs(offset - stream.next_offset) <= max(stream.window, self.block_size)
            if (sequential and offset > 0) or offset == 0 == stream.next_offset:
                stream.window = min(max(stream.window * 2, self.block_size), self.max_window)
            else:
                stream.window = 0
                stream.ahead_until = 0
            stream.next_offset = max(end, stream.next_offset) if sequential else end
            if not stream.window:
                return None
            start = max(end, stream.ahead_until)
            stop = min(end + stream.window, item.size)
            stream.ahead_until = max(stream.ahead_until, stop)
        return (start, stop) if start < stop else None

    def _schedule_ahead(self, item: Item, end: int, start: int, stop: int) -> None:
        bs = self.block_size
        for index in range(start // bs, (stop + bs - 1) // bs):
            if index * bs >= end:  # blocks under the request are fetched on demand
                self._fetch_ahead(item, index)

    def _fetch(self, item: Item, index: int) -> tuple[Future[bytes], _Arrival | None]:
        """Start (or join) the download of a block the caller did not find in the cache."""
        key = (item.docwsid, item.etag, index)
        with self._lock:
            existing = self._inflight.get(key)
            if existing is not None:
                future, arrival = existing
                if arrival is not None or not future.cancel():
                    return existing  # running, or queued for a reader: share it
            if not self._cache.contains(*key):
                return self._start(key, item, index, ahead=False)
        return self._block(item, index)  # it landed between the caller's look and now

    def _fetch_ahead(self, item: Item, index: int) -> None:
        key = (item.docwsid, item.etag, index)
        with self._lock:
            if key in self._inflight:
                return
            if not self._cache.contains(*key):
                self._start(key, item, index, ahead=True)
                return
        self._ahead.submit(self._cache.will_need, *key)

    def _start(
        self, key: _BlockKey, item: Item, index: int, *, ahead: bool
    ) -> tuple[Future[bytes], _Arrival | None]:
        """Submit a download (hold ``_lock``); a reader waits on this one, unless ``ahead``."""
        arrival = None if ahead else _Arrival()
        future = (self._ahead if ahead else self._demand).submit(self._download, item, index, arrival)
        if arrival is not None:
            future.add_done_callback(lambda _: arrival.end())  # also when cancelled at close
        self._inflight[key] = (future, arrival)
        return future, arrival

    def _download(self, item: Item, index: int, arrival: _Arrival | None) -> bytes:
        key = (item.docwsid, item.etag, index)
        try:
            offset = index * self.block_size
            length = min(self.block_size, item.size - offset)
            data = self._drive.read(item, offset, length, arrival.add if arrival else None)
            self._cache.put(item.docwsid, item.etag, index, data)
            return data
        except Exception as error:
            log.debug("block %d of %s: %s", index, item.name, error)
            raise
        finally:
            with self._lock:
                self._inflight.pop(key, None)
