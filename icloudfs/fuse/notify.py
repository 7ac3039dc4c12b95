"""Telling the kernel to forget names, attributes and pages: libfuse's notify calls, by ctypes.

mfusepy does not wrap them. libfuse's high-level API names things by path
(``fuse_invalidate_path``: a node's attributes and pages, or a folder's listing); dropping a
*name* (``fuse_lowlevel_notify_inval_entry``) needs the folder's node id, which the high-level
API keeps to itself but reports as ``st_ino`` (the mount does not use ``use_ino``). It is read
with ``statx(AT_STATX_DONT_SYNC)``, which the kernel answers from what it holds, without a
request to this process.

libfuse forbids these calls in the path of a request (the kernel may wait on the request
while the call waits on the kernel), so they run in a thread of their own, fed by a queue.
A failure there is logged and the thread goes on: a missed invalidation costs staleness
until the timeout, never data.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import queue
import threading
from collections.abc import Sequence
from posixpath import join

import mfusepy

log = logging.getLogger(__name__)

FUSE_ROOT_ID = 1
_AT_FDCWD = -100
_AT_SYMLINK_NOFOLLOW = 0x100
_AT_STATX_DONT_SYNC = 0x4000
_STATX_INO = 0x100
_STX_INO_OFFSET = 32  # struct statx: mask, blksize, attributes, nlink, uid, gid, mode+pad, ino

_lib = mfusepy._libfuse
_lib.fuse_get_session.restype = ctypes.c_void_p
_lib.fuse_get_session.argtypes = [ctypes.c_void_p]
_lib.fuse_invalidate_path.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
_lib.fuse_lowlevel_notify_inval_entry.argtypes = [
    ctypes.c_void_p,
    ctypes.c_uint64,
    ctypes.c_char_p,
    ctypes.c_size_t,
]
_libc = ctypes.CDLL(None, use_errno=True)
_libc.statx.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]

_Request = tuple[str, tuple[str, ...], bool]


class Forgetter:
    """The ``KernelCache`` of one mount (see the module note)."""

    def __init__(self, mountpoint: str) -> None:
        self._mountpoint = mountpoint
        self._fuse: int | None = None
        self._session: int | None = None
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def attach(self) -> None:
        """Called in libfuse's ``init``, where its context names the mount."""
        self._fuse = mfusepy._libfuse.fuse_get_context().contents.fuse
        self._session = _lib.fuse_get_session(self._fuse)
        self._thread = threading.Thread(target=self._run, name="icloudfs-kernel-notify", daemon=True)
        self._thread.start()

    def forget(self, folder: str, names: Sequence[str], *, contents: bool) -> None:
        if self._thread is not None:
            self._queue.put((folder, tuple(names), contents))

    def close(self) -> None:
        """Stop the thread, before the mount goes (its calls would find no kernel)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while (request := self._queue.get()) is not None:
            try:
                self._forget(*request)
            except Exception:  # a missed invalidation is staleness until the timeout
                log.exception("could not tell the kernel that %s changed", request[0])

    def _forget(self, folder: str, names: tuple[str, ...], contents: bool) -> None:
        if _lib.fuse_invalidate_path(self._fuse, folder.encode()) != 0:
            return  # libfuse has no node for it: the kernel holds nothing there
        parent = self._node_id(folder)
        if parent is None:
            return
        for name in names:
            if contents:
                _lib.fuse_invalidate_path(self._fuse, join(folder, name).encode())
            encoded = name.encode()
            _lib.fuse_lowlevel_notify_inval_entry(self._session, parent, encoded, len(encoded))

    def _node_id(self, folder: str) -> int | None:
        """libfuse's node id of a folder the kernel holds; None if it holds none."""
        if folder == "/":
            return FUSE_ROOT_ID
        buffer = ctypes.create_string_buffer(256)
        path = os.path.join(self._mountpoint, folder.lstrip("/")).encode()
        flags = _AT_SYMLINK_NOFOLLOW | _AT_STATX_DONT_SYNC
        if _libc.statx(_AT_FDCWD, path, flags, _STATX_INO, buffer) != 0:
            code = ctypes.get_errno()
            if code != errno.ENOENT:
                log.debug("statx %s: %s", path, os.strerror(code))
            return None
        return int.from_bytes(buffer.raw[_STX_INO_OFFSET : _STX_INO_OFFSET + 8], "little")
