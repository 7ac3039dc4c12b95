"""Reads that fill a caller's buffer (as FUSE reads do), returned as bytes for assertions."""

from __future__ import annotations

from collections.abc import Callable


def filled(size: int, fill: Callable[[memoryview], int | None]) -> bytes | None:
    """The bytes ``fill`` put into a fresh buffer of ``size``; None when it returned None."""
    buffer = bytearray(size)
    got = fill(memoryview(buffer))
    return None if got is None else bytes(buffer[:got])
