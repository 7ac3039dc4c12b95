"""Forgetting the journal rows of stored files, in batches, once their listings are on disk.

After a crash a stale persisted listing would make our own upload look like a remote change
(and the next write a false conflict), so a stored file's row goes only after the listing that
shows the stored version is written. A row written again since (the file changed once more)
differs from the one remembered, so it stays. A row and its staged copy go together: the copy
is removed when its last row is forgotten and its node has closed it. On failure (a full cache
disk) the rows are kept, and forgotten by a later settle.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from icloudfs.cache.metadata import MetadataCache
from icloudfs.cache.writeback.health import Troubles
from icloudfs.cache.writeback.journal import Journal
from icloudfs.cache.writeback.node import FileNode


class Settler:
    """The rows of stored files waiting to be forgotten. See the module note."""

    def __init__(self, meta: MetadataCache, journal: Journal, troubles: Troubles) -> None:
        self._meta, self._journal, self._troubles = meta, journal, troubles
        self._lock = threading.Lock()
        self._settling = threading.Lock()  # one settle at a time (a caller may wait for it)
        self._rows: list[tuple[FileNode, str]] = []
        self.wake: Callable[[], None] = lambda: None  # the scheduler, told that rows wait

    def add(self, node: FileNode) -> None:
        """The node's staged version is stored: forget its row at the next settle."""
        with node.lock:
            copy = node.staged
            assert copy is not None
            copy.settling += 1
            row = copy.journal_row
        with self._lock:
            first = not self._rows
            self._rows.append((node, row))
        if first:  # the scheduler looks within SETTLE_EVERY_S once rows wait
            self.wake()

    def pending(self) -> bool:
        return bool(self._rows)

    def settle(self) -> None:
        """Forget the rows added so far (waiting for a settle under way); raises what failed."""
        with self._settling:
            with self._lock:
                rows, self._rows = self._rows, []
            if not rows:
                return
            try:
                self._meta.flush()
                self._journal.forget((node.key, row) for node, row in rows)
            except BaseException as error:
                with self._lock:
                    self._rows[:0] = rows
                self._troubles.report("settling", error)
                raise
        self._troubles.report("settling", None)
        for node, _ in rows:
            with node.lock:
                copy = node.staged
                assert copy is not None
                copy.settling -= 1
                gone = copy.fd < 0 and not copy.settling
            if gone:
                copy.path.unlink(missing_ok=True)
