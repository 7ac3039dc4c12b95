"""The daemon's memory as glibc keeps it: two malloc arenas, not one per thread.

glibc gives each thread that allocates an arena of its own (up to eight per core), and
libfuse runs up to 64 threads; memory freed after a big walk (listings parsed, answers
built) then stays spread over many arenas and counts in the daemon's RSS (figures in
docs/performance.md). Where libc is not glibc, this does nothing.
"""

from __future__ import annotations

import ctypes

M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h

_mallopt = getattr(ctypes.CDLL(None), "mallopt", None)


def limit_arenas() -> None:
    """Two arenas for the threads started from now on (call before the FUSE loop starts)."""
    if _mallopt is not None:
        _mallopt(M_ARENA_MAX, 2)
