"""How long a drive call may keep trying, said by the caller that knows.

A backend retries a failing call for a while (``ICloudDrive``: up to 30 s while iCloud is
unreachable), which is right when nothing else can answer: an uncached read, an upload. A caller
that holds a cached answer (a listing past its TTL, revalidated) is better served by one
attempt and its cache: ``with impatient(): drive.list_folders(...)``. A context variable, so
the ``Drive`` protocol keeps its signatures and a backend without retries ignores it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_impatient: ContextVar[bool] = ContextVar("icloudfs_impatient", default=False)


@contextmanager
def impatient() -> Iterator[None]:
    """Drive calls made inside try once: the caller has a cached answer to fall back on."""
    token = _impatient.set(True)
    try:
        yield
    finally:
        _impatient.reset(token)


def is_impatient() -> bool:
    return _impatient.get()
