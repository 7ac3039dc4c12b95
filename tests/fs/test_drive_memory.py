"""MemoryDrive keeps the promises the filesystem relies on; names compare as iCloud's do."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from icloudfs.drive import names
from icloudfs.drive.memory import MemoryDrive
from icloudfs.drive.protocol import Drive
from icloudfs.emulator.names import free_name
from icloudfs.errors import AlreadyExists, Conflict, NotFound


def test_it_takes_every_call_as_the_drive_protocol_declares_it() -> None:
    """Same parameters (names, kinds, defaults) for every method of ``Drive``: a test that calls
    the double as the protocol says calls it as the filesystem does iCloud."""
    for name, declared in inspect.getmembers(Drive, inspect.isfunction):
        if name.startswith("_"):
            continue
        wanted = inspect.signature(declared).parameters
        found = inspect.signature(getattr(MemoryDrive, name)).parameters
        assert [(p.name, p.kind, p.default) for p in found.values()] == [
            (p.name, p.kind, p.default) for p in wanted.values()
        ], name


def test_names_compare_nfc_and_case_folded() -> None:
    assert names.key("Cafe\u0301") == names.key("CAFÉ")
    assert names.to_local("a/b") == "a\u2215b"
    assert names.to_remote("a\u2215b") == "a/b"
    assert names.to_remote("e\u0301") == "é"


def test_numbered_copies_are_named_as_icloud_names_them() -> None:
    """The emulator's ``free_name`` is iCloud's rule; every name it gives counts as a copy."""
    for name in ["report.final.pdf", "Makefile", ".bashrc", "trailing.", "Café.txt"]:
        copies = {name}
        for _ in range(11):
            copies.add(free_name(name, copies.__contains__, is_file=True))
        assert all(names.numbered_copy(copy, name) for copy in copies - {name})
        assert not names.numbered_copy(name, name)
    assert names.numbered_copy("CAFE\u0301 2.TXT", "café.txt")
    assert not names.numbered_copy("report 1.pdf", "report.pdf")
    assert not names.numbered_copy("report 2.pdf.bak", "report.pdf")
    assert not names.numbered_copy("report 02.pdf", "report.pdf")
    assert not names.numbered_copy("report2.pdf", "report.pdf")


def test_names_are_unique_per_folder(tmp_path: Path) -> None:
    drive = MemoryDrive()
    source = tmp_path / "s"
    source.write_bytes(b"x")
    root = drive.root()
    drive.upload(root, "Report.txt", source, 0.0)
    with pytest.raises(AlreadyExists):
        drive.upload(root, "REPORT.TXT", source, 0.0)
    with pytest.raises(AlreadyExists):
        drive.mkdir(root, "report.txt")


def test_stale_etags_are_refused(tmp_path: Path) -> None:
    drive = MemoryDrive()
    old = drive.add_file("f", b"1")
    drive.add_file("f", b"2")
    source = tmp_path / "s"
    source.write_bytes(b"3")
    for action in (
        lambda: drive.replace(old, source, 0.0),
        lambda: drive.read(old, 0, 1),
        lambda: drive.rename(old, "g"),
        lambda: drive.trash(old),
    ):
        with pytest.raises(Conflict):
            action()
    assert drive.content("f") == b"2"


def test_replace_stores_a_new_item_as_icloud_does(tmp_path: Path) -> None:
    """iCloud has no overwrite: a new version is a new upload (rclone PR 7717), and icloudfs's
    backend stores it under a temporary name, deletes the old item and renames the new one into
    place. The replaced item is gone: its id, etag and document id answer NotFound."""
    drive = MemoryDrive()
    old = drive.add_file("folder/f.txt", b"old")
    source = tmp_path / "s"
    source.write_bytes(b"new")
    new = drive.replace(old, source, 7.0)
    assert (new.id, new.docwsid) != (old.id, old.docwsid)
    assert (new.name, new.parent_id, new.size, new.mtime) == ("f.txt", old.parent_id, 3, 7.0)
    assert drive.item_at("folder/f.txt") == new and drive.content("folder/f.txt") == b"new"
    assert drive.names("folder") == ["f.txt"]
    with pytest.raises(NotFound):
        drive.stat(old.id)
    with pytest.raises(NotFound):
        drive.read(old, 0, 3)


def test_replace_keeps_the_old_bytes_if_the_new_cannot_be_read(tmp_path: Path) -> None:
    drive = MemoryDrive()
    item = drive.add_file("f", b"old")
    with pytest.raises(FileNotFoundError):
        drive.replace(item, tmp_path / "missing", 0.0)
    assert drive.content("f") == b"old"


def test_calls_are_counted_and_failures_injected() -> None:
    drive = MemoryDrive()
    drive.fail("root", NotFound("boom"))
    with pytest.raises(NotFound):
        drive.root()
    drive.root()
    assert drive.calls["root"] == 2


def test_trash_delete_and_move() -> None:
    drive = MemoryDrive()
    folder = drive.add_folder("a/b")
    file = drive.add_file("a/f", b"x")
    moved = drive.move(file, folder)
    assert drive.names("a/b") == ["f"]
    with pytest.raises(Exception, match="into itself"):
        drive.move(drive.item_at("a"), folder)
    drive.trash(moved)
    assert [i.name for i in drive.trashed()] == ["f"]
    with pytest.raises(NotFound):
        drive.stat(moved.id)
    drive.delete(drive.item_at("a"))
    assert drive.names() == []
