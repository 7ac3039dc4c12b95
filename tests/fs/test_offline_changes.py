"""Namespace changes while iCloud is unreachable: applied here at once, journaled, replayed in
order when it answers again, and never dropping a change made elsewhere meanwhile."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from icloudfs.drive.memory import TRASH_ID
from icloudfs.errors import DriveError, Unavailable
from icloudfs.fs.core import Filesystem
from tests.fs.conftest import FsFactory, read_file, write_file
from tests.support.offline import SwitchedDrive


@pytest.fixture
def drive() -> SwitchedDrive:
    return SwitchedDrive()


def listing(fs: Filesystem, path: str = "/") -> list[str]:
    fh = fs.opendir(path)
    try:
        return sorted(name for name, _ in fs.readdir(fh, 0) if name not in (".", ".."))
    finally:
        fs.releasedir(fh)


def local_tree(fs: Filesystem, path: str = "/") -> dict[str, bytes | None]:
    """Every path below ``path`` as the mount shows it: a file's bytes, None for a folder."""
    found: dict[str, bytes | None] = {}
    for name in listing(fs, path):
        child = f"{path.rstrip('/')}/{name}"
        if fs.getattr(child)["st_mode"] & 0o040000:
            found[child.lstrip("/")] = None
            found.update(local_tree(fs, child))
        else:
            found[child.lstrip("/")] = read_file(fs, child)
    return found


def blocks_stored(fs: Filesystem) -> None:
    """Wait until the blocks read so far are in the content cache (a read stores its block as
    it returns)."""
    deadline = time.monotonic() + 5
    while not fs.content.stats()["blocks"]:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def back_online(drive: SwitchedDrive, fs: Filesystem) -> None:
    drive.offline = False
    assert fs.drain(10), f"still pending: {fs.stats()['uploads']}"


def test_changes_made_offline_show_at_once_and_reach_icloud_in_order(
    drive: SwitchedDrive, fs: Filesystem
) -> None:
    drive.add_file("docs/a.txt", b"a")
    drive.add_file("docs/b.txt", b"b")
    drive.add_file("old/gone.txt", b"gone")
    drive.add_folder("empty")
    assert local_tree(fs)  # listings known before the link goes
    drive.offline = True
    fs.mkdir("/new")
    fs.mkdir("/new/deeper")
    write_file(fs, "/new/deeper/note.txt", b"written offline")
    fs.rename("/docs/a.txt", "/new/a.txt")  # a stored file into a folder iCloud has not made
    fs.rename("/docs", "/new/deeper/docs")  # a folder into one too
    fs.rename("/new/a.txt", "/new/A2.txt")  # renamed again before the first reached iCloud
    fs.unlink("/old/gone.txt")
    fs.rmdir("/old")
    fs.rmdir("/empty")
    expected = {
        "new": None,
        "new/A2.txt": b"a",
        "new/deeper": None,
        "new/deeper/note.txt": b"written offline",
        "new/deeper/docs": None,
        "new/deeper/docs/b.txt": b"b",
    }
    assert local_tree(fs) == expected, "applied here at once"
    assert fs.stats()["uploads"]["changes"] == 8
    assert "wait for iCloud" in (fs.stats()["uploads"]["paused"] or ""), "status says why"
    assert drive.names() == ["docs", "empty", "old"], "nothing reached iCloud yet"

    back_online(drive, fs)
    assert drive.tree() == expected
    assert fs.stats()["uploads"]["changes"] == 0 and fs.stats()["uploads"]["paused"] is None
    assert local_tree(fs) == expected
    assert drive.trashed() and all(item.parent_id == TRASH_ID for item in drive.trashed())


def test_changes_survive_a_restart_while_offline_and_are_made_after_it(
    drive: SwitchedDrive, fs_factory: FsFactory
) -> None:
    drive.add_file("a.txt", b"a")
    drive.add_file("b.txt", b"b")
    fs = fs_factory()
    assert local_tree(fs) == {"a.txt": b"a", "b.txt": b"b"}
    drive.offline = True
    fs.mkdir("/folder")
    write_file(fs, "/folder/new.txt", b"new")
    fs.rename("/a.txt", "/folder/a.txt")
    fs.unlink("/b.txt")
    fs.close()  # the mount stops (or crashes) with the changes journaled

    again = fs_factory()  # still offline: the changes show from the journal
    assert local_tree(again) == {"folder": None, "folder/a.txt": b"a", "folder/new.txt": b"new"}
    back_online(drive, again)
    assert drive.tree() == {"folder": None, "folder/a.txt": b"a", "folder/new.txt": b"new"}


def test_a_listing_fetched_while_a_change_waits_does_not_undo_it(
    drive: SwitchedDrive, fs: Filesystem
) -> None:
    drive.add_file("f.txt", b"x")
    assert listing(fs) == ["f.txt"]
    drive.offline = True
    fs.rename("/f.txt", "/g.txt")
    gate = drive.hold("rename")  # the link is back, but the replay is held at its request
    drive.offline = False
    gate.wait_entered()
    fs.refresh("/")  # a fetch of iCloud's listing, which still says f.txt
    assert listing(fs) == ["g.txt"]
    gate.open()
    assert fs.drain(10) and drive.names() == ["g.txt"] and listing(fs) == ["g.txt"]


def test_uploads_wait_for_the_changes_before_them(drive: SwitchedDrive, fs: Filesystem) -> None:
    assert listing(fs) == []
    drive.offline = True
    fs.mkdir("/d")
    write_file(fs, "/d/f.txt", b"in a folder iCloud has not made yet")
    fh = fs.open("/d/f.txt", os.O_RDWR)
    fs.fsync(fh)  # offline: it returns once the bytes are in the journal (editors, git)
    assert drive.names() == []
    drive.offline = False
    fs.fsync(fh)  # now it makes the folder, then stores the file, and returns
    assert drive.content("d/f.txt") == b"in a folder iCloud has not made yet"
    fs.release(fh)


def test_a_rename_onto_a_name_taken_meanwhile_keeps_both(drive: SwitchedDrive, fs: Filesystem) -> None:
    drive.add_file("draft.txt", b"mine")
    assert listing(fs) == ["draft.txt"]
    drive.offline = True
    fs.rename("/draft.txt", "/final.txt")
    drive.add_file("final.txt", b"theirs")  # another device, meanwhile
    back_online(drive, fs)
    names = drive.names()
    assert len(names) == 2 and "final.txt" in names
    copy = next(n for n in names if n != "final.txt")
    assert copy.startswith("final (conflict ") and copy.endswith(").txt")
    assert drive.content("final.txt") == b"theirs" and drive.content(copy) == b"mine"
    fs.refresh("/")
    assert listing(fs) == sorted(names)


def test_a_rename_over_a_file_changed_meanwhile_keeps_both(drive: SwitchedDrive, fs: Filesystem) -> None:
    drive.add_file("new.txt", b"new")
    drive.add_file("report.txt", b"old")
    assert listing(fs) == ["new.txt", "report.txt"]
    drive.offline = True
    fs.rename("/new.txt", "/report.txt")  # replaces report.txt here
    drive.add_file("report.txt", b"edited elsewhere, longer")
    back_online(drive, fs)
    contents = sorted(drive.tree().values(), key=str)
    assert contents == [b"edited elsewhere, longer", b"new"], "neither side is dropped"


def test_a_delete_of_a_file_changed_meanwhile_keeps_it(drive: SwitchedDrive, fs: Filesystem) -> None:
    drive.add_file("notes.txt", b"v1")
    assert listing(fs) == ["notes.txt"]
    drive.offline = True
    fs.unlink("/notes.txt")
    assert listing(fs) == []
    drive.add_file("notes.txt", b"v2, edited on the phone")
    drive.offline = False
    assert fs.drain(10)
    assert drive.content("notes.txt") == b"v2, edited on the phone"
    fs.refresh("/")
    assert read_file(fs, "/notes.txt") == b"v2, edited on the phone", "it shows again"


def test_a_folder_that_gained_entries_meanwhile_is_not_deleted(drive: SwitchedDrive, fs: Filesystem) -> None:
    drive.add_folder("shared")
    assert listing(fs) == ["shared"]
    drive.offline = True
    fs.rmdir("/shared")
    drive.add_file("shared/theirs.txt", b"added elsewhere")
    back_online(drive, fs)
    assert drive.tree() == {"shared": None, "shared/theirs.txt": b"added elsewhere"}


def test_a_folder_made_on_both_sides_is_merged(drive: SwitchedDrive, fs: Filesystem) -> None:
    assert listing(fs) == []
    drive.offline = True
    fs.mkdir("/photos")
    write_file(fs, "/photos/here.jpg", b"here")
    drive.add_file("photos/there.jpg", b"there")
    back_online(drive, fs)
    assert drive.tree() == {"photos": None, "photos/here.jpg": b"here", "photos/there.jpg": b"there"}
    assert listing(fs, "/photos") == ["here.jpg", "there.jpg"]


def test_a_replace_cut_short_by_the_outage_is_finished_as_a_replace(
    drive: SwitchedDrive, fs: Filesystem
) -> None:
    drive.add_file("a/src", b"source")
    drive.add_file("b/dst", b"precious")
    fs.getattr("/a/src")
    fs.getattr("/b/dst")
    drive.fail("move", Unavailable("network down"))  # after the target was set aside
    fs.rename("/a/src", "/b/dst")
    assert read_file(fs, "/b/dst") == b"source"
    assert fs.drain(10)
    assert drive.tree() == {"a": None, "b": None, "b/dst": b"source"}, "no conflict copy of our own"


def test_a_refused_move_keeps_the_target(drive: SwitchedDrive, fs: Filesystem) -> None:
    drive.add_file("a/src", b"source")
    drive.add_file("b/dst", b"precious")
    fs.getattr("/a/src")
    fs.getattr("/b/dst")
    drive.fail("move", DriveError("refused"))
    with pytest.raises(DriveError):
        fs.rename("/a/src", "/b/dst")
    assert drive.content("b/dst") == b"precious" and drive.names("b") == ["dst"]
    assert read_file(fs, "/b/dst") == b"precious"


def test_the_replay_outlives_errors_and_says_so(
    drive: SwitchedDrive, fs: Filesystem, caplog: pytest.LogCaptureFixture
) -> None:
    assert listing(fs) == []
    drive.offline = True
    fs.mkdir("/d")
    drive.offline = False
    drive.fail("mkdir", RuntimeError("a bug"))
    assert not fs.drain(0.5)
    assert "RuntimeError: a bug" in (fs.stats()["uploads"]["paused"] or "")
    assert fs.drain(10) and drive.names() == ["d"]
    assert fs.stats()["uploads"]["paused"] is None


def test_a_restart_between_two_replayed_changes_goes_on_from_there(
    drive: SwitchedDrive, fs_factory: FsFactory
) -> None:
    fs = fs_factory()
    assert listing(fs) == []
    drive.offline = True
    fs.mkdir("/d")
    write_file(fs, "/d/f.txt", b"bytes")
    fs.rename("/d", "/e")
    gate = drive.hold("rename")
    drive.offline = False
    gate.wait_entered()  # the mkdir is made; the rename after it is on its way...
    drive.offline = True
    gate.open()  # ...and meets the outage again
    fs.close()
    drive.offline = False
    again = fs_factory()
    assert again.drain(10)
    assert drive.tree() == {"e": None, "e/f.txt": b"bytes"}


def test_a_file_renamed_here_stays_readable_offline(drive: SwitchedDrive, fs: Filesystem) -> None:
    drive.add_file("a.txt", b"cached")
    assert read_file(fs, "/a.txt") == b"cached"
    blocks_stored(fs)
    fs.rename("/a.txt", "/b.txt")  # iCloud gives the renamed file a new etag
    drive.offline = True
    assert read_file(fs, "/b.txt") == b"cached", "its cached content followed it"


def test_a_file_changed_elsewhere_is_not_served_from_its_old_blocks_after_a_rename(
    drive: SwitchedDrive, fs: Filesystem
) -> None:
    drive.add_file("a.txt", b"old")
    assert read_file(fs, "/a.txt") == b"old"
    blocks_stored(fs)
    drive.add_file("a.txt", b"new")  # changed elsewhere: the listing here is stale
    fs.rename("/a.txt", "/b.txt")  # meets the stale etag, and renames the new version
    assert read_file(fs, "/b.txt") == b"new"


def test_a_folder_made_offline_keeps_showing_its_entries_while_the_rest_is_made(
    drive: SwitchedDrive, fs: Filesystem
) -> None:
    drive.add_file("x.txt", b"x")
    assert listing(fs) == ["x.txt"]
    drive.offline = True
    fs.mkdir("/a")
    fs.mkdir("/a/b")
    fs.rename("/x.txt", "/a/x.txt")
    write_file(fs, "/a/b/f.txt", b"f")
    expected = {"a": None, "a/b": None, "a/b/f.txt": b"f", "a/x.txt": b"x"}
    gate = drive.hold("mkdir", "b")
    drive.offline = False
    gate.wait_entered()  # "a" is made in iCloud, "b" not yet
    assert local_tree(fs) == expected
    gate.open()
    assert fs.drain(10) and drive.tree() == expected and local_tree(fs) == expected


def test_a_change_icloud_refuses_is_dropped_said_and_holds_nothing_back(
    drive: SwitchedDrive, fs: Filesystem
) -> None:
    drive.add_file("keep.txt", b"k")
    drive.add_folder("gone")
    drive.add_file("rename-me.txt", b"r")
    assert listing(fs) == ["gone", "keep.txt", "rename-me.txt"]
    drive.offline = True
    fs.rename("/keep.txt", "/gone/keep.txt")
    fs.rename("/rename-me.txt", "/renamed.txt")
    gate = drive.hold("move")
    drive.offline = False
    gate.wait_entered()
    drive.delete(drive.item_at("gone"))  # another device deleted the folder meanwhile
    gate.open()
    assert fs.drain(10)
    assert drive.tree() == {"keep.txt": b"k", "renamed.txt": b"r"}, "the next change was made"
    assert "iCloud refused the rename of keep.txt" in fs.stats()["uploads"]["last_error"]
    fs.refresh("/")
    assert listing(fs) == ["keep.txt", "renamed.txt"], "the file shows where iCloud has it"


def test_a_replay_moves_by_what_icloud_has_not_by_what_the_mount_shows(
    drive: SwitchedDrive, fs: Filesystem
) -> None:
    """Found by the model-based test: f/f moved out over a folder made offline, then f over it,
    then renamed. Replaying the second change, the mount no longer shows "f" at the top, but
    iCloud still has it there: the move must not trust the mount's listings to pick its order."""
    fs.mkdir("/f")
    fs.mkdir("/f/f")
    drive.offline = True
    fs.mkdir("/a")
    gate = drive.hold("mkdir")
    drive.offline = False
    fs.rename("/f/f", "/a")
    fs.rename("/f", "/a")
    fs.rename("/a", "/c")
    gate.open()
    assert fs.drain(10)
    assert drive.tree() == {"c": None} and local_tree(fs) == {"c": None}
    assert not fs.stats()["uploads"]["last_error"]


def test_a_change_of_case_made_offline_keeps_the_file_in_its_listing(
    drive: SwitchedDrive, fs: Filesystem
) -> None:
    drive.add_file("report.txt", b"r")
    assert listing(fs) == ["report.txt"]
    drive.offline = True
    fs.rename("/report.txt", "/Report.txt")
    drive.offline = False
    assert fs.drain(10)
    assert drive.names() == ["Report.txt"]
    drive.offline = True  # the link drops again: the listing kept here must show it
    assert listing(fs) == ["Report.txt"]


def test_a_stored_file_is_in_the_cache_before_it_can_be_found_again(
    drive: SwitchedDrive, fs: Filesystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the model-based test: a file closed while its upload was storing it was let go
    before its bytes were in the content cache; opened again offline, it could not be read."""
    assert listing(fs) == []
    write_file(fs, "/d", b"xy")
    importing, go = threading.Event(), threading.Event()
    keep = fs.content.import_file

    def slow_import(docwsid: str, etag: str, source: Path) -> bool:
        importing.set()
        go.wait(5)
        return keep(docwsid, etag, source)

    monkeypatch.setattr(fs.content, "import_file", slow_import)
    uploading = threading.Thread(target=fs.drain, args=(10,))
    uploading.start()
    assert importing.wait(5)  # stored in iCloud; its blocks are on their way into the cache
    drive.offline = True
    threading.Timer(0.3, go.set).start()
    fh = fs.open("/d", os.O_RDWR)
    fs.fsync(fh)
    fs.release(fh)
    fh = fs.open("/d", os.O_WRONLY)
    assert fs.write(fh, b"z", 5) == 1
    fs.release(fh)
    drive.offline = False
    uploading.join()
    assert read_file(fs, "/d") == b"xy\0\0\0z"
    assert fs.drain(10) and drive.content("d") == b"xy\0\0\0z"
