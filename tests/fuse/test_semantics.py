"""POSIX behaviour on a real mount: errnos, concurrency, large folders and files, renames."""

from __future__ import annotations

import errno
import hashlib
import os
import random
import subprocess
import time
from pathlib import Path

import pytest

from icloudfs.drive.memory import MemoryDrive
from icloudfs.drive.types import ItemKind
from tests.fuse.conftest import LiveMount, MountFactory


def _errno_of(action: object) -> int:
    assert callable(action)
    with pytest.raises(OSError) as caught:
        action()
    return caught.value.errno or 0


def test_unsupported_operations_have_clear_errnos(mounted: LiveMount) -> None:
    mounted.drive.add_file("d/f", b"x")
    path = mounted.path
    assert _errno_of(lambda: os.link(path / "d/f", path / "d/g")) == errno.EPERM
    assert _errno_of(lambda: os.symlink("f", path / "d/s")) == errno.EPERM
    assert _errno_of(lambda: os.setxattr(path / "d/f", "user.k", b"v")) == errno.ENOTSUP
    assert _errno_of(lambda: os.getxattr(path / "d/f", "user.k")) == errno.ENOTSUP
    assert _errno_of(lambda: os.listxattr(path / "d/f")) == errno.ENOTSUP
    assert _errno_of(lambda: os.getxattr(path / "nope", "user.k")) == errno.ENOENT
    assert _errno_of(lambda: os.rmdir(path / "d")) == errno.ENOTEMPTY
    assert _errno_of(lambda: os.rmdir(path / "d/f")) == errno.ENOTDIR
    assert _errno_of(lambda: os.unlink(path / "d")) == errno.EISDIR
    assert _errno_of(lambda: os.stat(path / "nope")) == errno.ENOENT
    assert _errno_of(lambda: os.mkdir(path / "d")) == errno.EEXIST
    os.chmod(path / "d/f", 0o600)  # accepted, ignored
    os.chown(path / "d/f", 0, 0)
    assert mounted.drive.content("d/f") == b"x"
    assert mounted.drive.names("d") == ["f"]


def test_writes_cost_no_extended_attribute_round_trips(mounted: LiveMount) -> None:
    """The kernel asks for ``security.capability`` before each write(2) unless the filesystem
    said once, with ENOSYS, that it has no extended attributes: else each write is two trips."""
    with pytest.raises(OSError):
        os.getxattr(mounted.path, "user.k")
    fd = os.open(mounted.path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        for n in range(8):
            os.write(fd, bytes([n]) * 4096)
    finally:
        os.close(fd)
    registry = mounted.mount.metrics.registry
    assert registry.get_sample_value("icloudfs_fuse_op_seconds_count", {"op": "write"}) == 8
    for op in ("getxattr", "listxattr", "setxattr", "removexattr"):
        assert registry.get_sample_value("icloudfs_fuse_op_seconds_count", {"op": op}) is None
    mounted.settle()
    assert mounted.drive.content("f") == b"".join(bytes([n]) * 4096 for n in range(8))


def test_random_writes_from_python(mounted: LiveMount) -> None:
    original = os.urandom(3_000_000)
    mounted.drive.add_file("r.bin", original)
    model = bytearray(original)
    rng = random.Random(7)
    with open(mounted.path / "r.bin", "r+b") as fh:
        for _ in range(200):
            offset = rng.randrange(0, 3_500_000)
            chunk = rng.randbytes(rng.randrange(1, 70_000))
            fh.seek(offset)
            fh.write(chunk)
            if offset > len(model):
                model.extend(b"\0" * (offset - len(model)))
            model[offset : offset + len(chunk)] = chunk
        fh.flush()
        fh.seek(0)
        assert fh.read() == bytes(model)
    mounted.settle()
    assert mounted.drive.content("r.bin") == bytes(model)
    assert mounted.drive.calls["replace"] == 1  # one upload for the whole session


def test_two_processes_read_one_file_with_one_download(mounted: LiveMount) -> None:
    data = os.urandom(6 << 20)
    mounted.drive.add_file("shared.bin", data)
    assert isinstance(mounted.drive, MemoryDrive)
    mounted.drive.latency = 0.01
    readers = [
        subprocess.Popen(["sha256sum", str(mounted.path / "shared.bin")], stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [r.communicate(timeout=60)[0].decode().split()[0] for r in readers]
    assert outputs == [hashlib.sha256(data).hexdigest()] * 2
    assert mounted.drive.calls["read"] <= 6  # six 1 MiB blocks, each fetched once


def test_ls_l_of_ten_thousand_entries_costs_a_few_calls(mounted: LiveMount) -> None:
    for i in range(10_000):
        mounted.drive.add_file(f"big/file-{i:05d}.txt", b"x" * (i % 50))
    mounted.sh("ls big > /dev/null")  # the folder's listing is fetched once
    before = mounted.mount.metrics.counts()[0]
    listing = mounted.sh("ls -l big").stdout.splitlines()
    after = mounted.mount.metrics.counts()[0]
    calls = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    assert len(listing) == 10_001
    assert listing[-1].split()[4] == str(9_999 % 50)
    assert calls.get("getattr", 0) <= 2, calls
    assert calls.get("readdir_with_offset", 0) <= 10, calls
    assert sum(calls.values()) <= 20, calls
    assert mounted.drive.calls["list_folders"] <= 3


def test_file_larger_than_the_content_cache(drive: MemoryDrive, mount_factory: MountFactory) -> None:
    data = os.urandom(9 << 20)
    drive.add_file("huge.bin", data)
    live = mount_factory(drive, cache_size=3 << 20)
    digest = live.sh("sha256sum huge.bin").stdout.split()[0]
    assert digest == hashlib.sha256(data).hexdigest()
    content = live.fs.stats()["content"]
    assert content["bytes_used"] <= content["bytes_limit"] + (1 << 20)
    with open(live.path / "huge.bin", "rb") as fh:  # a random read far into the file
        fh.seek(7_500_000)
        assert fh.read(1000) == data[7_500_000:7_501_000]


def test_random_read_fetches_only_around_the_request(drive: MemoryDrive, mounted: LiveMount) -> None:
    data = os.urandom(32 << 20)
    drive.add_file("sparse.bin", data)
    with open(mounted.path / "sparse.bin", "rb", buffering=0) as fh:
        fh.seek(20_000_000)
        assert fh.read(4096) == data[20_000_000:20_004_096]
    assert drive.calls["read"] <= 2


def test_rename_over_an_existing_file_replaces_it_in_place(mounted: LiveMount) -> None:
    target = mounted.drive.add_file("doc.txt", b"old")
    (mounted.path / ".doc.txt.tmp").write_bytes(b"new content")
    os.rename(mounted.path / ".doc.txt.tmp", mounted.path / "doc.txt")
    assert (mounted.path / "doc.txt").read_bytes() == b"new content"
    assert sorted(os.listdir(mounted.path)) == ["doc.txt"]
    mounted.settle()
    assert mounted.drive.names() == ["doc.txt"]
    assert mounted.drive.content("doc.txt") == b"new content"
    assert isinstance(mounted.drive, MemoryDrive)
    assert mounted.drive.item_at("doc.txt").id != target.id, "a replace: iCloud stores a new item"
    assert mounted.drive.calls["upload"] == 0 and mounted.drive.calls["replace"] == 1
    assert mounted.drive.trashed() == [], "replaced, never absent or in the trash"


def test_rename_of_remote_files_and_folders(mounted: LiveMount) -> None:
    mounted.drive.add_file("a/one.txt", b"1")
    mounted.drive.add_file("b/two.txt", b"2")
    os.rename(mounted.path / "a/one.txt", mounted.path / "b/two.txt")  # over an existing file
    os.rename(mounted.path / "b", mounted.path / "c")
    os.rename(mounted.path / "c/two.txt", mounted.path / "c/TWO.txt")  # a change of case only
    assert os.listdir(mounted.path / "c") == ["TWO.txt"]
    assert mounted.drive.names("c") == ["TWO.txt"]
    assert mounted.drive.content("c/TWO.txt") == b"1"
    assert mounted.drive.names("a") == []
    assert len(mounted.drive.trashed()) == 1  # the overwritten file is recoverable


def test_fsync_returns_once_stored(drive: MemoryDrive, mount_factory: MountFactory) -> None:
    live = mount_factory(drive, write_back=3600.0)
    with open(live.path / "synced.txt", "wb") as fh:
        fh.write(b"durable")
        fh.flush()
        os.fsync(fh.fileno())
        assert drive.content("synced.txt") == b"durable"


def test_read_only_mount(drive: MemoryDrive, mount_factory: MountFactory) -> None:
    drive.add_file("f.txt", b"x")
    live = mount_factory(drive, read_only=True)
    assert (live.path / "f.txt").read_bytes() == b"x"
    assert _errno_of(lambda: (live.path / "f.txt").write_bytes(b"y")) == errno.EROFS
    assert _errno_of(lambda: os.mkdir(live.path / "d")) == errno.EROFS
    assert drive.content("f.txt") == b"x"


def test_packages_are_read_only_files_and_app_libraries_are_root_folders(
    drive: MemoryDrive, mount_factory: MountFactory
) -> None:
    drive.add_file("Plan.pages", b"PK zip", kind=ItemKind.PACKAGE)
    library = drive.add_app_library("Numbers", "com.apple.Numbers")
    live = mount_factory(drive)
    assert sorted(os.listdir(live.path)) == ["Numbers", "Plan.pages"]
    assert (live.path / "Plan.pages").read_bytes() == b"PK zip"
    assert _errno_of(lambda: os.open(live.path / "Plan.pages", os.O_RDWR)) == errno.EACCES
    (live.path / "Numbers" / "sheet.csv").write_bytes(b"1,2")
    assert _errno_of(lambda: os.rmdir(live.path / "Numbers")) == errno.EPERM
    live.settle()
    listing = drive.list_folders([library.id])[0]
    assert [c.name for c in listing.children] == ["sheet.csv"]


def test_mounting_a_sub_folder(drive: MemoryDrive, mount_factory: MountFactory) -> None:
    drive.add_file("LegalCases/2024/brief.txt", b"b")
    drive.add_file("Other/x", b"x")
    live = mount_factory(drive, folder="/LegalCases")
    assert os.listdir(live.path) == ["2024"]
    (live.path / "new.txt").write_bytes(b"n")
    live.settle()
    assert drive.content("LegalCases/new.txt") == b"n"


def test_writes_survive_concurrent_readers_of_the_old_version(mounted: LiveMount) -> None:
    mounted.drive.add_file("v.txt", b"version one")
    with open(mounted.path / "v.txt", "rb") as reader:
        assert reader.read() == b"version one"
        (mounted.path / "v.txt").write_bytes(b"version two!")
        mounted.settle()
        reader.seek(0)
        assert reader.read() == b"version two!"
    assert mounted.drive.content("v.txt") == b"version two!"


def test_stats_refresh_and_evict(mounted: LiveMount) -> None:
    mounted.drive.add_file("s/f.bin", os.urandom(2 << 20))
    assert len((mounted.path / "s/f.bin").read_bytes()) == 2 << 20
    deadline = time.monotonic() + 10  # a read gets a block's bytes as they arrive, before it is kept
    while mounted.fs.stats()["content"]["bytes_used"] < 2 << 20:
        assert time.monotonic() < deadline, mounted.fs.stats()["content"]
        time.sleep(0.02)
    assert mounted.mount.metrics.counts()[0]["read"] >= 1
    mounted.drive.add_file("s/remote-new", b"r")
    assert mounted.fs.refresh("/s") == 1
    assert "remote-new" in os.listdir(mounted.path / "s")
    assert mounted.fs.evict("/s") >= 2 << 20
    assert mounted.fs.stats()["content"]["bytes_used"] == 0


def test_an_unlinked_open_file_stays_usable(mounted: LiveMount) -> None:
    with open(mounted.path / "tmp.bin", "w+b") as fh:
        fh.write(b"scratch")
        fh.flush()
        os.unlink(mounted.path / "tmp.bin")
        fh.seek(0)
        assert fh.read() == b"scratch"
        fh.truncate(3)
        assert os.fstat(fh.fileno()).st_size == 3
    mounted.settle()
    assert not mounted.drive.exists("tmp.bin")


def test_rename_noreplace_is_honoured(mounted: LiveMount) -> None:
    Path(mounted.path / "x").write_bytes(b"x")
    Path(mounted.path / "y").write_bytes(b"y")
    result = mounted.sh("mv --no-clobber x y; cat y", check=False)
    assert result.stdout == "y"
    assert (mounted.path / "x").exists()


def test_remote_changes_show_up_after_the_ttl(drive: MemoryDrive, mount_factory: MountFactory) -> None:
    drive.add_file("f.txt", b"short\n")
    live = mount_factory(drive, metadata_ttl=0.3, negative_ttl=0.3)
    assert (live.path / "f.txt").read_bytes() == b"short\n"
    drive.add_file("f.txt", b"a much longer remote version\n")
    drive.add_file("arrived.txt", b"n")
    time.sleep(1.5)  # our TTL, then the kernel's one-second attribute timeout
    assert (live.path / "f.txt").read_bytes() == b"a much longer remote version\n"
    assert sorted(os.listdir(live.path)) == ["arrived.txt", "f.txt"]


def test_writeback_cache_mode_writes_correctly(drive: MemoryDrive, mount_factory: MountFactory) -> None:
    live = mount_factory(drive, writeback_cache=True)
    live.sh("for i in $(seq 100); do echo line $i >> log.txt; done")
    with open(live.path / "log.txt", "r+b") as fh:
        fh.seek(5)
        fh.write(b"X")
    live.settle()
    expected = "".join(f"line {i}\n" for i in range(1, 101)).encode()
    assert drive.content("log.txt") == expected[:5] + b"X" + expected[6:]


def test_polling_shows_remote_changes_without_a_lookup(
    drive: MemoryDrive, mount_factory: MountFactory
) -> None:
    drive.add_folder("shared")
    live = mount_factory(drive, metadata_ttl=3600.0, poll_interval=1.0)
    assert os.listdir(live.path / "shared") == []
    drive.add_file("shared/from-iphone.txt", b"new")
    shared = live.fs.meta.lookup(live.fs.top, "shared")
    assert shared is not None
    deadline = time.monotonic() + 15
    while "from-iphone.txt" not in [c.name for c in live.fs.meta.children(shared).values()]:
        assert time.monotonic() < deadline, "the poll never re-listed the folder"
        time.sleep(0.2)
    assert os.listdir(live.path / "shared") == ["from-iphone.txt"]
