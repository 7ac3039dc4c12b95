"""Reader: block-aligned fetches, shared in-flight blocks, read-ahead only for sequential reads."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path

import pytest

from icloudfs.cache.content import ContentCache
from icloudfs.cache.reader import Reader, ReadStream
from icloudfs.drive.memory import MemoryDrive
from icloudfs.drive.protocol import Arrived
from icloudfs.drive.types import Item
from icloudfs.errors import Unavailable
from tests.support.buffers import filled

BLOCK = 1 << 20


def _reader(tmp_path: Path, drive: MemoryDrive, limit: int = 256 << 20) -> Reader:
    return Reader(drive, ContentCache(tmp_path, limit), max_window=8 << 20)


def _read(reader: Reader, item: Item, offset: int, size: int, stream: ReadStream) -> bytes:
    return filled(size, lambda into: reader.read_into(item, offset, into, stream)) or b""


def _wait_for(condition: object, timeout: float = 5.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_random_reads_fetch_only_the_blocks_under_them(tmp_path: Path, drive: MemoryDrive) -> None:
    data = os.urandom(40 * BLOCK)
    item = drive.add_file("f", data)
    reader = _reader(tmp_path, drive)
    for offset in (30 * BLOCK + 5, 3 * BLOCK + 7, 17 * BLOCK - 100):
        assert _read(reader, item, offset, 4096, ReadStream()) == data[offset : offset + 4096]
    time.sleep(0.1)
    assert drive.calls["read"] == 4  # the last read straddles two blocks
    reader.close()


def test_sequential_reads_grow_a_read_ahead_window(tmp_path: Path, drive: MemoryDrive) -> None:
    data = os.urandom(32 * BLOCK)
    item = drive.add_file("f", data)
    reader = _reader(tmp_path, drive)
    stream = ReadStream()
    chunk = 128 << 10
    for offset in range(0, 4 * BLOCK, chunk):
        assert _read(reader, item, offset, chunk, stream) == data[offset : offset + chunk]
    assert stream.window == 8 << 20  # doubled up to the maximum
    _wait_for(lambda: drive.calls["read"] >= 12)
    assert 12 <= drive.calls["read"] <= 13  # four read + up to eight ahead, nothing twice
    before = drive.calls["read"]
    assert _read(reader, item, 5 * BLOCK, chunk, stream) == data[5 * BLOCK : 5 * BLOCK + chunk]
    _wait_for(lambda: drive.calls["read"] >= before + 2)
    assert drive.calls["read"] == before + 2  # block 5 was ahead already; the window slides by 2
    reader.close()


def test_concurrent_readers_share_one_download(tmp_path: Path, drive: MemoryDrive) -> None:
    data = os.urandom(BLOCK)
    item = drive.add_file("f", data)
    drive.latency = 0.1
    reader = _reader(tmp_path, drive)
    results: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: results.append(_read(reader, item, 0, BLOCK, ReadStream())))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [data] * 8
    assert drive.calls["read"] == 1
    reader.close()


class _FrontFirst(MemoryDrive):
    """Hands over the first 64 KiB of a read at once, and the rest once ``release`` is set
    (or fails then, with ``fail``): a slow link in the middle of a block."""

    FRONT = 64 << 10

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.fail = False

    def read(self, item: Item, offset: int, length: int, arrived: Arrived | None = None) -> bytes:
        data = super().read(item, offset, length)
        if arrived is not None:
            arrived(0, data[: self.FRONT])
        assert self.release.wait(10)
        if self.fail:
            raise Unavailable("connection cut mid-body")
        if arrived is not None:
            arrived(0, data[: self.FRONT])  # a retry starts again from the front
            arrived(self.FRONT, data[self.FRONT :])
        return data


def _in_thread(call: object) -> tuple[threading.Thread, list[object]]:
    assert callable(call)
    out: list[object] = []

    def run() -> None:
        try:
            out.append(call())
        except Exception as error:
            out.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


@pytest.mark.parametrize("fail", [False, True])
def test_a_read_of_a_blocks_front_returns_before_the_rest_arrives(tmp_path: Path, fail: bool) -> None:
    drive = _FrontFirst()
    data = os.urandom(BLOCK)
    item = drive.add_file("f", data)
    drive.fail = fail
    reader = _reader(tmp_path, drive)
    front, got_front = _in_thread(lambda: _read(reader, item, 0, 4096, ReadStream()))
    front.join(5)
    assert got_front == [data[:4096]], "the first bytes came while the block was still arriving"
    back, got_back = _in_thread(lambda: _read(reader, item, BLOCK - 4096, 4096, ReadStream()))
    back.join(0.2)
    assert back.is_alive(), "bytes not yet in are waited for"
    drive.release.set()
    back.join(5)
    if fail:
        assert isinstance(got_back[0], Unavailable)
        assert not reader._cache.contains(item.docwsid, item.etag, 0)
    else:
        assert got_back == [data[-4096:]]
        _wait_for(lambda: reader._cache.contains(item.docwsid, item.etag, 0))
        assert _read(reader, item, 0, BLOCK, ReadStream()) == data
    assert drive.calls["read"] == 1
    reader.close()


def test_reads_stop_at_the_end_of_the_file(tmp_path: Path, drive: MemoryDrive) -> None:
    item = drive.add_file("f", b"short")
    reader = _reader(tmp_path, drive)
    assert _read(reader, item, 2, 100, ReadStream()) == b"ort"
    assert _read(reader, item, 5, 100, ReadStream()) == b""
    reader.close()


def test_a_read_over_a_cached_and_a_missing_block_fills_each_part_in_place(
    tmp_path: Path, drive: MemoryDrive
) -> None:
    """The cached block goes straight into the caller's buffer, the fetched one after it."""
    data = os.urandom(3 * BLOCK)
    item = drive.add_file("f", data)
    reader = _reader(tmp_path, drive)
    reader.fetch_blocks(item, BLOCK)[0].result()  # block 0 cached, blocks 1 and 2 not
    buffer = bytearray(b"\xff" * (BLOCK + 8192))
    far = ReadStream(next_offset=100 * BLOCK)  # a random read: no read-ahead to count
    got = reader.read_into(item, BLOCK - 4096, memoryview(buffer)[:8192], far)
    assert got == 8192
    assert buffer[:8192] == data[BLOCK - 4096 : BLOCK + 4096]
    assert buffer[8192:] == b"\xff" * BLOCK, "nothing written past the part asked for"
    assert drive.calls["read"] == 2
    reader.close()


def test_a_remote_file_shorter_than_its_listing_reads_short(tmp_path: Path, drive: MemoryDrive) -> None:
    """The count returned covers only bytes that arrived: the rest of the buffer is not data."""
    data = os.urandom(BLOCK + 100)
    listed = dataclasses.replace(drive.add_file("f", data), size=2 * BLOCK)
    reader = _reader(tmp_path, drive)
    assert _read(reader, listed, BLOCK - 10, 4096, ReadStream()) == data[BLOCK - 10 :]
    reader.close()


class _Advised(ContentCache):
    """Records the blocks it was asked to bring in from disk ahead of a reader."""

    advised: list[int]

    def will_need(self, docwsid: str, etag: str, index: int) -> None:
        self.advised.append(index)
        super().will_need(docwsid, etag, index)


def test_a_sequential_reader_of_cached_blocks_has_them_read_from_disk_ahead(
    tmp_path: Path, drive: MemoryDrive
) -> None:
    """One file per block: the kernel's readahead stops at each block's end, so a sequential
    re-read after the page cache is dropped would wait on the disk for every block."""
    data = os.urandom(12 * BLOCK)
    item = drive.add_file("f", data)
    cache = _Advised(tmp_path, 256 << 20)
    cache.advised = []
    reader = Reader(drive, cache, max_window=4 << 20)
    for future in reader.fetch_blocks(item, item.size):
        future.result()
    reads = drive.calls["read"]
    stream = ReadStream()
    for offset in range(0, 6 * BLOCK, BLOCK):
        assert _read(reader, item, offset, BLOCK, stream) == data[offset : offset + BLOCK]
    _wait_for(lambda: 9 in cache.advised)
    assert sorted(cache.advised) == list(range(1, 10)), "each block ahead once (to 6 + 4 MiB)"
    assert drive.calls["read"] == reads, "all from the cache"
    cache.advised.clear()
    assert _read(reader, item, 2 * BLOCK + 5, 4096, ReadStream()) == data[2 * BLOCK + 5 : 2 * BLOCK + 4101]
    time.sleep(0.1)
    assert cache.advised == [], "a random read asks for nothing ahead"
    reader.close()
