"""Folder listings on disk: one SQLite row per folder (JSON, with the time it was fetched).

After a restart a listing still within its TTL is used as is, and while the drive is
unreachable any known listing is served, however old. The drive's top folder is kept too,
so a restart costs no request. One connection, guarded by its own lock; the cache never
holds its own lock while waiting for this one.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from icloudfs.cache.listing import CachedListing, from_json, item_from_row, item_to_row, to_json
from icloudfs.drive.types import Item


class ListingDb:
    """The listings table (``path`` None: in memory, for tests)."""

    def __init__(self, path: Path | None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path) if path else ":memory:", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS folders (id TEXT PRIMARY KEY, data TEXT NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._db.commit()

    def root(self) -> Item | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'root'").fetchone()
        return None if row is None else item_from_row(json.loads(row[0]))

    def set_root(self, item: Item) -> None:
        with self._lock, self._db:
            row = json.dumps(item_to_row(item))
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('root', ?)", (row,))

    def load(self, folder_id: str) -> CachedListing | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM folders WHERE id = ?", (folder_id,)).fetchone()
        return None if row is None else from_json(row[0])

    def save(self, listings: Sequence[tuple[str, CachedListing | None]]) -> None:
        """Write these listings (None: delete the folder's row), in one transaction."""
        rows = [(f, None if listing is None else to_json(listing)) for f, listing in listings]
        with self._lock, self._db:
            for folder_id, data in rows:
                if data is None:
                    self._db.execute("DELETE FROM folders WHERE id = ?", (folder_id,))
                else:
                    self._db.execute("INSERT OR REPLACE INTO folders VALUES (?, ?)", (folder_id, data))

    def close(self) -> None:
        with self._lock:
            self._db.close()
