"""The write-back journal: one durable row per file with changes not yet stored remotely, and
the namespace changes (mkdir, rename, delete) waiting to be made remotely, in order.

A row is the node's JSON (``Row``: folder, name, the stored version it replaces, the staged
copy's file name, upload digests), keyed by the node's key, and for a small file its bytes as
well: then the one commit that makes the row durable makes the bytes durable too, and the
staged copy needs no sync of its own. Every write is committed with ``synchronous=FULL``, so
when a call returns the row survives a crash or a power cut; commits wait for the disk, which is
why the journal has a lock of its own and callers hold nothing else while writing.

Namespace changes (``changelog.py``) are kept in order of their sequence number. When a mkdir
is replayed, the folder's placeholder id gets the id iCloud gave it: ``aliases`` keeps that
pair, in the same commit as the replayed change goes, so a row naming the placeholder (a file
written in that folder) still finds its folder after a crash.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from icloudfs.cache.listing import item_from_row, item_to_row
from icloudfs.drive.types import Item


@dataclass
class Row:
    """What a journal row records of a node with a staged copy."""

    parent_id: str
    name: str
    base: Item | None  # the stored version the bytes replace; None for a new file
    mtime: float
    file: str  # the staged copy's name in the staged folder
    attempts: list[str] = field(default_factory=list)

    def encode(self) -> str:
        return json.dumps(
            {
                "parent_id": self.parent_id,
                "name": self.name,
                "base": None if self.base is None else item_to_row(self.base),
                "mtime": self.mtime,
                "file": self.file,
                "attempts": self.attempts,
            }
        )

    @classmethod
    def decode(cls, data: str) -> Row:
        raw: dict[str, Any] = json.loads(data)
        base = None if raw["base"] is None else item_from_row(raw["base"])
        return cls(raw["parent_id"], raw["name"], base, raw["mtime"], raw["file"], raw.get("attempts", []))


class Journal:
    """Rows of pending uploads in SQLite (WAL, synchronous=FULL)."""

    def __init__(self, path: Path) -> None:
        path.touch(mode=0o600, exist_ok=True)
        os.chmod(path, 0o600)
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, data TEXT)")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(entries)")}
        if "content" not in columns:  # a journal from before small files' bytes were kept in it
            self._db.execute("ALTER TABLE entries ADD COLUMN content BLOB")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT)"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS aliases (local TEXT PRIMARY KEY, real TEXT)")
        self._lock = threading.Lock()

    def rows(self) -> list[tuple[str, str]]:
        """Every row: (key, data), in the order they were last written (a rewrite is a new rowid)."""
        with self._lock:
            return list(self._db.execute("SELECT key, data FROM entries ORDER BY rowid").fetchall())

    def content(self, key: str) -> bytes | None:
        """The file bytes kept in a row; None when the row keeps none (a bigger file). Asked row
        by row, not with ``rows``: a journal of many small files holds up to 64 KiB for each."""
        with self._lock:
            found = self._db.execute("SELECT content FROM entries WHERE key = ?", (key,)).fetchone()
        return None if found is None or found[0] is None else bytes(found[0])

    def write(self, key: str, data: str, content: bytes | None = None) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO entries VALUES (?, ?, ?)", (key, data, content))

    def delete(self, key: str) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM entries WHERE key = ?", (key,))

    def forget(self, rows: Iterable[tuple[str, str]]) -> None:
        """Delete these rows, in one commit, each only if it still holds that data (a row
        written again since belongs to a newer version and stays)."""
        with self._lock, self._db:
            self._db.executemany("DELETE FROM entries WHERE key = ? AND data = ?", list(rows))

    # -- namespace changes --------------------------------------------------------------------

    def changes(self) -> list[tuple[int, str]]:
        """Every waiting namespace change: (seq, data), oldest first."""
        with self._lock:
            return list(self._db.execute("SELECT seq, data FROM changes ORDER BY seq").fetchall())

    def add_change(self, data: str) -> int:
        """Journal a change; returns its sequence number."""
        with self._lock, self._db:
            cursor = self._db.execute("INSERT INTO changes (data) VALUES (?)", (data,))
            assert cursor.lastrowid is not None
            return cursor.lastrowid

    def change_made(
        self, seq: int, rewritten: Iterable[tuple[int, str]], alias: tuple[str, str] | None = None
    ) -> None:
        """A change was made remotely: in one commit it goes, the later changes it rebased are
        rewritten, and a mkdir's placeholder id is aliased to the real one."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM changes WHERE seq = ?", (seq,))
            self._db.executemany("UPDATE changes SET data = ? WHERE seq = ?", [(d, s) for s, d in rewritten])
            if alias is not None:
                self._db.execute("INSERT OR REPLACE INTO aliases VALUES (?, ?)", alias)

    def aliases(self) -> dict[str, str]:
        """Placeholder folder ids -> the ids iCloud gave those folders."""
        with self._lock:
            return dict(self._db.execute("SELECT local, real FROM aliases").fetchall())

    def forget_aliases(self) -> None:
        """Nothing names a placeholder any more (called at start, once rows are resolved)."""
        with self._lock, self._db:
            self._db.execute("DELETE FROM aliases")

    def close(self) -> None:
        with self._lock:
            self._db.close()
