"""When uploads run: a heap of due node keys, one scheduler thread, a pool of upload threads.

A node is due ``delay`` seconds after its last close (so a burst of writes, or an editor's save
dance, costs one upload), at once while draining, or after its backoff when an upload failed.
The scheduler hands each due node to ``start`` (which makes its upload job, or says it cannot
run now: still open, renamed right now, already uploading) and gives the jobs to the upload
threads through a plain queue, not an executor: a future per upload cost 5% of the daemon's CPU
in ``cp -r`` of small files. Every ``SETTLE_EVERY_S`` it calls ``settle``.

Neither the scheduler nor an upload thread ever ends on an error: each pass is guarded, the
error logged once per kind and kept as ``trouble`` (shown in ``status``), and the work tried
again after a pause. A full cache disk, for one, stops the journal and the listings from being
written; once there is room again everything goes on by itself.
"""

from __future__ import annotations

import heapq
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable

from icloudfs.cache.writeback.node import FileNode, Job

log = logging.getLogger(__name__)

SETTLE_EVERY_S = 0.2  # how long stored files' journal rows may wait to be forgotten together
TROUBLE_PAUSE_S = 1.0  # how long the scheduler waits after a pass failed


class UploadQueue:
    """Due times, the scheduler thread and the upload threads. See the module note."""

    def __init__(
        self,
        *,
        workers: int,
        find: Callable[[str], FileNode | None],
        start: Callable[[FileNode], Job | None],
        run: Callable[[FileNode, Job], None],
        settle: Callable[[], None],
        settling: Callable[[], bool],
        trouble: Callable[[str, BaseException | None], None],
    ) -> None:
        self._find, self._start, self._run = find, start, run
        self._settle, self._settling, self._trouble = settle, settling, trouble
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._due: dict[str, float] = {}  # node key -> monotonic time to upload
        self._heap: list[tuple[float, str]] = []  # the same, soonest first (stale pairs skipped)
        self._ready: queue.SimpleQueue[tuple[FileNode, Job] | None] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        self._max_workers = workers
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._draining = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._schedule, name="icloudfs-writeback", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop scheduling, let the upload threads finish what they hold, and stop them."""
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join()
        for _ in self._workers:
            self._ready.put(None)
        for worker in self._workers:
            worker.join()

    # -- due times ----------------------------------------------------------------------------

    def due(self, node: FileNode, delay: float, *, backoff: bool = False) -> None:
        """Upload ``node`` after ``delay`` (at once while draining, unless this is a backoff)."""
        with self._wake:
            if not self._stopping:
                hurry = self._draining and not backoff
                self._set_due(node.key, time.monotonic() + (0.0 if hurry else delay))
                self._wake.notify_all()

    def now(self, keys: Iterable[str]) -> None:
        """Make these due at once."""
        with self._wake:
            for key in keys:
                self._set_due(key, 0.0)
            self._wake.notify_all()

    def cancel(self, key: str) -> None:
        with self._lock:
            self._due.pop(key, None)

    def drain(self, keys: Iterable[str]) -> None:
        """Until ``undrain``, files closed are due at once; these are due now."""
        with self._wake:
            self._draining += 1
        self.now(keys)

    def undrain(self) -> None:
        with self._wake:
            self._draining -= 1

    # -- threads ------------------------------------------------------------------------------

    def _schedule(self) -> None:
        """Hand due nodes to the upload threads; every ``SETTLE_EVERY_S``, settle stored ones.

        It wakes at every close, so each pass costs O(due uploads), and settling (which writes
        whole folder listings) is rate-limited: once per close made ``cp -r`` quadratic."""
        next_settle = 0.0
        while True:
            with self._wake:
                if self._stopping:
                    return
                now = time.monotonic()
                due = self._pop_due(now)
                if not due and (now < next_settle or not self._settling()):
                    until = self._heap[0][0] if self._heap else now + 60.0
                    if self._settling():
                        until = min(until, next_settle)
                    self._wake.wait(max(0.01, until - now))
                    continue
            try:
                for key in due:
                    node = self._find(key)
                    job = None if node is None else self._start(node)
                    if node is not None and job is not None:
                        self._hand_over(node, job)
                if time.monotonic() >= next_settle and self._settling():
                    next_settle = time.monotonic() + SETTLE_EVERY_S
                    self._settle()
                self._trouble("scheduling", None)
            except Exception as error:
                self._trouble("scheduling", error)
                with self._wake:
                    self._wake.wait(TROUBLE_PAUSE_S)

    def _pop_due(self, now: float) -> list[str]:
        """Keys due by ``now`` (hold ``_lock``)."""
        due: list[str] = []
        while self._heap and self._heap[0][0] <= now:
            when, key = heapq.heappop(self._heap)
            if self._due.get(key) == when:  # else rescheduled or cancelled since
                del self._due[key]
                due.append(key)
        return due

    def _set_due(self, key: str, when: float) -> None:
        """(hold ``_lock``)"""
        self._due[key] = when
        heapq.heappush(self._heap, (when, key))

    def _hand_over(self, node: FileNode, job: Job) -> None:
        with self._lock:
            if not self._workers:
                for n in range(self._max_workers):
                    worker = threading.Thread(target=self._work, name=f"icloudfs-upload-{n}", daemon=True)
                    worker.start()
                    self._workers.append(worker)
        self._ready.put((node, job))

    def wake(self) -> None:
        """Something is waiting to be settled: look within ``SETTLE_EVERY_S``."""
        with self._wake:
            self._wake.notify_all()

    def _work(self) -> None:
        while (handed := self._ready.get()) is not None:
            node, job = handed
            if self._stopping:  # handed over just before the close: it stays journaled
                job.cancelled = job.cancelled or "unmounting"
            try:
                self._run(node, job)
            except Exception:  # ``run`` keeps its own books; this is a bug: log it, keep the thread
                log.exception("write-back: the upload of %s ended in an unexpected error", node.name)
