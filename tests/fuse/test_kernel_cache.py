"""The kernel keeps names and attributes for as long as the listing holds, and forgets them the
moment the mount learns of a change (issue 22).

Warm tree walks, ``git status`` and ``ls -l`` are fast only if the kernel answers them itself;
a change made on another device must still show within the poll interval, and one made
through the mount at once.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from icloudfs.drive.memory import MemoryDrive
from tests.fuse.conftest import LiveMount, MountFactory, RemoteView
from tests.support.icloud_view import EmulatorView

POLL_S = 1.0
SHOWS_WITHIN_S = 10.0  # the poll interval, plus a loaded CI machine's slack


def _lookups(live: LiveMount) -> int:
    """How many times the kernel asked the daemon for a name or its attributes."""
    ops, _ = live.mount.metrics.counts()
    return ops.get("getattr", 0)


def _eventually(check: Callable[[], bool], what: str, timeout: float = SHOWS_WITHIN_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_the_kernel_answers_a_warm_walk_itself(drive: MemoryDrive, mount_factory: MountFactory) -> None:
    for n in range(20):
        drive.add_file(f"repo/src/m{n}.py", b"x" * n)
    live = mount_factory(drive, metadata_ttl=3600.0, poll_interval=0)
    paths = [live.path / "repo" / "src" / f"m{n}.py" for n in range(20)]  # as `git status` does
    sizes = [p.lstat().st_size for p in paths]
    asked = _lookups(live)
    time.sleep(1.5)  # longer than the 1 s the kernel used to trust a name
    for _ in range(3):
        assert [p.lstat().st_size for p in paths] == sizes
    # (a readdir does reach the daemon, and makes the kernel ask for the folder's atime again)
    assert _lookups(live) == asked, "a warm walk still asked the daemon for every name"


def _change_remotely(drive: RemoteView) -> None:
    """Another device edits, deletes, adds and renames."""
    drive.add_file("shared/notes.txt", b"edited on the phone, and longer")
    if isinstance(drive, MemoryDrive):
        drive.trash(drive.item_at("shared/old.txt"))
        drive.rename(drive.item_at("shared/photos"), "pictures")
    else:
        assert isinstance(drive, EmulatorView)
        drive.remove("shared/old.txt")
        drive.rename_at("shared/photos", "pictures")
    drive.add_file("shared/new.txt", b"new")


def _remote_changes_show(drive: RemoteView, mount_factory: MountFactory, **options: object) -> None:
    drive.add_file("shared/notes.txt", b"v1")
    drive.add_file("shared/old.txt", b"old")
    drive.add_file("shared/photos/cat.jpg", b"meow")
    live = mount_factory(drive, metadata_ttl=3600.0, poll_interval=POLL_S, **options)
    shared = live.path / "shared"
    # the kernel learns every name, its attributes and the bytes of notes.txt
    assert sorted(os.listdir(shared)) == ["notes.txt", "old.txt", "photos"]
    assert (shared / "notes.txt").read_bytes() == b"v1"
    assert (shared / "old.txt").stat().st_size == 3
    assert (shared / "photos" / "cat.jpg").exists()
    assert not (shared / "new.txt").exists()

    _change_remotely(drive)

    _eventually(
        lambda: (shared / "notes.txt").stat().st_size == len(b"edited on the phone, and longer"),
        "the kernel kept the old size of a file edited remotely",
    )
    assert (shared / "notes.txt").read_bytes() == b"edited on the phone, and longer"
    _eventually(lambda: not (shared / "old.txt").exists(), "a file deleted remotely is still there")
    _eventually(lambda: (shared / "new.txt").exists(), "a file added remotely does not show")
    _eventually(lambda: not (shared / "photos").exists(), "a folder renamed remotely kept its old name")
    assert (shared / "pictures" / "cat.jpg").read_bytes() == b"meow"
    assert sorted(os.listdir(shared)) == ["new.txt", "notes.txt", "pictures"]
    # the name of the deleted file is free again, for a new file of this mount
    (shared / "old.txt").write_bytes(b"written again")
    assert (shared / "old.txt").read_bytes() == b"written again"


def test_remote_changes_show_within_the_poll_interval(
    drive: MemoryDrive, mount_factory: MountFactory
) -> None:
    _remote_changes_show(drive, mount_factory)


def test_remote_changes_on_icloud_show_within_the_poll_interval(
    icloud_view: EmulatorView, mount_factory: MountFactory
) -> None:
    _remote_changes_show(icloud_view, mount_factory, folder=icloud_view.base)


def test_a_change_through_the_mount_shows_at_once(drive: MemoryDrive, mount_factory: MountFactory) -> None:
    drive.add_file("docs/a.txt", b"a")
    live = mount_factory(drive, metadata_ttl=3600.0, poll_interval=0)
    docs = live.path / "docs"
    assert os.listdir(docs) == ["a.txt"]
    (docs / "a.txt").rename(docs / "b.txt")
    assert not (docs / "a.txt").exists()
    assert (docs / "b.txt").read_bytes() == b"a"
    (docs / "b.txt").write_bytes(b"longer now")
    assert (docs / "b.txt").stat().st_size == len(b"longer now")
    os.unlink(docs / "b.txt")
    assert os.listdir(docs) == []
    with pytest.raises(FileNotFoundError):
        os.stat(docs / "b.txt")


def test_refresh_forgets_what_the_kernel_holds(drive: MemoryDrive, mount_factory: MountFactory) -> None:
    """``icloudfs refresh`` (no poll) shows a remote change at once, kernel entries included."""
    drive.add_file("inbox/a.txt", b"a")
    live = mount_factory(drive, metadata_ttl=3600.0, poll_interval=0)
    inbox = live.path / "inbox"
    assert (inbox / "a.txt").read_bytes() == b"a"
    drive.add_file("inbox/a.txt", b"changed")
    drive.trash(drive.item_at("inbox/a.txt"))
    drive.add_file("inbox/a.txt", b"replaced by another device")
    live.fs.refresh("/inbox")
    _eventually(
        lambda: (inbox / "a.txt").read_bytes() == b"replaced by another device",
        "refresh left the kernel's old copy in place",
        timeout=5.0,
    )


def test_a_conflict_copy_shows_both_versions_at_once(drive: MemoryDrive, mount_factory: MountFactory) -> None:
    """The upload finds the file changed elsewhere: the name shows the other device's version
    and the local bytes show beside it, though the kernel held the name with the local size."""
    drive.add_file("brief.txt", b"v1")
    live = mount_factory(drive, metadata_ttl=3600.0, poll_interval=0, write_back=1.0)
    with open(live.path / "brief.txt", "r+b") as edit:
        edit.write(b"local edit, longer")
    assert (live.path / "brief.txt").stat().st_size == len(b"local edit, longer")
    drive.add_file("brief.txt", b"edited on a Mac")  # another device, before our upload
    live.settle(30)

    _eventually(  # no listing first: a readdir would refresh what the kernel holds
        lambda: (live.path / "brief.txt").stat().st_size == len(b"edited on a Mac"),
        "after the conflict the name kept the local version's size",
        timeout=5.0,
    )
    assert (live.path / "brief.txt").read_bytes() == b"edited on a Mac"
    copy = next(n for n in os.listdir(live.path) if n.startswith("brief (conflict "))
    assert (live.path / copy).read_bytes() == b"local edit, longer"


def test_a_remote_change_in_an_app_library_shows_too(
    drive: MemoryDrive, mount_factory: MountFactory, tmp_path: Path
) -> None:
    """App libraries (Pages, Numbers) hang under the mount's top by name, not by parent id."""
    library = drive.add_app_library("Numbers", "com.apple.Numbers")
    source = tmp_path / "sheet.csv"
    source.write_bytes(b"1,2")
    sheet = drive.upload(library, "sheet.csv", source, 1_700_000_000.0)
    live = mount_factory(drive, metadata_ttl=3600.0, poll_interval=POLL_S)
    shown = live.path / "Numbers" / "sheet.csv"
    assert shown.read_bytes() == b"1,2"
    source.write_bytes(b"1,2\n3,4 from the Mac")
    drive.replace(sheet, source, 1_700_000_100.0)
    new_size = len(b"1,2\n3,4 from the Mac")
    _eventually(lambda: shown.stat().st_size == new_size, "the kernel kept the old sheet")
    assert shown.read_bytes() == b"1,2\n3,4 from the Mac"
