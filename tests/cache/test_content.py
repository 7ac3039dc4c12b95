"""Content cache: LRU in bytes, versions never mixed, pinned bytes respected, restart scan."""

from __future__ import annotations

from pathlib import Path

from icloudfs.cache.content import ContentCache
from tests.cache.conftest import read_block


def test_blocks_are_evicted_least_recently_used_first(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path, limit=300, block_size=100)
    for index in range(3):
        cache.put("doc", "e1", index, bytes([index]) * 100)
    assert read_block(cache, "doc", "e1", 0, 0, 10) == b"\0" * 10  # block 0 is now the newest
    cache.put("doc", "e1", 3, b"3" * 100)
    assert read_block(cache, "doc", "e1", 1, 0, 1) is None
    assert read_block(cache, "doc", "e1", 0, 5, 2) == b"\0\0"
    assert cache.stats()["bytes_used"] == 300


def test_a_new_version_drops_the_old_one(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path, limit=10_000, block_size=100)
    cache.put("doc", "e1", 0, b"a" * 100)
    cache.put("other", "e1", 0, b"o" * 100)
    cache.put("doc", "e2", 0, b"b" * 100)
    assert read_block(cache, "doc", "e1", 0, 0, 1) is None
    assert read_block(cache, "doc", "e2", 0, 0, 1) == b"b"
    assert read_block(cache, "other", "e1", 0, 0, 1) == b"o"


def test_pinned_bytes_shrink_the_budget(tmp_path: Path) -> None:
    pinned = [0]
    cache = ContentCache(tmp_path, limit=500, block_size=100, pinned=lambda: pinned[0])
    for index in range(5):
        cache.put("doc", "e", index, b"x" * 100)
    pinned[0] = 300
    cache.put("doc", "e", 5, b"x" * 100)
    assert cache.stats()["bytes_used"] == 200


def test_the_index_survives_a_restart(tmp_path: Path) -> None:
    first = ContentCache(tmp_path, limit=1000, block_size=100)
    first.put("doc", "e", 0, b"x" * 100)
    first.put("doc", "e", 1, b"y" * 50)
    (tmp_path / "stray.tmp").write_bytes(b"")  # ignored
    second = ContentCache(tmp_path, limit=1000, block_size=100)
    assert second.stats()["bytes_used"] == 150
    assert read_block(second, "doc", "e", 1, 0, 50) == b"y" * 50
    assert second.evict(["doc"]) == 150
    assert read_block(second, "doc", "e", 0, 0, 1) is None


def test_import_splits_a_file_into_blocks(tmp_path: Path) -> None:
    cache = ContentCache(tmp_path / "c", limit=10_000, block_size=100)
    source = tmp_path / "src"
    source.write_bytes(bytes(range(250)))
    assert not cache.import_file("doc", "e", source)  # copied: the source may change in place
    assert read_block(cache, "doc", "e", 2, 0, 50) == bytes(range(200, 250))
    assert cache.stats()["blocks"] == 3


def test_import_links_a_file_of_one_block(tmp_path: Path) -> None:
    """No new inode and none freed: the staged copy becomes the block."""
    cache = ContentCache(tmp_path / "c", limit=10_000, block_size=100)
    source = tmp_path / "src"
    source.write_bytes(b"x" * 100)
    assert cache.import_file("doc", "e", source)
    assert source.stat().st_nlink == 2
    source.unlink()
    assert read_block(cache, "doc", "e", 0, 0, 100) == b"x" * 100
    assert not cache.import_file("doc", "e2", tmp_path / "gone")  # a staged copy deleted meanwhile
