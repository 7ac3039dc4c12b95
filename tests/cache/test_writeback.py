"""Write-back: journal before close returns, resume on start, retries, conflicts, cancellation,
copy-on-write, and a scheduler that outlives its errors."""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from icloudfs.cache.content import ContentCache
from icloudfs.cache.metadata import MetadataCache
from icloudfs.cache.reader import Reader
from icloudfs.cache.writeback import DIGEST_AT_CLOSE, IN_ROW, FileNode, NodeState, WriteBack, conflicts
from icloudfs.cache.writeback.conflicts import conflict_name
from icloudfs.cache.writeback.journal import Journal
from icloudfs.cache.writeback.node import Job
from icloudfs.cache.writeback.staged import start_write_out
from icloudfs.drive.memory import MemoryDrive
from icloudfs.drive.protocol import UploadControl
from icloudfs.drive.types import Item
from icloudfs.errors import Conflict, Throttled
from tests.cache.conftest import read_block, read_staged
from tests.support.gated import GatedDrive
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

    @property
    def root(self) -> str:
        return self.meta.root().id

    def new(self, name: str) -> FileNode:
        """A new file, open for writing (as ``create`` leaves it)."""
        return self.wb.create(self.root, name, 0.0)

    def opened(self, item: Item, keep: int | None = None) -> FileNode:
        """A stored file opened for writing, with a staged copy of ``keep`` bytes (all: None)."""
        node = self.wb.open(item, writer=True)
        assert node is not None
        self.wb.stage(node, item.size if keep is None else keep)
        return node

    def write(self, node: FileNode, data: bytes) -> None:
        """Replace the content and close."""
        self.wb.truncate(node, 0)
        self.wb.write(node, 0, data)
        self.wb.release(node, writer=True)

    def close(self) -> None:
        self.wb.close()
        self.reader.close()


@pytest.fixture
def parts(drive: MemoryDrive, tmp_path: Path) -> Iterator[Parts]:
    made = Parts(drive, tmp_path, delay=3600.0)
    yield made
    made.close()


def _calls(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[Any]:
    """The arguments ``owner.name`` is called with from now on (it still runs)."""
    seen: list[Any] = []
    real = getattr(owner, name)
    monkeypatch.setattr(owner, name, lambda arg: seen.append(arg) or real(arg))
    return seen


def _staged(node: FileNode) -> Any:
    assert node.staged is not None
    return node.staged


# -- journal and restart ----------------------------------------------------------------------


def test_a_closed_file_is_journaled_and_resumes_after_a_restart(
    drive: MemoryDrive, tmp_path: Path, parts: Parts
) -> None:
    node = parts.new("n.txt")
    parts.wb.write(node, 0, b"journaled")
    parts.wb.set_mtime(node, 1_700_000_000.0)  # as tar or cp -p would, before close
    parts.wb.release(node, writer=True)
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


class _Held(WriteBack):
    """A write-back that starts no upload."""

    def _start_job(self, node: FileNode) -> Job | None:
        return None


def test_a_crash_before_stored_rows_are_forgotten_costs_no_conflict_copy(
    drive: MemoryDrive, tmp_path: Path
) -> None:
    first = Parts(drive, tmp_path, delay=3600.0, kind=_NeverSettles)
    node = first.new("s.txt")
    first.wb.write(node, 0, b"stored once")
    first.wb.release(node, writer=True)
    first.wb.sync(node)
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


def test_a_copy_resumed_after_a_crash_is_still_the_cached_block(drive: MemoryDrive, tmp_path: Path) -> None:
    first = Parts(drive, tmp_path, delay=3600.0, kind=_NeverSettles)
    node = first.new("s.txt")
    first.write(node, b"stored once")
    first.wb.sync(node)
    first.close()
    stored = drive.item_at("s.txt")

    again = Parts(drive, tmp_path, delay=3600.0, kind=_Held)
    try:
        resumed = again.wb.shown_at(again.root, "s.txt")  # its row predates the upload
        assert resumed is not None and _staged(resumed).shared
        assert again.wb.open(resumed, writer=True) is resumed
        again.write(resumed, b"changed")
        assert read_block(again.content, stored.docwsid, stored.etag, 0, 0, 100) == b"stored once"
        assert read_staged(again.wb, resumed, 0, 100) == b"changed"
    finally:
        again.close()


@pytest.mark.parametrize("damage", ["emptied", "torn", "lost"])
def test_a_small_file_a_crash_cut_short_comes_back_from_its_row(
    drive: MemoryDrive, tmp_path: Path, damage: str
) -> None:
    """A small file's staged copy is not synced at close (its bytes are in its row): whatever a
    crash did to the copy, the restart puts back what was closed."""
    first = Parts(drive, tmp_path, delay=3600.0)
    node = first.new("small.txt")
    first.write(node, b"closed and journaled")
    copy = _staged(node).path
    first.close()
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
    parts.write(parts.new("small.bin"), b"s" * IN_ROW)
    assert synced == []
    big = parts.new("big.bin")
    parts.write(big, b"b" * (IN_ROW + 1))
    assert synced == [_staged(big).fd], "a bigger file's copy is synced before its row is written"


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
    assert path.stat().st_mode & 0o777 == 0o600


def test_rows_of_older_versions_left_by_a_crash_never_race_the_newest(
    drive: MemoryDrive, tmp_path: Path
) -> None:
    """Killed with two stored versions' rows not yet forgotten and a third version journaled:
    resumed side by side, the oldest row met the newer remote file as a conflict and, when a
    write reached it, the newest bytes went to a conflict copy (the kill -9 test's failure)."""
    first = Parts(drive, tmp_path, delay=3600.0, kind=_NeverSettles)
    node = first.new("v.txt")
    first.write(node, b"version 1")
    first.wb.sync(node)
    for data in (b"version 2", b"version 3"):
        stored = drive.item_at("v.txt")
        first.meta.put(first.root, stored)
        node = first.opened(stored, keep=0)  # the stored node is gone: a new one, as open() makes
        first.write(node, data)
        if data == b"version 2":
            first.wb.sync(node)
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
    first.write(first.new("s.txt"), b"ours")
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


# -- digests ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "file_hashes"), [(14, 0), (IN_ROW + 1, 1)])
def test_a_small_file_is_hashed_and_journaled_once(
    drive: MemoryDrive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, file_hashes: int
) -> None:
    """Its digest goes into the row written at close; the upload finds it there. Bytes kept in
    the row are hashed as they are read for it, without reading the staged copy again."""
    real = conflicts.file_digest
    hashed = _calls(monkeypatch, conflicts, "file_digest")
    commits: list[str] = []
    journal_write = Journal.write
    monkeypatch.setattr(
        Journal, "write", lambda self, key, *rest: commits.append(key) or journal_write(self, key, *rest)
    )
    made = Parts(drive, tmp_path, delay=3600.0)
    data = os.urandom(size)
    try:
        node = made.new("small.txt")
        made.wb.write(node, 0, data)
        made.wb.release(node, writer=True)
        assert _staged(node).attempts == [real(_staged(node).path)], (
            "the digest is in the row written at close"
        )
        made.wb.sync(node)
        assert drive.content("small.txt") == data
        assert len(hashed) == file_hashes and commits == [node.key], "one row, written at close"
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
        node = made.new("big.bin")
        made.wb.write(node, 0, data)
        made.wb.release(node, writer=True)
        assert _staged(node).attempts == []
        made.wb.sync(node)
        digest = hashlib.sha256(data).hexdigest()
        assert _staged(node).attempts == [digest]
        assert len(drive.rows_at_commit) == 1 and digest in drive.rows_at_commit[0]
        assert drive.content("big.bin") == data and not hashed
    finally:
        made.close()


# -- failures ---------------------------------------------------------------------------------


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
            node = made.new(name)
            made.wb.write(node, 0, name.encode())
            made.wb.release(node, writer=True)
        assert made.wb.drain(10.0)
        assert drive.content("first.txt") == b"first.txt" and drive.content("second.txt") == b"second.txt"
        assert not failures and "first.txt not kept after its upload" in caplog.text
    finally:
        made.close()


def test_failed_uploads_are_retried_with_the_bytes_kept(drive: MemoryDrive, parts: Parts) -> None:
    drive.fail("upload", Throttled("slow down"))
    node = parts.new("r.txt")
    parts.wb.write(node, 0, b"retry me")
    parts.wb.sync(node)  # iCloud cannot take it now: the bytes are journaled, and fsync returns
    assert drive.names() == []
    stats = parts.wb.stats()
    assert (stats["failed"], stats["queued"]) == (1, 1)
    assert "slow down" in stats["last_error"] and node.state is NodeState.FAILED
    parts.wb.sync(node)
    assert drive.content("r.txt") == b"retry me"
    assert parts.wb.stats()["failed"] == 0


def test_the_scheduler_outlives_its_errors_and_says_so(
    drive: MemoryDrive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settling writes the listings and the journal; a full disk there must pause it with the
    cause shown, and it goes on by itself once the disk has room (the thread once died)."""
    made = Parts(drive, tmp_path, delay=0.0)
    real = made.meta.flush
    full = [sqlite3.OperationalError("database or disk is full")] * 3

    def flush() -> None:
        if full:
            raise full.pop()
        real()

    monkeypatch.setattr(made.meta, "flush", flush)
    try:
        made.write(made.new("first.txt"), b"first")
        deadline = time.monotonic() + 10
        while "cache disk full" not in (made.wb.stats()["paused"] or ""):
            assert time.monotonic() < deadline, made.wb.stats()
            time.sleep(0.02)
        made.write(made.new("second.txt"), b"second")
        assert made.wb.drain(10)
        while made.wb.stats()["paused"] is not None:
            assert time.monotonic() < deadline + 10, made.wb.stats()
            time.sleep(0.02)
        assert drive.content("second.txt") == b"second" and not full
    finally:
        made.close()


# -- conflicts --------------------------------------------------------------------------------


def test_a_stale_base_uploads_a_conflict_copy(drive: MemoryDrive, parts: Parts) -> None:
    item = drive.add_file("plan.txt", b"v1")
    node = parts.opened(item)
    parts.wb.write(node, 2, b" local")
    drive.add_file("plan.txt", b"v2 remote")
    parts.wb.sync(node)
    copies = [n for n in drive.names() if n != "plan.txt"]
    assert len(copies) == 1 and copies[0].startswith("plan (conflict ")
    assert drive.content(copies[0]) == b"v1 local"
    assert drive.content("plan.txt") == b"v2 remote"
    assert parts.wb.shown_at(parts.root, copies[0]) is node, "the node follows its copy"
    parts.wb.write(node, 0, b"V")  # later writes follow the copy, never the original
    parts.wb.sync(node)
    assert drive.content(copies[0]) == b"V1 local"
    assert drive.content("plan.txt") == b"v2 remote"


def test_a_base_gone_in_an_interrupted_replace_costs_no_conflict_copy(
    drive: MemoryDrive, parts: Parts
) -> None:
    """kill -9 in a replace, after the old version was deleted and before the new one was renamed
    into place: on resume the name is free and the journal's base is gone. iCloud answers the
    second delete of that base with ETAG_CONFLICT (it sits in Recently Deleted with a new etag);
    the name holds nothing to conflict with, so the local bytes go to it, not to a copy."""
    item = drive.add_file("plan.txt", b"v1")
    node = parts.opened(item)
    parts.wb.write(node, 0, b"v2")
    drive.delete(item)  # the interrupted replace got this far
    drive.fail("replace", Conflict("iCloud refused the deletion of plan.txt: ETAG_CONFLICT"))
    parts.wb.sync(node)
    assert drive.names() == ["plan.txt"] and drive.content("plan.txt") == b"v2"


def test_a_node_retired_since_its_lookup_is_never_used_again(drive: MemoryDrive, parts: Parts) -> None:
    """A lookup that found a node just before its upload ended and its last handle closed must
    look again (and find the stored version), not write into a node that is gone."""
    node = parts.new("notes.txt")
    parts.wb.write(node, 0, b"v1")
    parts.wb.release(node, writer=True)
    parts.wb.sync(node)
    assert node.retired and parts.wb.open(node, writer=True) is None
    stored = drive.item_at("notes.txt")
    again = parts.opened(stored, keep=0)
    parts.write(again, b"v2")
    parts.wb.sync(again)
    assert drive.names() == ["notes.txt"] and drive.content("notes.txt") == b"v2"


def test_an_id_a_node_had_before_its_upload_still_finds_it(drive: MemoryDrive, parts: Parts) -> None:
    """iCloud gives each stored version a new id; a lookup made before the upload ended names
    the old one, and must reach the same node (not make a second one for a version now gone)."""
    first = drive.add_file("doc.txt", b"v0")
    node = parts.opened(first, keep=0)
    parts.wb.write(node, 0, b"v1")
    parts.wb.sync(node)  # still open: the node lives
    assert node.remote is not None and node.remote.id != first.id
    assert parts.wb.open(first, writer=False) is node
    assert parts.wb.bound(first.id) is node and parts.wb.bound(node.remote.id) is node


# -- uploads in flight ------------------------------------------------------------------------


def test_a_write_cancels_an_upload_before_its_commit(tmp_path: Path) -> None:
    """The upload of a version that is already old stops (nothing appears remotely) and the new
    version goes up instead, at once."""
    drive = GatedDrive()
    made = Parts(drive, tmp_path, delay=0.0)
    try:
        gate = drive.hold("upload")
        node = made.new("log.txt")
        made.wb.write(node, 0, b"first")
        made.wb.release(node, writer=True)
        gate.wait_entered()
        again = made.wb.open(node, writer=True)
        assert again is node
        made.wb.write(node, 5, b" and second")
        assert node.job is not None and node.job.cancelled == "written again"
        made.wb.release(node, writer=True)
        gate.open()
        assert made.wb.drain(10)
        assert drive.content("log.txt") == b"first and second"
        assert made.wb.stats()["uploaded"] == 1, "the cancelled upload stored nothing"
    finally:
        drive.release_all()
        made.close()


class _SlowCommit(MemoryDrive):
    """An upload that, past its commit point, waits for the test before it finishes."""

    def __init__(self) -> None:
        super().__init__()
        self.committed = threading.Event()
        self.finish = threading.Event()

    def upload(
        self, parent: Item, name: str, source: Path, mtime: float, control: UploadControl | None = None
    ) -> Item:
        def hold(digest: str) -> None:
            self.committed.set()
            assert self.finish.wait(10)

        return super().upload(parent, name, source, mtime, chained(control, hold))


def test_a_write_past_an_uploads_commit_goes_to_a_copy(tmp_path: Path) -> None:
    """Past its commit point an upload may read its copy again: the write must not tear it, and
    does not wait for it either."""
    drive = _SlowCommit()
    made = Parts(drive, tmp_path, delay=0.0)
    try:
        node = made.new("cow.bin")
        made.wb.write(node, 0, b"A" * 1000)
        made.wb.release(node, writer=True)
        assert drive.committed.wait(10)
        assert made.wb.open(node, writer=True) is node
        made.wb.write(node, 0, b"B")
        made.wb.release(node, writer=True)
        drive.finish.set()
        assert made.wb.drain(10)
        assert drive.content("cow.bin") == b"B" + b"A" * 999
    finally:
        drive.finish.set()
        made.close()


def test_a_namespace_operation_cancels_an_upload_or_waits_out_its_commit(tmp_path: Path) -> None:
    drive = _SlowCommit()
    made = Parts(drive, tmp_path, delay=0.0)
    try:
        node = made.new("moving.bin")
        made.write(node, b"bytes")
        assert drive.committed.wait(10)
        quiesced = threading.Event()

        def rename() -> None:
            with made.wb.quiesce(node, why="renamed") as (pinned,):
                assert pinned is node and node.job is None and node.remote is not None
                quiesced.set()

        renaming = threading.Thread(target=rename)
        renaming.start()
        assert not quiesced.wait(0.3), "it must wait for the commit to end"
        drive.finish.set()
        renaming.join(10)
        assert quiesced.is_set()
    finally:
        drive.finish.set()
        made.close()


def test_a_write_after_the_store_leaves_the_cached_block_alone(drive: MemoryDrive, parts: Parts) -> None:
    """The stored version of a small file is hard-linked into the content cache: a later write
    to the still-open file must go to a copy, never into the block of the stored version."""
    node = parts.new("linked.txt")
    parts.wb.write(node, 0, b"stored version")
    parts.wb.sync(node)
    stored = drive.item_at("linked.txt")
    assert read_block(parts.content, stored.docwsid, stored.etag, 0, 0, 100) == b"stored version"
    assert _staged(node).path.stat().st_nlink == 2
    parts.wb.write(node, 0, b"STORED")
    assert read_block(parts.content, stored.docwsid, stored.etag, 0, 0, 100) == b"stored version"
    assert read_staged(parts.wb, node, 0, 100) == b"STORED version"
    parts.wb.sync(node)
    parts.wb.release(node, writer=True)
    assert drive.content("linked.txt") == b"STORED version"


def test_write_out_is_started_through_libc(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``sync_file_range`` through ctypes: a wrong signature would fail every call (EINVAL)."""
    caplog.set_level(logging.DEBUG, logger="icloudfs.cache.writeback.staged")
    with (tmp_path / "staged").open("wb") as staged:
        staged.write(b"x" * (1 << 20))
        staged.flush()
        start_write_out(staged.fileno())
    assert not caplog.records
    start_write_out(-1)
    assert "Bad file descriptor" in caplog.text


def test_conflict_names() -> None:
    when = datetime(2026, 1, 31, 23, 59, 58)
    assert conflict_name("report.txt", when) == "report (conflict 2026-01-31 235958).txt"
    assert conflict_name("archive.tar.gz", when, 2) == "archive.tar (conflict 2026-01-31 235958 2).gz"
    assert conflict_name(".bashrc", when) == ".bashrc (conflict 2026-01-31 235958)"
    assert conflict_name("Makefile", when) == "Makefile (conflict 2026-01-31 235958)"
    assert conflict_name("draft.", when) == "draft. (conflict 2026-01-31 235958)"
