"""Eight corrections to mfusepy 3.1.1's libfuse 3 glue, in one subclass of ``mfusepy.FUSE``.

- ``readdir``: mfusepy fills entries without attributes and with flags 0, so
  ``ls -l`` costs a GETATTR per entry. When the kernel asks for READDIR_PLUS we
  fill every entry with its full ``stat`` and FUSE_FILL_DIR_PLUS; libfuse 3.14
  keeps those attributes only for non-zero offsets, so entry ``i`` carries
  offset ``i + 1`` (which is also where the next call resumes). A plain READDIR
  (the kernel already holds the entries) gets the file type alone, which is all
  libfuse sends. The ``stat`` is filled field by field (``_fill``): mfusepy's
  generic ``set_st_attrs`` was the largest cost of a warm ``find`` (``getattr``
  uses ``_fill`` too).
- ``truncate`` and ``utimens``: mfusepy drops the file handle, so ``ftruncate``
  and ``futimens`` (which the kernel's writeback cache sends on close) would act
  by path, which may name another file by then (renamed or unlinked meanwhile).
- ``rename``: mfusepy drops the flags, which would turn ``RENAME_NOREPLACE``
  into a silent overwrite.
- ``create``: mfusepy calls ``inspect.signature`` on every call to pick the
  operation's arity, 2-3% of the daemon's CPU in ``cp -r`` of small files.
- ``write``: mfusepy copies each request into a new ``bytes`` first; we hand the
  operation a ``memoryview`` of libfuse's own buffer instead (valid only during
  the call, which is all ``os.pwrite`` needs).
- ``read``: mfusepy has the operation return a new ``bytes`` and copies it into
  libfuse's buffer; we hand the operation a ``memoryview`` of that buffer to fill
  and it returns the count, so a cached block goes from its file straight into
  it, with no new 1 MiB object per read (whose pages are faulted in and zeroed
  each time) and one copy fewer: a re-read from the disk cache, page cache
  dropped, 644 -> 687 MB/s (medians of 20 runs interleaved with the old path).
"""

from __future__ import annotations

import ctypes
from typing import Any

import mfusepy

FUSE_READDIR_PLUS = 1
FUSE_FILL_DIR_PLUS = 2


class Fuse(mfusepy.FUSE):  # type: ignore[misc]
    """``mfusepy.FUSE`` with the corrections above; everything else is unchanged."""

    def _decoded(self, path: bytes | None) -> str | None:
        """libfuse passes no path for a file it can no longer name (a handle-only call)."""
        return None if path is None else path.decode(self.encoding, self.errors)

    def readdir_fuse_3(
        self, path: bytes | None, buf: Any, filler: Any, offset: int, fip: Any, flags: int
    ) -> int:
        plus = bool(flags & FUSE_READDIR_PLUS)
        fill_flags = FUSE_FILL_DIR_PLUS if plus else 0
        entries = self.operations.readdir_with_offset(self._decoded(path), offset, fip.contents.fh)
        st = mfusepy.c_stat()
        pointer = ctypes.byref(st)
        for index, (name, attrs) in enumerate(entries, start=offset + 1):
            if plus:
                _fill(st, attrs)
            else:
                st.st_mode = attrs["st_mode"]
            encoded = name.encode(self.encoding, self.errors)
            if filler(buf, encoded, pointer, index, fill_flags) != 0:
                break
        return 0

    def getattr_fuse_3(self, path: bytes | None, buf: Any, fip: Any) -> int:
        fh = fip.contents.fh if fip else None
        attrs = self.operations.getattr(self._decoded(path), fh)
        ctypes.memset(buf, 0, ctypes.sizeof(mfusepy.c_stat))
        _fill(buf.contents, attrs)
        return 0

    def truncate_fuse_3(self, path: bytes | None, length: int, fip: Any) -> int:
        fh = fip.contents.fh if fip else None
        result: int = self.operations.truncate(self._decoded(path), length, fh)
        return result

    def utimens_fuse_3(self, path: bytes | None, buf: Any, fip: Any) -> int:
        times = None
        if buf:
            times = (
                mfusepy.time_of_timespec(buf.contents.actime, use_ns=True),
                mfusepy.time_of_timespec(buf.contents.modtime, use_ns=True),
            )
        fh = fip.contents.fh if fip else None
        result: int = self.operations.utimens(self._decoded(path), times, fh)
        return result

    def create(self, path: bytes, mode: int, fip: Any) -> int:
        info = fip.contents
        info.fh = self.operations.create(path.decode(self.encoding, self.errors), mode, info.flags)
        return 0

    def write(self, path: bytes | None, buf: Any, size: int, offset: int, fip: Any) -> int:
        result: int = self.operations.write(self._decoded(path), _view(buf, size), offset, fip.contents.fh)
        return result

    def read(self, path: bytes | None, buf: Any, size: int, offset: int, fip: Any) -> int:
        into = _view(buf, size)
        result: int = self.operations.read(self._decoded(path), into, offset, fip.contents.fh)
        return result

    def rename_fuse_3(self, old: bytes, new: bytes, flags: int) -> int:
        result: int = self.operations.rename(
            old.decode(self.encoding, self.errors), new.decode(self.encoding, self.errors), flags
        )
        return result


def _fill(st: Any, attrs: dict[str, Any]) -> None:
    """``attrs`` (as ``fs.attrs`` makes them: times in ns) into a ``struct stat``."""
    st.st_mode = attrs["st_mode"]
    st.st_nlink = attrs["st_nlink"]
    st.st_size = attrs["st_size"]
    st.st_blocks = attrs["st_blocks"]
    st.st_blksize = attrs["st_blksize"]
    st.st_uid = attrs["st_uid"]
    st.st_gid = attrs["st_gid"]
    for field in ("st_atimespec", "st_mtimespec", "st_ctimespec"):
        spec = getattr(st, field)
        spec.tv_sec, spec.tv_nsec = divmod(attrs[field[:-4]], 1_000_000_000)


def _view(buf: Any, size: int) -> memoryview:
    """libfuse's buffer as bytes (format ``B``, so slices can be assigned), valid during the call."""
    return memoryview((ctypes.c_char * size).from_address(ctypes.addressof(buf.contents))).cast("B")
