"""One mount per cache folder.

The cache folder holds the metadata database, the content blocks and the write-back journal.
Two daemons on one folder would each replay and upload the other's journal entries and evict
each other's blocks; the second is refused instead. The lock is ``flock`` on a file in the
folder: the kernel drops it when the process dies, so a crash never leaves the folder locked.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from icloudfs.errors import IcloudfsError

LOCK_NAME = "lock"


class CacheBusy(IcloudfsError):
    """Another running mount holds this cache folder."""


class CacheLock:
    """Held from the mount's start to its end; ``release`` (or process exit) frees it."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / LOCK_NAME
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(self._fd)
            raise CacheBusy(
                f"the cache folder {folder} is in use by the mount of process {holder}: one cache "
                "and journal serve one mount; give this mount its own with --cache-dir DIR"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
