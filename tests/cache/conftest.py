"""Cache tests share a counting in-memory drive, and reads into buffers returned as bytes."""

from __future__ import annotations

import pytest

from icloudfs.cache.content import ContentCache
from icloudfs.cache.writeback import Entry, WriteBack
from icloudfs.drive.memory import MemoryDrive


@pytest.fixture
def drive() -> MemoryDrive:
    return MemoryDrive()


def read_block(
    cache: ContentCache, docwsid: str, etag: str, index: int, start: int, length: int
) -> bytes | None:
    buffer = bytearray(length)
    got = cache.read_into(docwsid, etag, index, start, memoryview(buffer))
    return None if got is None else bytes(buffer[:got])


def read_staged(wb: WriteBack, entry: Entry, offset: int, size: int) -> bytes:
    buffer = bytearray(size)
    return bytes(buffer[: wb.read_into(entry, offset, memoryview(buffer))])
