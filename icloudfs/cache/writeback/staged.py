"""Staged copies: a file's local bytes in the cache folder, changed in place at any offset.

A copy is named ``<node key>.<n>``; ``n`` grows each time the copy is forked. A fork (copy on
write) is needed only while something else reads the old bytes: an upload past its commit point
(it may read them again for a conflict copy), or the content cache, which hard-links a stored
small file as its block. Callers hold the node's lock around every call here.

A big copy starts going to disk while it is written (``sync_file_range``, every 8 MiB, without
waiting), so the sync before ``close`` returns finds little left to write.
"""

from __future__ import annotations

import ctypes
import logging
import os
import time
from pathlib import Path

from icloudfs.cache.writeback.node import Staged

log = logging.getLogger(__name__)

WRITE_OUT_EVERY = 8 << 20  # bytes written to a staged copy between starts of its write-out
_SYNC_FILE_RANGE_WRITE = 2
_libc = ctypes.CDLL(None, use_errno=True)


class StagedFiles:
    """The folder of staged copies (private: 0700, copies 0600)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def create(self, key: str, mtime: float) -> Staged:
        """A new, empty copy."""
        path = self.folder / f"{key}.0"
        return Staged(path, os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600), mtime)

    def reopen(self, name: str, mtime: float) -> Staged | None:
        """A copy left by an earlier run (None if it is gone); one linked into the content
        cache is ``shared``."""
        path = self.folder / name
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return None
        status = os.fstat(fd)
        return Staged(path, fd, mtime, size=status.st_size, shared=status.st_nlink > 1)

    def remove_strays(self, known: set[str]) -> None:
        """Delete copies no journal row refers to (a crash left them)."""
        for stray in self.folder.iterdir():
            if stray.name not in known:
                stray.unlink()


def pwrite(staged: Staged, data: bytes, offset: int) -> None:
    """Put bytes of the stored version into a new copy (no change: it stays clean)."""
    os.pwrite(staged.fd, data, offset)


def pread(staged: Staged) -> bytes:
    """The whole copy (a small one, for its journal row)."""
    return os.pread(staged.fd, staged.size, 0)


def datasync(staged: Staged) -> None:
    os.fdatasync(staged.fd)


def links(staged: Staged) -> int:
    """How many names the copy has (more than one: the content cache linked it as a block)."""
    return os.fstat(staged.fd).st_nlink


def write(staged: Staged, offset: int, data: bytes | memoryview) -> int:
    written = os.pwrite(staged.fd, data, offset)
    staged.size = max(staged.size, offset + written)
    _changed(staged)
    staged.unwritten += written
    if staged.unwritten >= WRITE_OUT_EVERY:
        staged.unwritten = 0
        start_write_out(staged.fd)
    return written


def truncate(staged: Staged, length: int) -> None:
    os.ftruncate(staged.fd, length)
    staged.size = length
    _changed(staged)


def read_into(staged: Staged, offset: int, into: memoryview) -> int:
    return os.preadv(staged.fd, [into], offset)


def fork(staged: Staged, *, keep_old: bool) -> None:
    """Go on in a copy of the staged file; the old one stays as it is for whoever reads it, and
    is removed unless ``keep_old`` (an upload still reads it and removes it when done)."""
    count = int(staged.path.suffix[1:]) + 1
    path = staged.path.with_suffix(f".{count}")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    copied = 0
    while copied < staged.size:
        copied += os.copy_file_range(staged.fd, fd, staged.size - copied, copied, copied)
    os.close(staged.fd)
    if not keep_old:
        staged.path.unlink(missing_ok=True)
    staged.fd, staged.path, staged.shared = fd, path, False
    staged.journaled_generation = -1


def close(staged: Staged) -> None:
    """Close the copy; its file goes now, or with its last journal row (``settling``)."""
    close_fd(staged)
    if not staged.settling:
        staged.path.unlink(missing_ok=True)


def close_fd(staged: Staged) -> None:
    """Close the copy's descriptor; the file stays (it may be journaled)."""
    if staged.fd >= 0:
        os.close(staged.fd)
        staged.fd = -1


def start_write_out(fd: int) -> None:
    """Have the kernel start writing the file's dirty pages to disk, without waiting: close's
    fdatasync then finds most of a big file on disk already, instead of the disk idling
    through the copy and the copy idling through the sync."""
    if _libc.sync_file_range(fd, ctypes.c_int64(0), ctypes.c_int64(0), _SYNC_FILE_RANGE_WRITE) != 0:
        log.debug("sync_file_range: %s", os.strerror(ctypes.get_errno()))


def restore(path: Path, content: bytes) -> bool:
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


def _changed(staged: Staged) -> None:
    staged.generation += 1
    staged.mtime = time.time()
