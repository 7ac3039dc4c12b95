"""Cache tests share a counting in-memory drive, and reads into buffers returned as bytes."""

from __future__ import annotations

import pytest

from icloudfs.cache.content import ContentCache
from icloudfs.cache.writeback import FileNode, WriteBack
from icloudfs.drive.memory import MemoryDrive
from tests.support.buffers import filled


@pytest.fixture
def drive() -> MemoryDrive:
    return MemoryDrive()


def read_block(
    cache: ContentCache, docwsid: str, etag: str, index: int, start: int, length: int
) -> bytes | None:
    return filled(length, lambda into: cache.read_into(docwsid, etag, index, start, into))


def read_staged(wb: WriteBack, node: FileNode, offset: int, size: int) -> bytes:
    return filled(size, lambda into: wb.read_into(node, offset, into)) or b""
