"""Write-back: journal before close returns, resume on start, retries, conflicts, copy-on-write."""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from icloudfs.cache import conflicts
from icloudfs.cache.conflicts import conflict_name
from icloudfs.cache.content import ContentCache
from icloudfs.cache.journal import Journal
from icloudfs.cache.metadata import LOCAL_PREFIX, MetadataCache
from icloudfs.cache.prefetch import Reader
from icloudfs.cache.writeback import DIGEST_AT_CLOSE, IN_ROW, Entry, WriteBack, _start_write_out
from icloudfs.drive.memory import MemoryDrive
from icloudfs.drive.protocol import UploadControl
from icloudfs.drive.types import Item
from icloudfs.errors import Throttled
from tests.cache.conftest import read_block, read_staged
from tests.support.uploads import chained


class Parts:
    """A write-back with its caches, restartable on the same folder."""

    def __init__(
        self,
        drive: MemoryDrive,
        folder: Path,
        delay: float,
        kind: type[WriteBack] = WriteBack,
        workers: int = 32,
    ) -> None:
        self.meta = MetadataCache(drive, None, ttl=60.0, negative_ttl=5.0)
        self.content = ContentCache(folder / "blocks", 64 << 20)
        self.reader = Reader(drive, self.content)
        self.wb = kind(
            drive, self.meta, self.content, self.reader, folder / "wb", delay=delay, workers=workers
        )
        self.wb.start()

    def close(self) -> None:
        self.wb.close()
        self.reader.close()


@pytest.fixture
def parts(drive: MemoryDrive, tmp_path: Path) -> Iterator[Parts]:
    made = Parts(drive, tmp_path, delay=3600.0)
    yield made
    made.close()


def _root(parts: Parts) -> Item:
    return parts.meta.root()


def test_a_closed_file_is_journaled_and_resumes_after_a_restart(
    drive: MemoryDrive, tmp_path: Path, parts: Parts
) -> None:
    entry = parts.wb.create(_root(parts).id, "n.txt", 0.0)
    parts.wb.attach(entry, writer=True)
    parts.wb.write(entry, 0, b"journaled")
    parts.wb.set_mtime(entry, 1_700_000_000.0)  # as tar or cp -p would, before close
    parts.wb.release(entry, writer=True)
    parts.close()  # no upload: the delay is an hour
    assert not drive.exists("n.txt")

    again = Parts(drive, tmp_path, delay=0.0)
    try:
        assert again.wb.drain(5)
        assert drive.content("n.txt") == b"journaled"
        assert drive.item_at("n.txt").mtime == 1_700_000_000.0
    finally:
        again.close()


class _NeverSettles(WriteBack):
    """A write-back killed before it forgets the journal rows of stored files."""

    def settle(self) -> None:
        pass


def test_a_crash_before_stored_rows_are_forgotten_costs_no_conflict_copy(
    drive: MemoryDrive, tmp_path: Path
) -> None:
    first = Parts(drive, tmp_path, delay=3600.0, kind=_NeverSettles)
    entry = first.wb.create(_root(first).id, "s.txt", 0.0)
    first.wb.attach(entry, writer=True)
    first.wb.write(entry, 0, b"stored once")
    first.wb.release(entry, writer=True)
    first.wb.sync(entry)
    first.close()
    assert drive.content("s.txt") == b"stored once"
    staged = tmp_path / "wb" / "staged"
    assert list(staged.iterdir()), "the staged copy stays as long as its journal row"

    again = Parts(drive, tmp_path, delay=0.0)
    try:
        assert again.wb.drain(5)
        assert drive.names() == ["s.txt"] and drive.content("s.txt") == b"stored once"
    finally:
        again.close()
    assert not list(staged.iterdir()), "row and copy are gone once the stored version is settled"


class _Held(WriteBack):
    """A write-back that starts no upload."""

    def _queue(self, entry: Entry, delay: float, *, backoff: bool = False) -> None:
        pass


def test_a_copy_resumed_after_a_crash_is_still_the_cached_block(drive: MemoryDrive, tmp_path: Path) -> None:
    first = Parts(drive, tmp_path, delay=3600.0, kind=_NeverSettles)
    entry = first.wb.create(_root(first).id, "s.txt", 0.0)
    _write(first, entry, b"stored once")
    first.wb.sync(entry)
    first.close()
    stored = drive.item_at("s.txt")

    again = Parts(drive, tmp_path, delay=3600.0, kind=_Held)
    try:
        (copy,) = (tmp_path / "wb" / "staged").iterdir()
        resumed = again.wb.entry_for(LOCAL_PREFIX + copy.stem)  # its row predates the upload
        assert resumed is not None and resumed.shared
        _write(again, resumed, b"changed")
        assert read_block(again.content, stored.docwsid, stored.etag, 0, 0, 100) == b"stored once"
        assert read_staged(again.wb, resumed, 0, 100) == b"changed"
    finally:
        again.close()


def _calls(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[Any]:
    """The arguments ``owner.name`` is called with from now on (it still runs)."""
    seen: list[Any] = []
    real = getattr(owner, name)
    monkeypatch.setattr(owner, name, lambda arg: seen.append(arg) or real(arg))
    return seen


def _write(parts: Parts, entry: Entry, data: bytes) -> None:
    parts.wb.attach(entry, writer=True)
    parts.wb.truncate(entry, 0)
    parts.wb.write(entry, 0, data)
    parts.wb.release(entry, writer=True)


@pytest.mark.parametrize("damage", ["emptied", "torn", "lost"])
def test_a_small_file_a_crash_cut_short_comes_back_from_its_row(
    drive: MemoryDrive, tmp_path: Path, damage: str
) -> None:
    """A small file's staged copy is not synced at close (its bytes are in its row): whatever a
    crash did to the copy, the restart puts back what was closed."""
    first = Parts(drive, tmp_path, delay=3600.0)
    entry = first.wb.create(_root(first).id, "small.txt", 0.0)
    _write(first, entry, b"closed and journaled")
    first.close()
    copy = entry.path
    if damage == "emptied":
        copy.write_bytes(b"")
    elif damage == "torn":
        copy.write_bytes(b"closed and \0\0\0\0")
    else:
        copy.unlink()

    again = Parts(drive, tmp_path, delay=0.0)
    try:
        assert again.wb.drain(5)
        assert drive.content("small.txt") == b"closed and journaled"
    finally:
        again.close()
    assert list((tmp_path / "wb" / "staged").iterdir()) == [], "no .restoring copy is left"


def test_closing_a_small_file_syncs_nothing_but_the_journal(
    tmp_path: Path, parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = _calls(monkeypatch, os, "fdatasync")
    small = parts.wb.create(_root(parts).id, "small.bin", 0.0)
    _write(parts, small, b"s" * IN_ROW)
    assert synced == []
    big = parts.wb.create(_root(parts).id, "big.bin", 0.0)
    _write(parts, big, b"b" * (IN_ROW + 1))
    assert synced == [big.fd], "a bigger file's copy is synced before its row is written"


def test_a_journal_from_before_rows_kept_bytes_is_read(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    with sqlite3.connect(path) as old:
        old.execute("CREATE TABLE entries (key TEXT PRIMARY KEY, data TEXT)")
        old.execute("INSERT INTO entries VALUES ('k', '{}')")
    old.close()
    journal = Journal(path)
    try:
        assert journal.rows() == [("k", "{}")]
        assert journal.content("k") is None
        journal.write("n", "{}", b"bytes")
        assert journal.content("n") == b"bytes"
    finally:
        journal.close()


def test_rows_of_older_versions_left_by_a_crash_never_race_the_newest(
    drive: MemoryDrive, tmp_path: Path
) -> None:
    """Killed with two stored versions' rows not yet forgotten and a third version journaled:
    resumed side by side, the oldest row met the newer remote file as a conflict and, when a
    write reached it, the newest bytes went to a conflict copy (the kill -9 test's failure)."""
    first = Parts(drive, tmp_path, delay=3600.0, kind=_NeverSettles)
    root = _root(first).id
    entry = first.wb.create(root, "v.txt", 0.0)
    _write(first, entry, b"version 1")
    first.wb.sync(entry)
    for data in (b"version 2", b"version 3"):
        stored = drive.item_at("v.txt")
        first.meta.put(root, stored)
        entry = first.wb.stage(stored, 0)  # the stored entry is gone: a new one, as open() makes
        _write(first, entry, data)
        if data == b"version 2":
            first.wb.sync(entry)
    first.close()
    assert drive.content("v.txt") == b"version 2"

    again = Parts(drive, tmp_path, delay=0.0)
    try:
        assert again.wb.drain(5)
        assert drive.names() == ["v.txt"], "no conflict copy"
        assert drive.content("v.txt") == b"version 3"
    finally:
        again.close()
    assert len(list((tmp_path / "wb" / "staged").iterdir())) == 0


def test_a_copy_left_by_a_cut_short_upload_goes_to_the_trash(drive: MemoryDrive, tmp_path: Path) -> None:
    """iCloud stores an upload to a taken name as ``stem 2.ext``; the drive removes it at once,
    unless killed first. After the restart, copies holding our bytes go; a user's stay."""
    first = Parts(drive, tmp_path, delay=3600.0)
    entry = first.wb.create(_root(first).id, "s.txt", 0.0)
    _write(first, entry, b"ours")
    first.close()
    drive.add_file("s.txt", b"ours")  # stored just before the kill...
    drive.add_file("s 2.txt", b"ours")  # ...and so was the copy the name clash made
    drive.add_file("s 3.txt", b"the user's own")
    drive.add_file("s 4.txt.bak", b"ours")

    again = Parts(drive, tmp_path, delay=0.0)
    try:
        assert again.wb.drain(5)
    finally:
        again.close()
    assert drive.names() == ["s 3.txt", "s 4.txt.bak", "s.txt"]
    assert [item.name for item in drive.trashed()] == ["s 2.txt"]
    assert drive.content("s.txt") == b"ours"


class _CountsRows(WriteBack):
    rows = 0

    def _write_row(self, entry: Entry, *, hash_content: bool = False) -> None:
        self.rows += 1
        super()._write_row(entry, hash_content=hash_content)


@pytest.mark.parametrize(("size", "file_hashes"), [(14, 0), (IN_ROW + 1, 1)])
def test_a_small_file_is_hashed_and_journaled_once(
    drive: MemoryDrive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, file_hashes: int
) -> None:
    """Its digest goes into the row written at close; the upload finds it there. Bytes kept in
    the row are hashed as they are read for it, without reading the staged copy again."""
    real = conflicts.file_digest
    hashed = _calls(monkeypatch, conflicts, "file_digest")
    made = Parts(drive, tmp_path, delay=3600.0, kind=_CountsRows)
    data = os.urandom(size)
    try:
        entry = made.wb.create(_root(made).id, "small.txt", 0.0)
        made.wb.attach(entry, writer=True)
        made.wb.write(entry, 0, data)
        made.wb.release(entry, writer=True)
        assert entry.attempts == [real(entry.path)], "the digest is in the row written at close"
        made.wb.sync(entry)
        assert drive.content("small.txt") == data
        assert len(hashed) == file_hashes and isinstance(made.wb, _CountsRows) and made.wb.rows == 1
    finally:
        made.close()


class _ReadsJournalAtCommit(MemoryDrive):
    """Reads the journal, as a crash right then would leave it, when an upload commits."""

    journal: Path
    rows_at_commit: list[str]

    def upload(
        self, parent: Item, name: str, source: Path, mtime: float, control: UploadControl | None = None
    ) -> Item:
        def read_rows(digest: str) -> None:
            self.rows_at_commit = [data for _, data in Journal(self.journal).rows()]

        return super().upload(parent, name, source, mtime, chained(control, read_rows))


def test_a_big_file_is_hashed_as_it_is_sent_and_journaled_before_it_appears(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not hashed at close nor before the upload (1 GiB took 0.9 s): the drive hashes the bytes
    it sends, and their digest is in the journal before the request that makes them appear."""
    drive = _ReadsJournalAtCommit()
    drive.journal = tmp_path / "wb" / "journal.db"
    hashed = _calls(monkeypatch, conflicts, "file_digest")
    made = Parts(drive, tmp_path, delay=3600.0)
    data = os.urandom(DIGEST_AT_CLOSE + 1)
    try:
        entry = made.wb.create(_root(made).id, "big.bin", 0.0)
        made.wb.attach(entry, writer=True)
        made.wb.write(entry, 0, data)
        made.wb.release(entry, writer=True)
        assert entry.attempts == []
        made.wb.sync(entry)
        digest = hashlib.sha256(data).hexdigest()
        assert entry.attempts == [digest]
        assert len(drive.rows_at_commit) == 1 and digest in drive.rows_at_commit[0]
        assert drive.content("big.bin") == data and not hashed
    finally:
        made.close()


def test_a_failure_after_an_upload_is_logged_and_later_uploads_go_on(
    drive: MemoryDrive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An error past the upload itself (here the content cache's disk is full) must not cost an
    upload thread: with few threads, every later upload would wait forever."""
    made = Parts(drive, tmp_path, delay=0.0, workers=1)
    real = made.content.import_file
    failures = [OSError(28, "No space left on device")]

    def import_file(docwsid: str, etag: str, source: Path) -> bool:
        if failures:
            raise failures.pop()
        return real(docwsid, etag, source)

    monkeypatch.setattr(made.content, "import_file", import_file)
    try:
        for name in ("first.txt", "second.txt"):
            entry = made.wb.create(_root(made).id, name, 0.0)
            made.wb.attach(entry, writer=True)
            made.wb.write(entry, 0, name.encode())
            made.wb.release(entry, writer=True)
        assert made.wb.drain(10.0)
        assert drive.content("first.txt") == b"first.txt" and drive.content("second.txt") == b"second.txt"
        assert not failures and "finishing the upload of first.txt failed" in caplog.text
    finally:
        made.close()


def test_failed_uploads_are_retried_with_the_bytes_kept(drive: MemoryDrive, parts: Parts) -> None:
    drive.fail("upload", Throttled("slow down"))
    entry = parts.wb.create(_root(parts).id, "r.txt", 0.0)
    parts.wb.attach(entry, writer=True)
    parts.wb.write(entry, 0, b"retry me")
    with pytest.raises(Throttled):
        parts.wb.sync(entry)
    stats = parts.wb.stats()
    assert (stats["failed"], stats["queued"]) == (1, 1)
    assert "slow down" in stats["last_error"]
    parts.wb.sync(entry)
    assert drive.content("r.txt") == b"retry me"
    assert parts.wb.stats()["failed"] == 0


def test_a_stale_base_uploads_a_conflict_copy(drive: MemoryDrive, parts: Parts) -> None:
    item = drive.add_file("plan.txt", b"v1")
    entry = parts.wb.stage(item, keep=item.size)
    parts.wb.attach(entry, writer=True)
    parts.wb.write(entry, 2, b" local")
    drive.add_file("plan.txt", b"v2 remote")
    parts.wb.sync(entry)
    copies = [n for n in drive.names() if n != "plan.txt"]
    assert len(copies) == 1 and copies[0].startswith("plan (conflict ")
    assert drive.content(copies[0]) == b"v1 local"
    assert drive.content("plan.txt") == b"v2 remote"
    parts.wb.write(entry, 0, b"V")  # later writes follow the copy, never the original
    parts.wb.sync(entry)
    assert drive.content(copies[0]) == b"V1 local"
    assert drive.content("plan.txt") == b"v2 remote"


class _ICloudLikeDrive(MemoryDrive):
    """Replaces as iCloud does: the new version is a new item, the old one is gone."""

    def replace(
        self, existing: Item, source: Path, mtime: float, control: UploadControl | None = None
    ) -> Item:
        parent = self.stat(existing.parent_id or "")
        fresh = self.upload(parent, f".{existing.name}.new", source, mtime, control)
        self.delete(existing)
        return self.rename(fresh, existing.name)


def test_a_lookup_of_a_version_replaced_since_stages_the_new_one(tmp_path: Path) -> None:
    # kill -9 test, seed 23: `open(O_TRUNC)` resolved the name just before an upload replaced
    # that version; staged on the old one, the next upload found it gone and made a conflict copy.
    drive = _ICloudLikeDrive()
    parts = Parts(drive, tmp_path, delay=3600.0)
    try:
        first = drive.add_file("notes.txt", b"v0")
        entry = parts.wb.stage(first, keep=0)
        parts.wb.attach(entry, writer=True)
        parts.wb.write(entry, 0, b"v1")
        parts.wb.sync(entry)
        parts.wb.release(entry, writer=True)
        replaced_by = drive.item_at("notes.txt")
        assert replaced_by.id != first.id

        again = parts.wb.stage(first, keep=0)  # the name, as looked up before the upload ended
        assert again.base is not None and again.base.id == replaced_by.id
        parts.wb.attach(again, writer=True)
        parts.wb.write(again, 0, b"v2")
        parts.wb.sync(again)
        assert drive.names() == ["notes.txt"] and drive.content("notes.txt") == b"v2"
    finally:
        parts.close()


def test_writes_during_an_upload_go_to_a_copy(drive: MemoryDrive, parts: Parts) -> None:
    entry = parts.wb.create(_root(parts).id, "cow.bin", 0.0)
    parts.wb.attach(entry, writer=True)
    parts.wb.write(entry, 0, b"A" * 1000)
    drive.latency = 0.3
    uploading = threading.Thread(target=parts.wb.sync, args=(entry,))
    uploading.start()
    while entry.uploading is None:
        pass
    parts.wb.write(entry, 0, b"B")  # does not wait for the upload, does not tear it
    uploading.join()
    assert drive.content("cow.bin") == b"A" * 1000
    drive.latency = 0.0
    parts.wb.sync(entry)
    assert drive.content("cow.bin") == b"B" + b"A" * 999


def test_a_write_after_the_store_leaves_the_cached_block_alone(drive: MemoryDrive, parts: Parts) -> None:
    """The stored version of a small file is hard-linked into the content cache: a later write
    to the still-open file must go to a copy, never into the block of the stored version."""
    entry = parts.wb.create(_root(parts).id, "linked.txt", 0.0)
    parts.wb.attach(entry, writer=True)
    parts.wb.write(entry, 0, b"stored version")
    parts.wb.sync(entry)
    stored = drive.item_at("linked.txt")
    assert read_block(parts.content, stored.docwsid, stored.etag, 0, 0, 100) == b"stored version"
    assert entry.path.stat().st_nlink == 2
    parts.wb.write(entry, 0, b"STORED")
    assert read_block(parts.content, stored.docwsid, stored.etag, 0, 0, 100) == b"stored version"
    assert read_staged(parts.wb, entry, 0, 100) == b"STORED version"
    parts.wb.sync(entry)
    parts.wb.release(entry, writer=True)
    assert drive.content("linked.txt") == b"STORED version"


def test_write_out_is_started_through_libc(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``sync_file_range`` through ctypes: a wrong signature would fail every call (EINVAL)."""
    caplog.set_level(logging.DEBUG, logger="icloudfs.cache.writeback")
    with (tmp_path / "staged").open("wb") as staged:
        staged.write(b"x" * (1 << 20))
        staged.flush()
        _start_write_out(staged.fileno())
    assert not caplog.records
    _start_write_out(-1)
    assert "Bad file descriptor" in caplog.text


def test_conflict_names() -> None:
    when = datetime(2026, 1, 31, 23, 59, 58)
    assert conflict_name("report.txt", when) == "report (conflict 2026-01-31 235958).txt"
    assert conflict_name("archive.tar.gz", when, 2) == "archive.tar (conflict 2026-01-31 235958 2).gz"
    assert conflict_name(".bashrc", when) == ".bashrc (conflict 2026-01-31 235958)"
    assert conflict_name("Makefile", when) == "Makefile (conflict 2026-01-31 235958)"
    assert conflict_name("draft.", when) == "draft. (conflict 2026-01-31 235958)"
