"""ICloudDrive against a real emulator, cross-checked with unmodified pyicloud."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from icloudfs.drive.types import ItemKind
from icloudfs.errors import AlreadyExists, Cancelled, Conflict, NotFound, Throttled, Unavailable
from icloudfs.icloud.drive import ICloudDrive
from icloudfs.icloud.nodes import ROOT_ID
from tests.support.emulator import Emulator
from tests.support.uploads import OnCommit


def child(drive: ICloudDrive, folder_id: str, name: str):  # type: ignore[no-untyped-def]
    return next(c for c in drive.list_folders([folder_id])[0].children if c.name == name)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_root_app_libraries_and_batched_listing(drive: ICloudDrive, emulator: Emulator) -> None:
    root = drive.root()
    names = {c.name for c in drive.list_folders([root.id])[0].children}
    assert "LegalCases" in names and "Pages" in names
    libraries = {lib.name: lib for lib in drive.app_libraries()}
    assert libraries["Pages"].kind is ItemKind.APP_LIBRARY
    legal = child(drive, ROOT_ID, "LegalCases")
    before = emulator.stats()["requests"].get("/drivews/retrieveItemDetailsInFolders", 0)
    listings = drive.list_folders([ROOT_ID, legal.id, libraries["Pages"].id])
    assert [lst.folder.id for lst in listings] == [ROOT_ID, legal.id, libraries["Pages"].id]
    assert emulator.stats()["requests"]["/drivews/retrieveItemDetailsInFolders"] == before + 1
    assert any(c.kind is ItemKind.PACKAGE for c in listings[2].children)


def test_upload_read_ranges_and_url_reuse(drive: ICloudDrive, emulator: Emulator, tmp_path: Path) -> None:
    folder = drive.mkdir(drive.root(), f"up-{time.time_ns()}")
    data = os.urandom(3 * 1024 * 1024 + 17)
    item = drive.upload(folder, "blob.bin", write(tmp_path, "blob.bin", data), mtime=1_700_000_000)
    assert item.size == len(data) and item.name == "blob.bin" and item.parent_id == folder.id
    listed = child(drive, folder.id, "blob.bin")
    assert listed.etag == item.etag and listed.mtime == 1_700_000_000
    before = emulator.stats()["requests"]
    assert drive.read(item, 0, 10) == data[:10]
    assert drive.read(item, 1_000_000, 65536) == data[1_000_000:1_065_536]
    assert drive.read(item, len(data) - 5, 100) == data[-5:]
    assert drive.read(item, len(data), 100) == b""
    after = emulator.stats()["requests"]
    by_id = [p for p in after if p.endswith("/download/by_id")]
    assert sum(after[p] - before.get(p, 0) for p in by_id) == 1, "one download URL for three ranges"


def test_an_upload_reports_its_digest_before_the_file_appears(drive: ICloudDrive, tmp_path: Path) -> None:
    """The write-back journals it then; hashed as the bytes go out, it costs no read of its own."""
    folder = drive.mkdir(drive.root(), f"digest-{time.time_ns()}")
    first, second = os.urandom(3 * 1024 * 1024 + 5), os.urandom(1000)
    seen: list[tuple[str, list[str]]] = []

    def committed(digest: str) -> None:
        seen.append((digest, [c.name for c in drive.list_folders([folder.id])[0].children]))

    control = OnCommit(committed)
    item = drive.upload(folder, "d.bin", write(tmp_path, "d.bin", first), 0.0, control)
    assert seen == [(hashlib.sha256(first).hexdigest(), [])]
    drive.replace(item, write(tmp_path, "d2.bin", second), 0.0, control)
    assert seen[1] == (hashlib.sha256(second).hexdigest(), ["d.bin"]), "the old file alone"
    assert drive.read(child(drive, folder.id, "d.bin"), 0, 2000) == second


class _CancelAfter:
    """An ``UploadControl`` that cancels once ``after`` seconds have passed since the first check."""

    def __init__(self, after: float) -> None:
        self.after = after
        self.started = 0.0
        self.checks = 0
        self.committed = False

    def check(self) -> None:
        self.checks += 1
        self.started = self.started or time.monotonic()
        if time.monotonic() - self.started >= self.after:
            raise Cancelled("renamed")

    def committing(self, sha256: str) -> None:
        self.committed = True


def test_a_cancelled_upload_stops_mid_transfer_and_leaves_nothing(
    drive: ICloudDrive, emulator: Emulator, tmp_path: Path
) -> None:
    """Over a slow link the body is read rarely (the socket is full); libcurl's progress callback
    still asks about once a second, so the transfer stops within about that, not at its end."""
    folder = drive.mkdir(drive.root(), f"cancel-{time.time_ns()}")
    existing = drive.upload(folder, "kept.bin", write(tmp_path, "kept.bin", b"kept"), 0.0)
    emulator.faults(bandwidth_mbps=4)  # 8 MiB takes about 17 s
    control = _CancelAfter(0.5)
    started = time.monotonic()
    source = write(tmp_path, "big.bin", os.urandom(8 << 20))
    with pytest.raises(Cancelled):
        drive.replace(existing, source, 0.0, control)
    assert time.monotonic() - started < 6, "it went on sending"
    assert not control.committed and control.checks > 1
    emulator.clear_faults()
    assert [c.name for c in drive.list_folders([folder.id])[0].children] == ["kept.bin"]
    assert drive.read(child(drive, folder.id, "kept.bin"), 0, 10) == b"kept"


def test_a_range_is_handed_on_in_pieces_as_it_arrives(drive: ICloudDrive, tmp_path: Path) -> None:
    """A reader waiting on a block gets its front before the rest is in: over real HTTP the body
    comes in small pieces first, in order, and together they are the bytes returned."""
    folder = drive.mkdir(drive.root(), f"pieces-{time.time_ns()}")
    data = os.urandom(1024 * 1024)
    item = drive.upload(folder, "blob.bin", write(tmp_path, "blob.bin", data), mtime=time.time())
    pieces: list[tuple[int, bytes]] = []
    returned = drive.read(item, 0, len(data), arrived=lambda at, piece: pieces.append((at, piece)))
    assert returned == data
    assert len(pieces) > 1 and len(pieces[0][1]) <= 16 * 1024
    assert [position for position, _ in pieces] == [
        sum(len(piece) for _, piece in pieces[:n]) for n in range(len(pieces))
    ]
    assert b"".join(piece for _, piece in pieces) == data


def test_pyicloud_sees_what_the_backend_wrote(drive: ICloudDrive, emulator: Emulator, tmp_path: Path) -> None:
    folder = drive.mkdir(drive.root(), f"cross-{time.time_ns()}")
    drive.upload(folder, "note.txt", write(tmp_path, "n", b"hello icloud"), mtime=time.time())
    api = emulator.signed_in(tmp_path / "other-client")
    node = api.drive[folder.name]["note.txt"]
    assert node.open().content == b"hello icloud"


def test_replace_stores_new_bytes_before_retiring_old(
    drive: ICloudDrive, emulator: Emulator, tmp_path: Path
) -> None:
    folder = drive.mkdir(drive.root(), f"rep-{time.time_ns()}")
    old = drive.upload(folder, "doc.txt", write(tmp_path, "a", b"old"), mtime=time.time())
    emulator.faults(rules=[{"path": "/upload", "status": 500, "times": 10}])
    with pytest.raises(Unavailable):
        drive.replace(old, write(tmp_path, "b", b"new content"), mtime=time.time())
    emulator.clear_faults()
    survivors = drive.list_folders([folder.id])[0].children
    assert [c.name for c in survivors] == ["doc.txt"], "a failed upload must leave the old file alone"
    assert drive.read(survivors[0], 0, 100) == b"old"
    new = drive.replace(old, write(tmp_path, "b", b"new content"), mtime=time.time())
    assert new.name == "doc.txt" and new.etag != old.etag
    (only,) = drive.list_folders([folder.id])[0].children
    assert drive.read(only, 0, 100) == b"new content"


def test_conflicts_and_duplicates(drive: ICloudDrive, tmp_path: Path) -> None:
    folder = drive.mkdir(drive.root(), f"dup-{time.time_ns()}")
    with pytest.raises(AlreadyExists):
        drive.mkdir(drive.root(), folder.name.upper())
    item = drive.upload(folder, "Same.txt", write(tmp_path, "s", b"1"), mtime=time.time())
    with pytest.raises(AlreadyExists):
        drive.upload(folder, "same.TXT", write(tmp_path, "s", b"2"), mtime=time.time())
    assert [c.name for c in drive.list_folders([folder.id])[0].children] == ["Same.txt"]
    renamed = drive.rename(item, "Other.txt")
    with pytest.raises(Conflict):
        drive.rename(item, "Stale.txt")  # old etag
    with pytest.raises(Conflict):
        drive.read(item, 0, 1)  # old version: its content is not served as current
    assert renamed.name == "Other.txt"


def test_rename_move_trash_recover_delete(drive: ICloudDrive, emulator: Emulator, tmp_path: Path) -> None:
    a = drive.mkdir(drive.root(), f"a-{time.time_ns()}")
    b = drive.mkdir(drive.root(), f"b-{time.time_ns()}")
    item = drive.upload(a, "x.txt", write(tmp_path, "x", b"x"), mtime=time.time())
    moved = drive.move(drive.rename(item, "y.txt"), b)
    assert moved.parent_id == b.id and child(drive, b.id, "y.txt").id == item.id
    assert drive.stat(moved.id).name == "y.txt"
    drive.trash(moved)
    assert not drive.list_folders([b.id])[0].children
    api = emulator.signed_in(tmp_path / "other")
    trashed = [n for n in api.drive.trash.get_children() if n.name == "y.txt"]
    assert trashed
    trashed[0].recover()
    restored = child(drive, b.id, "y.txt")
    drive.delete(restored)
    with pytest.raises(NotFound):
        drive.stat(restored.id)


def test_transient_failures_are_retried(drive: ICloudDrive, emulator: Emulator) -> None:
    emulator.faults(
        rules=[
            {"path": "/drivews/retrieveItemDetailsInFolders", "status": 503, "times": 2},
            {"path": "/content", "status": "drop", "times": 1},
        ]
    )
    emulator.reset_stats()
    document = child(drive, ROOT_ID, "Café Résumé.txt")
    assert len(drive.read(document, 0, 64)) == min(64, document.size)
    stats = emulator.stats()["requests"]
    assert stats["/drivews/retrieveItemDetailsInFolders"] == 3, "two 503s, then the listing"
    assert stats["/content"] == 2, "the dropped connection was retried"


def test_retries_end_after_the_attempts_given(drive: ICloudDrive, emulator: Emulator) -> None:
    emulator.faults(rules=[{"path": "/drivews/retrieveItemDetailsInFolders", "status": 503, "times": 10}])
    emulator.reset_stats()
    with pytest.raises(Throttled):
        drive.list_folders([ROOT_ID])
    assert emulator.stats()["requests"]["/drivews/retrieveItemDetailsInFolders"] == 4, "attempts=4"
    emulator.clear_faults()
    assert drive.list_folders([ROOT_ID])[0].children, "a throttled call does not stop the next"


def test_quota(drive: ICloudDrive) -> None:
    quota = drive.quota()
    assert quota is not None and 0 < quota.used <= quota.total


def test_uploads_into_an_app_library_are_committed_in_its_zone(drive: ICloudDrive, tmp_path: Path) -> None:
    """The emulator refuses a commit under the wrong zone with 412, as Apple does (rclone issue
    9729): icloudfs addresses the parent's own zone, so files land in app libraries."""
    pages = next(lib for lib in drive.app_libraries() if lib.name == "Pages")
    name = f"note-{time.time_ns()}.txt"
    item = drive.upload(pages, name, write(tmp_path, name, b"into Pages"), mtime=1_700_000_000)
    assert item.id.startswith("FILE::com.apple.Pages::") and item.parent_id == pages.id
    assert drive.read(child(drive, pages.id, name), 0, 100) == b"into Pages"
    drive.delete(item)
