"""Filesystem semantics without a kernel: resolution, writes, renames, deletes, errors."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from icloudfs.cache.writeback import FileNode, Found, queue
from icloudfs.drive.memory import MemoryDrive
from icloudfs.drive.protocol import UploadControl
from icloudfs.drive.types import Item, ItemKind
from icloudfs.errors import AlreadyExists, Conflict, NotFound
from icloudfs.fs.core import Filesystem
from icloudfs.fs.errors import (
    BadHandle,
    FolderNotEmpty,
    InvalidRequest,
    IsAFolder,
    NotAFolder,
    NotWritable,
    ReadOnly,
    Unsupported,
)
from tests.fs.conftest import FsFactory, read_at, read_file, write_file


def test_attributes_of_files_and_folders(drive: MemoryDrive, fs: Filesystem) -> None:
    drive.add_file("a/b.txt", b"12345", mtime=1_600_000_000.5)
    folder = fs.getattr("/a")
    assert stat.S_ISDIR(folder["st_mode"]) and folder["st_mode"] & 0o777 == 0o755
    file = fs.getattr("/a/b.txt")
    assert stat.S_ISREG(file["st_mode"]) and file["st_mode"] & 0o777 == 0o644
    assert file["st_size"] == 5
    assert file["st_mtime"] == 1_600_000_000_500_000_000
    with pytest.raises(NotFound):
        fs.getattr("/a/missing")
    with pytest.raises(NotAFolder):
        fs.getattr("/a/b.txt/x")


def test_names_match_nfc_and_case_insensitively_but_keep_their_case(
    drive: MemoryDrive, fs: Filesystem
) -> None:
    drive.add_file("Straße/Résumé.TXT", b"x")
    assert fs.getattr("/STRASSE/re\u0301sume\u0301.txt")["st_size"] == 1
    fh = fs.opendir("/straße")
    assert [name for name, _ in fs.readdir(fh, 0)] == [".", "..", "Résumé.TXT"]
    fs.releasedir(fh)
    with pytest.raises(AlreadyExists):
        fs.create("/straße/résumé.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    # Without O_EXCL an existing file is opened (the kernel may call create on a stale miss).
    fs.release(fs.create("/straße/résumé.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC))
    assert fs.getattr("/Straße/Résumé.TXT")["st_size"] == 0
    assert fs.drain(5) and drive.names("Straße") == ["Résumé.TXT"]


def test_readdir_pages_with_stable_offsets(drive: MemoryDrive, fs: Filesystem) -> None:
    for i in range(10):
        drive.add_file(f"d/f{i}", b"x" * i)
    fh = fs.opendir("/d")
    first = fs.readdir(fh, 0)
    assert len(first) == 12
    assert fs.readdir(fh, 5) == first[5:]
    assert first[3][1]["st_size"] == 1


def test_new_files_exist_at_once_and_upload_later(drive: MemoryDrive, fs: Filesystem) -> None:
    write_file(fs, "/new.txt", b"hello")
    assert fs.getattr("/new.txt")["st_size"] == 5
    assert read_file(fs, "/new.txt") == b"hello"
    assert not drive.exists("new.txt")
    assert fs.drain(5)
    assert drive.content("new.txt") == b"hello"
    assert read_file(fs, "/new.txt") == b"hello"
    assert drive.calls["read"] == 0  # the uploaded copy was kept in the content cache


def test_write_at_offsets_stages_only_what_is_kept(drive: MemoryDrive, fs: Filesystem) -> None:
    drive.add_file("f.bin", b"0123456789")
    fh = fs.open("/f.bin", os.O_RDWR)
    fs.write(fh, b"AB", 8)
    fs.write(fh, b"Z", 12)
    assert read_at(fs, fh, 100, 0) == b"01234567AB\0\0Z"
    fs.release(fh)
    fh = fs.open("/f.bin", os.O_WRONLY | os.O_TRUNC)
    fs.write(fh, b"new", 0)
    fs.release(fh)
    assert fs.drain(5)
    assert drive.content("f.bin") == b"new"
    assert drive.calls["replace"] == 1  # both sessions, one upload


def test_truncate_without_a_handle(drive: MemoryDrive, fs: Filesystem) -> None:
    drive.add_file("t.txt", b"abcdef")
    fs.truncate("/t.txt", 3)
    assert fs.getattr("/t.txt")["st_size"] == 3
    assert fs.drain(5)
    assert drive.content("t.txt") == b"abc"


def test_mkdir_rmdir_and_unlink(drive: MemoryDrive, fs: Filesystem) -> None:
    fs.mkdir("/d")
    calls = drive.calls["list_folders"]
    assert fs.readdir(fs.opendir("/d"), 0)[2:] == []
    assert drive.calls["list_folders"] == calls  # a folder made here is known empty
    write_file(fs, "/d/f", b"x")
    with pytest.raises(FolderNotEmpty):
        fs.rmdir("/d")
    with pytest.raises(IsAFolder):
        fs.unlink("/d")
    fs.unlink("/d/f")
    fs.rmdir("/d")
    assert drive.names() == []
    assert drive.calls["upload"] == 0  # deleted before it was ever uploaded


def test_rmdir_sees_remote_children_it_has_not_listed(drive: MemoryDrive, fs_factory: FsFactory) -> None:
    fs = fs_factory(negative_ttl=0.0)
    drive.add_folder("d")
    fs.getattr("/d")
    fs.readdir(fs.opendir("/d"), 0)
    drive.add_file("d/arrived", b"x")
    with pytest.raises(FolderNotEmpty):
        fs.rmdir("/d")


def test_deletes_go_to_recently_deleted(drive: MemoryDrive, fs: Filesystem) -> None:
    drive.add_file("keep/f", b"x")
    fs.unlink("/keep/f")
    fs.rmdir("/keep")
    assert sorted(i.name for i in drive.trashed()) == ["f", "keep"]
    assert drive.names() == []


def test_rename_a_local_file_costs_no_request(drive: MemoryDrive, fs: Filesystem) -> None:
    fs.mkdir("/d")
    write_file(fs, "/a.tmp", b"data")
    drive.reset_calls()
    fs.rename("/a.tmp", "/d/a.txt")
    assert sum(drive.calls.values()) == 0
    assert fs.drain(5)
    assert drive.names("d") == ["a.txt"]


def test_rename_over_a_remote_file_becomes_a_replace(drive: MemoryDrive, fs: Filesystem) -> None:
    target = drive.add_file("doc", b"old")
    write_file(fs, "/.doc.swp", b"new")
    fs.rename("/.doc.swp", "/doc")
    assert read_file(fs, "/doc") == b"new"
    assert fs.drain(5)
    assert drive.names() == ["doc"] and drive.content("doc") == b"new"
    assert drive.item_at("doc").id != target.id, "a replace: iCloud stores a new item"
    assert drive.trashed() == [], "the old version was replaced, not sent to the trash first"


def test_rename_errors(drive: MemoryDrive, fs: Filesystem) -> None:
    drive.add_file("f", b"x")
    drive.add_file("d/inner", b"y")
    drive.add_folder("e")
    with pytest.raises(IsAFolder):
        fs.rename("/f", "/e")
    with pytest.raises(NotAFolder):
        fs.rename("/e", "/f")
    with pytest.raises(FolderNotEmpty):
        fs.rename("/e", "/d")
    with pytest.raises(AlreadyExists):
        fs.rename("/f", "/d/inner", 1)  # RENAME_NOREPLACE
    with pytest.raises(InvalidRequest):
        fs.rename("/f", "/d/inner", 2)  # RENAME_EXCHANGE
    fs.rename("/e", "/d/e")
    assert drive.names("d") == ["e", "inner"]


def test_a_stale_handle_reads_the_new_version(drive: MemoryDrive, fs: Filesystem) -> None:
    drive.add_file("v", b"one")
    fh = fs.open("/v", os.O_RDONLY)
    drive.add_file("v", b"two!")
    assert read_at(fs, fh, 10, 0) == b"two!"  # re-read as the version it is now
    fs.release(fh)


def test_read_only_packages_and_unsupported_things(
    drive: MemoryDrive, fs_factory: FsFactory, tmp_path: Path
) -> None:
    drive.add_file("p.key", b"zip", kind=ItemKind.PACKAGE)
    fs = fs_factory()
    assert fs.getattr("/p.key")["st_mode"] & 0o222 == 0
    with pytest.raises(NotWritable):
        fs.open("/p.key", os.O_RDWR)
    for action in (fs.link, fs.symlink, fs.mknod):
        with pytest.raises(Unsupported):
            action()
    with pytest.raises(InvalidRequest):
        fs.readlink("/p.key")
    with pytest.raises(BadHandle):
        read_at(fs, 12345, 1, 0)
    ro = fs_factory(read_only=True, cache_dir=tmp_path / "ro")
    with pytest.raises(ReadOnly):
        ro.mkdir("/x")
    with pytest.raises(ReadOnly):
        ro.open("/p.key", os.O_WRONLY)


def test_statfs_reports_the_quota(drive: MemoryDrive, fs: Filesystem) -> None:
    drive.capacity = 4096 * 1000
    drive.add_file("f", b"x" * 4096 * 10)
    figures = fs.statfs()
    assert figures["f_blocks"] == 1000
    assert figures["f_bavail"] == 990


def test_conflict_on_rename_retries_with_a_fresh_item(drive: MemoryDrive, fs: Filesystem) -> None:
    drive.add_file("f", b"x")
    fs.getattr("/f")
    drive.add_file("f", b"changed elsewhere")  # new etag; the cached item is stale
    fs.rename("/f", "/g")
    assert drive.names() == ["g"]
    assert drive.content("g") == b"changed elsewhere"


def test_offline_listings_are_served_from_the_persisted_cache(
    drive: MemoryDrive, fs_factory: FsFactory
) -> None:
    from icloudfs.errors import Unavailable

    drive.add_file("docs/a", b"x")
    first = fs_factory(metadata_ttl=0.0)
    assert [n for n, _ in first.readdir(first.opendir("/docs"), 0)][2:] == ["a"]
    first.close()
    drive.fail("list_folders", Unavailable("offline"), times=10)
    second = fs_factory(metadata_ttl=0.0)
    assert [n for n, _ in second.readdir(second.opendir("/docs"), 0)][2:] == ["a"]


def test_a_missing_mount_folder_fails_at_start(drive: MemoryDrive, fs_factory: FsFactory) -> None:
    with pytest.raises(NotFound):
        fs_factory(folder="/Nope")


def test_conflict_error_when_the_drive_refuses_twice(drive: MemoryDrive, fs: Filesystem) -> None:
    drive.add_file("f", b"x")
    fs.getattr("/f")
    drive.fail("trash", Conflict("stale"), times=2)
    with pytest.raises(Conflict):
        fs.unlink("/f")


def test_pending_uploads_are_listed_for_the_control_plane(drive: MemoryDrive, fs: Filesystem) -> None:
    from icloudfs.errors import Unavailable

    fs.mkdir("/docs")
    write_file(fs, "/docs/a.txt", b"a")
    [pending] = fs.uploads()
    assert (pending["path"], pending["state"], pending["attempts"]) == ("/docs/a.txt", "queued", 0)
    drive.fail("upload", Unavailable("down"))
    assert not fs.drain(0.5)
    [failed] = fs.uploads()
    assert failed["state"] == "failed" and "down" in failed["last_error"]
    assert fs.retry_uploads() == 1
    assert fs.drain(5)
    assert fs.uploads() == []
    assert fs.evict(None) == len(b"a"), "the stored file's bytes were cached, and are freed"
    assert fs.evict(None) == 0


def test_writing_through_a_handle_to_an_unlinked_file_does_not_revive_it(
    drive: MemoryDrive, fs: Filesystem
) -> None:
    drive.add_file("gone.txt", b"old")
    fh = fs.open("/gone.txt", os.O_RDWR)
    assert read_at(fs, fh, 10, 0) == b"old"  # cached now (uncached bytes of a trashed file are gone)
    fs.unlink("/gone.txt")
    fs.write(fh, b"new", 0)
    assert read_at(fs, fh, 10, 0) == b"new"
    fs.release(fh)
    assert fs.drain(5)
    assert not drive.exists("gone.txt")
    assert drive.calls["upload"] == drive.calls["replace"] == 0


class _NonAtomicReplace(MemoryDrive):
    """Replaces as iCloud does: the old file goes before the new one takes its name, and
    ``mid_swap`` runs in between."""

    def __init__(self) -> None:
        super().__init__()
        self.mid_swap: Callable[[], None] = lambda: None

    def replace(
        self, existing: Item, source: Path, mtime: float, control: UploadControl | None = None
    ) -> Item:
        temp = self.upload(
            self.stat(existing.parent_id or ""), f".{existing.name}.tmp", source, mtime, control
        )
        self.delete(existing)
        self.mid_swap()
        return self.rename(temp, existing.name)


def test_a_listing_fetched_in_the_middle_of_a_replace_never_hides_the_file(tmp_path: Path) -> None:
    """A fetch that lands between iCloud's delete and rename must not make the file look absent:
    the next write would become a new file, and its upload a conflict copy (issue 8)."""
    drive = _NonAtomicReplace()
    drive.add_file("d/report.txt", b"v1")
    fs = Filesystem(drive, cache_dir=tmp_path / "cache", cache_size=64 << 20, write_back=3600.0)
    fs.start()
    try:
        seen: list[int] = []

        def mid_swap() -> None:
            fs.refresh("/d")  # what a poll, or a lookup of another name, would fetch now
            seen.append(fs.getattr("/d/report.txt")["st_size"])
            fh = fs.opendir("/d")
            seen.append(sum(name == "report.txt" for name, _ in fs.readdir(fh, 0)))
            fs.releasedir(fh)

        drive.mid_swap = mid_swap
        write_file(fs, "/d/report.txt", b"version 2")
        assert fs.drain(5)
        assert seen == [9, 1]
        write_file(fs, "/d/report.txt", b"version three")
        assert fs.drain(5)
        assert seen == [9, 1, 13, 1]
        assert drive.names("d") == ["report.txt"], "one file, no conflict copy"
        assert drive.content("d/report.txt") == b"version three"
    finally:
        fs.close()


@pytest.mark.parametrize("action", ["unlink", "rename"])
def test_a_name_removed_just_after_its_upload_stays_removed_after_a_crash(
    drive: MemoryDrive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, action: str
) -> None:
    """A stored file's journal row is forgotten a moment after its upload; a crash in that
    moment re-uploads it from the row. Deleting or renaming the file must not leave that
    chance open, or the crash brings the old name back."""
    monkeypatch.setattr(queue, "SETTLE_EVERY_S", 3600.0)  # the moment lasts the whole test
    crashed = Filesystem(drive, cache_dir=tmp_path / "cache", cache_size=64 << 20, write_back=3600.0)
    crashed.start()
    write_file(crashed, "/u.txt", b"uploaded")
    fh = crashed.open("/u.txt", os.O_RDONLY)
    crashed.fsync(fh)
    crashed.release(fh)
    assert drive.names() == ["u.txt"]
    if action == "unlink":
        crashed.unlink("/u.txt")
    else:
        crashed.rename("/u.txt", "/w.txt")
    crashed._cache_lock.release()  # what the kernel does for a killed process
    after = Filesystem(drive, cache_dir=tmp_path / "cache", cache_size=64 << 20, write_back=0.0)
    after.start()  # on the folder of the first, which never closed: as after kill -9
    try:
        assert after.drain(5), after.writeback.entries()
        assert drive.names() == ([] if action == "unlink" else ["w.txt"])
    finally:
        after.close()
        crashed.close()


def test_opening_a_new_file_as_its_upload_lands_opens_the_stored_file(
    drive: MemoryDrive, fs: Filesystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """open() finds the name's node, then pins it; an upload landing in between stores the new
    file and retires its node. Using the retired node made a second file, whose upload met the
    first as a conflict (the newest bytes in a conflict copy); open looks the name up again."""
    write_file(fs, "/n.txt", b"version 1")
    real = fs.tree.child

    def child_then_upload(folder: Item, name: str) -> Found | None:
        found = real(folder, name)
        if isinstance(found, FileNode) and found.remote is None:
            fs.writeback.sync(found)  # stored, and nothing holds it: retired
            assert found.retired
        return found

    monkeypatch.setattr(fs.tree, "child", child_then_upload)
    fh = fs.open("/n.txt", os.O_WRONLY | os.O_TRUNC)
    fs.write(fh, b"version 2", 0)
    fs.release(fh)
    assert fs.drain(5)
    assert drive.names() == ["n.txt"], "one file, no conflict copy"
    assert drive.content("n.txt") == b"version 2"
