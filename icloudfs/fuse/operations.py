"""The FUSE operations: each delegates to ``Filesystem`` in a line or two.

Every operation runs through ``_op``, which counts and times it (for
``/metrics``), and on failure asks ``errno_map`` for the errno (logging once,
with the path) and raises it to mfusepy. Beware: mfusepy registers any attribute whose name is a FUSE
operation (``lock``, ``flush``, ``ioctl``...), so helpers here start with ``_``.

``init_with_config`` sets what the measurements showed to matter: kernel page
cache kept across opens unless size/mtime changed (``auto_cache``); attribute and
entry timeouts as long as the metadata TTL, so warm walks and ``git status`` are the
kernel's alone (``notify`` makes it forget what changed meanwhile); and room for 64
background requests so read-ahead runs in parallel.

``hard_remove`` stays off: with it libfuse forgets a file unlinked while open,
and ``fstat`` on its descriptor fails with ESTALE (the kernel asks by inode,
without the handle). Without it libfuse renames such a file to
``.fuse_hidden…`` and unlinks that name at the last close; the filesystem
treats that rename as the unlink (local, no round trip; see ``fs/namespace``).

The kernel's writeback cache (small writes ~7x faster) is opt-in: with it the
kernel trusts its own size for a cached file and ignores ours, so a file
changed by another device reads back cut to its old length (measured on kernel
6.18: a remote 6 -> 29 byte change read as 6 bytes). It is safe only when this
mount is the drive's only writer.

There are no extended-attribute operations: libfuse answers ENOSYS for them,
which the kernel remembers and turns into ENOTSUP for the caller. An ENOTSUP of
our own was asked again every time, and the kernel asks for
``security.capability`` before every write(2): one more round trip through this
process per write (a 1 GiB ``cp`` returned ~19% sooner without them).
"""

from __future__ import annotations

import errno
import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import mfusepy

from icloudfs.fs import errno_map
from icloudfs.fs.core import Filesystem
from icloudfs.fs.kernel import answering
from icloudfs.fuse.notify import Forgetter
from icloudfs.metrics import FuseMetrics

log = logging.getLogger(__name__)

FUSE_CAP_WRITEBACK_CACHE = 1 << 16

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _op(
    method: Callable[Concatenate[Operations, _P], _R],
) -> Callable[Concatenate[Operations, _P], _R]:
    """Count and time the call; turn any failure into the one errno ``errno_map`` chooses."""
    name = method.__name__

    @functools.wraps(method)
    def run(self: Operations, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        started = time.perf_counter()
        token = answering.set(True)
        try:
            result = method(self, *args, **kwargs)
        except Exception as error:
            elapsed = time.perf_counter() - started
            code = errno_map.failure(name, str(args[0]) if args else None, error)
            code_name = errno.errorcode.get(code, str(code))
            self._metrics.observe(name, elapsed, code_name)
            raise mfusepy.FuseOSError(code) from None
        finally:
            answering.reset(token)
        self._metrics.observe(name, time.perf_counter() - started)
        return result

    return run


class Operations(mfusepy.Operations):  # type: ignore[misc]
    """mfusepy callbacks for one ``Filesystem``."""

    use_ns = True

    def __init__(
        self,
        fs: Filesystem,
        metrics: FuseMetrics,
        *,
        kernel_ttl: float = 1.0,
        writeback_cache: bool = False,
        forgetter: Forgetter | None = None,
    ) -> None:
        self._fs = fs
        self._forgetter = forgetter
        self._metrics = metrics
        self._kernel_ttl = kernel_ttl
        self._writeback_cache = writeback_cache
        self._initialized = threading.Event()

    def _wait_initialized(self, timeout: float) -> bool:
        return self._initialized.wait(timeout)

    def init_with_config(self, conn: Any, config: Any) -> None:
        config.kernel_cache = 0
        config.auto_cache = 1
        config.attr_timeout = config.entry_timeout = self._kernel_ttl
        config.negative_timeout = min(self._kernel_ttl, self._fs.negative_ttl)
        if self._writeback_cache and conn.capable & FUSE_CAP_WRITEBACK_CACHE:
            conn.want |= FUSE_CAP_WRITEBACK_CACHE
        conn.max_readahead = 1 << 20
        conn.max_background = 64
        conn.congestion_threshold = 48
        if self._forgetter is not None:
            self._forgetter.attach()
            self._fs.kernel = self._forgetter
        self._initialized.set()

    @_op
    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, Any]:
        return self._fs.getattr(path, fh)

    @_op
    def opendir(self, path: str) -> int:
        return self._fs.opendir(path)

    @_op
    def readdir_with_offset(self, path: str, offset: int, fh: int) -> list[tuple[str, Any]]:
        return self._fs.readdir(fh, offset)

    @_op
    def releasedir(self, path: str, fh: int) -> int:
        self._fs.releasedir(fh)
        return 0

    @_op
    def statfs(self, path: str) -> dict[str, int]:
        return self._fs.statfs()

    @_op
    def open(self, path: str, flags: int) -> int:
        return self._fs.open(path, flags)

    @_op
    def create(self, path: str, mode: int, flags: int) -> int:
        return self._fs.create(path, flags)

    @_op
    def read(self, path: str | None, into: memoryview, offset: int, fh: int) -> int:
        """Fill libfuse's buffer (see ``binding``); the bytes read."""
        return self._fs.read_into(fh, into, offset)

    @_op
    def write(self, path: str | None, data: bytes | memoryview, offset: int, fh: int) -> int:
        return self._fs.write(fh, data, offset)

    @_op
    def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
        self._fs.truncate(path, length, fh)
        return 0

    @_op
    def flush(self, path: str | None, fh: int) -> int:
        self._fs.flush(fh)
        return 0

    @_op
    def fsync(self, path: str | None, datasync: int, fh: int) -> int:
        self._fs.fsync(fh)
        return 0

    @_op
    def release(self, path: str | None, fh: int) -> int:
        self._fs.release(fh)
        return 0

    @_op
    def mkdir(self, path: str, mode: int) -> int:
        self._fs.mkdir(path)
        return 0

    @_op
    def unlink(self, path: str) -> int:
        self._fs.unlink(path)
        return 0

    @_op
    def rmdir(self, path: str) -> int:
        self._fs.rmdir(path)
        return 0

    @_op
    def rename(self, old: str, new: str, flags: int = 0) -> int:
        self._fs.rename(old, new, flags)
        return 0

    @_op
    def utimens(self, path: str | None, times: tuple[int, int] | None = None, fh: int | None = None) -> int:
        self._fs.utimens(path, times, fh)
        return 0

    @_op
    def chmod(self, path: str | None, mode: int) -> int:
        self._fs.ignore_mode_change(path)
        return 0

    @_op
    def chown(self, path: str | None, uid: int, gid: int) -> int:
        self._fs.ignore_mode_change(path)
        return 0

    @_op
    def link(self, target: str, source: str) -> int:
        self._fs.link()
        return 0

    @_op
    def symlink(self, target: str, source: str) -> int:
        self._fs.symlink()
        return 0

    @_op
    def mknod(self, path: str, mode: int, dev: int) -> int:
        self._fs.mknod()
        return 0

    @_op
    def readlink(self, path: str) -> str:
        return self._fs.readlink(path)
