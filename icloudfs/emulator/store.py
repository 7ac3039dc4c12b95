"""Durable drive and account state: SQLite metadata (WAL) plus one blob file per content version.

One connection guarded by a re-entrant lock serialises writers (requests run on
the event loop and on worker threads); every write is one transaction. A file's
content is an immutable blob named by a random id, so a new version never
disturbs a download that is streaming the old one, and a signed content URL can
pin a version simply by naming its blob. Etags come from one store-wide
revision counter: folders show ``rev``, files ``crev::rev`` (content::metadata),
as iCloud does; every write takes a new revision. One class, longer than most, because every
write is one transaction on that one connection.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from icloudfs.emulator.names import free_name, name_key

CLOUD_DOCS = "com.apple.CloudDocs"
ROOT_ID = f"FOLDER::{CLOUD_DOCS}::root"
TRASH_ID = f"FOLDER::{CLOUD_DOCS}::TRASH_ROOT"
TRASH_PARENT = "TRASH_ROOT"  # what trashed items carry as parentId
APP_LIBRARIES = {"com.apple.Pages": "Pages", "com.apple.Numbers": "Numbers", "com.apple.Keynote": "Keynote"}
FOLDERISH = ("FOLDER", "APP_LIBRARY")
# docws addresses a document by zone plus id, case-insensitively; ``items_doc_nocase`` serves it
DOCUMENT_LOOKUP = "zone=? AND docwsid=? COLLATE NOCASE"
# a name is taken in a folder, never in the trash (it holds duplicates). Spelling out the partial
# index's own condition lets SQLite use ``items_name``: with ``parent=?`` alone it read every sibling.
NAME_LOOKUP = "parent=? AND name_key=? AND parent != 'TRASH_ROOT'"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    drivewsid TEXT PRIMARY KEY, docwsid TEXT NOT NULL, zone TEXT NOT NULL, kind TEXT NOT NULL,
    parent TEXT NOT NULL, name TEXT NOT NULL, name_key TEXT NOT NULL,
    size INTEGER NOT NULL DEFAULT 0, blob TEXT, rev INTEGER NOT NULL, crev INTEGER NOT NULL,
    created REAL NOT NULL, modified REAL NOT NULL, changed REAL NOT NULL, opened REAL NOT NULL,
    restore_parent TEXT, trashed REAL);
CREATE UNIQUE INDEX IF NOT EXISTS items_name ON items(parent, name_key) WHERE parent != 'TRASH_ROOT';
CREATE INDEX IF NOT EXISTS items_parent ON items(parent);
DROP INDEX IF EXISTS items_doc;
CREATE INDEX IF NOT EXISTS items_doc_nocase ON items(zone, docwsid COLLATE NOCASE);
CREATE INDEX IF NOT EXISTS items_blob ON items(blob);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY, kind TEXT NOT NULL, trusted INTEGER NOT NULL, expires REAL NOT NULL,
    extra TEXT NOT NULL DEFAULT '');
"""
_COLUMNS = (
    "drivewsid, docwsid, zone, kind, parent, name, size, blob, rev, crev,"
    " created, modified, changed, opened, restore_parent, trashed"
)


class NameConflict(Exception):
    """The destination folder already holds this name (compared NFC, case-insensitively)."""


def base36(n: int) -> str:
    """Apple's etags are short base-36 counters (``2z``, ``o9a``)."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


@dataclass(frozen=True)
class Item:
    """One row of the drive: a folder, file or app library."""

    drivewsid: str
    docwsid: str
    zone: str
    kind: str
    parent: str
    name: str
    size: int
    blob: str | None
    rev: int
    crev: int
    created: float
    modified: float
    changed: float
    opened: float
    restore_parent: str | None
    trashed: float | None

    @property
    def etag(self) -> str:
        return f"{base36(self.crev)}::{base36(self.rev)}" if self.kind == "FILE" else base36(self.rev)

    @property
    def is_folder(self) -> bool:
        return self.kind in FOLDERISH


@dataclass(frozen=True)
class Token:
    """A session token, trust token or web session (cookie) with its expiry."""

    token: str
    kind: str
    trusted: bool
    expires: float
    extra: str

    def alive(self, now: float | None = None) -> bool:
        return self.expires > (time.time() if now is None else now)


class Store:
    """All persistent state of one emulator, rooted at ``data_dir``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._blobs = data_dir / "blobs"
        self.staging = data_dir / "staging"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self.staging.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(data_dir / "drive.sqlite3", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT MAX(MAX(rev), MAX(crev)) FROM items").fetchone()
        self._rev = int(row[0] or 0)
        self._writes = 0  # write transactions so far; ``subtree_totals`` is memoised per value
        self._totals: dict[str, tuple[int, tuple[int, int]]] = {}
        self._ensure_roots()

    # ---- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._db:
            self._writes += 1  # before and after: a reader never caches a half-written state
            try:
                yield self._db
            finally:
                self._writes += 1

    def _next_rev(self) -> int:
        self._rev += 1
        return self._rev

    def _one(self, where: str, *args: object) -> Item | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM items WHERE {where}", args).fetchone()
        return Item(*row) if row else None

    def _insert(self, db: sqlite3.Connection, item: Item) -> None:
        db.execute(
            f"INSERT INTO items ({_COLUMNS}, name_key) VALUES ({','.join('?' * 17)})",
            (*(getattr(item, f.strip()) for f in _COLUMNS.split(",")), name_key(item.name)),
        )

    def _ensure_roots(self) -> None:
        now = time.time()
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM items WHERE drivewsid=?", (ROOT_ID,)).fetchone():
                self._insert(db, self._new(ROOT_ID, "root", CLOUD_DOCS, "FOLDER", "", "", now))
            for zone, label in APP_LIBRARIES.items():
                wsid = f"FOLDER::{zone}::documents"
                if not db.execute("SELECT 1 FROM items WHERE drivewsid=?", (wsid,)).fetchone():
                    self._insert(db, self._new(wsid, "documents", zone, "APP_LIBRARY", ROOT_ID, label, now))

    def _new(
        self,
        wsid: str,
        doc: str,
        zone: str,
        kind: str,
        parent: str,
        name: str,
        now: float,
        size: int = 0,
        blob: str | None = None,
        modified: float | None = None,
    ) -> Item:
        rev = self._next_rev()
        mtime = now if modified is None else modified
        return Item(
            wsid, doc, zone, kind, parent, name, size, blob, rev, rev, now, mtime, now, now, None, None
        )

    def _update(self, db: sqlite3.Connection, item: Item, **changes: object) -> Item:
        changes.setdefault("rev", self._next_rev())
        changes.setdefault("changed", time.time())
        if "name" in changes:
            changes["name_key"] = name_key(str(changes["name"]))
        sets = ", ".join(f"{k}=?" for k in changes)
        db.execute(f"UPDATE items SET {sets} WHERE drivewsid=?", (*changes.values(), item.drivewsid))
        row = db.execute(f"SELECT {_COLUMNS} FROM items WHERE drivewsid=?", (item.drivewsid,)).fetchone()
        return Item(*row)

    # ---- reads ----------------------------------------------------------------------------

    def get(self, drivewsid: str) -> Item | None:
        return self._one("drivewsid=?", drivewsid)

    def by_document(self, zone: str, docwsid: str) -> Item | None:
        """Look a document up the way docws addresses it: zone plus document id (case-insensitive)."""
        return self._one(DOCUMENT_LOOKUP, zone, docwsid)

    def in_another_zone(self, zone: str, docwsid: str) -> bool:
        """Whether the document lives, but outside ``zone`` (a client addressed the wrong one)."""
        return self._one("zone!=? AND docwsid=? COLLATE NOCASE", zone, docwsid) is not None

    def children(self, parent: str) -> list[Item]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM items WHERE parent=? ORDER BY name_key", (parent,)
            ).fetchall()
        return [Item(*row) for row in rows]

    def child_count(self, parent: str) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM items WHERE parent=?", (parent,)).fetchone()[0])

    def subtree_totals(self, folder: str) -> tuple[int, int]:
        """(file count, bytes) below ``folder``, recursively, as ``fileCount``/``assetQuota`` report.

        Memoised until the next write: every listing reports it for each subfolder, and on a big
        tree the recursive query costs tens of ms.
        """
        with self._lock:
            memo = self._totals.get(folder)
            if memo is not None and memo[0] == self._writes:
                return memo[1]
            writes = self._writes
            row = self._db.execute(
                """WITH RECURSIVE sub(id) AS (SELECT drivewsid FROM items WHERE parent=:f
                       UNION ALL SELECT i.drivewsid FROM items i JOIN sub ON i.parent=sub.id)
                   SELECT COUNT(*), COALESCE(SUM(size), 0) FROM items
                   WHERE kind='FILE' AND drivewsid IN (SELECT id FROM sub)""",
                {"f": folder},
            ).fetchone()
            totals = int(row[0]), int(row[1])
            self._totals[folder] = (writes, totals)
        return totals

    def used_bytes(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COALESCE(SUM(size), 0) FROM items").fetchone()[0])

    def blob_owner(self, blob: str) -> Item | None:
        """The item whose *current* version is ``blob`` (None once the content changed)."""
        return self._one("blob=?", blob)

    def blob_path(self, blob: str) -> Path:
        return self._blobs / blob[:2] / blob

    def path_of(self, drivewsid: str) -> str:
        """Slash-joined names from the root down to ``drivewsid`` ("" for the root)."""
        names: list[str] = []
        item = self.get(drivewsid)
        while item is not None and item.drivewsid != ROOT_ID and item.parent not in ("", TRASH_PARENT):
            names.append(item.name)
            item = self.get(item.parent)
        return "/".join(reversed(names))

    def is_within(self, drivewsid: str, ancestor: str) -> bool:
        """Whether ``drivewsid`` is ``ancestor`` or lies below it."""
        item = self.get(drivewsid)
        while item is not None:
            if item.drivewsid == ancestor:
                return True
            item = self.get(item.parent) if item.parent else None
        return False

    def name_taken(self, parent: str, name: str, exclude: str = "") -> bool:
        """Whether ``parent`` holds ``name`` (other than on item ``exclude``)."""
        with self._lock:
            row = self._db.execute(
                f"SELECT 1 FROM items WHERE {NAME_LOOKUP} AND drivewsid!=?", (parent, name_key(name), exclude)
            ).fetchone()
        return row is not None

    # ---- writes ---------------------------------------------------------------------------

    def create_folder(self, parent: Item, name: str) -> Item:
        doc = _new_id()
        item = self._new(
            f"FOLDER::{parent.zone}::{doc}", doc, parent.zone, "FOLDER", parent.drivewsid, name, time.time()
        )
        try:
            with self._tx() as db:
                self._insert(db, item)
        except sqlite3.IntegrityError as err:
            raise NameConflict(name) from err
        return item

    def add_file(
        self,
        parent: Item,
        name: str,
        source: Path,
        *,
        zone: str,
        docwsid: str | None = None,
        mtime: float | None = None,
        btime: float | None = None,
    ) -> Item:
        """Adopt ``source`` (moved, not copied) as a new file; a taken name becomes ``stem 2.ext``."""
        blob = uuid.uuid4().hex
        target = self.blob_path(blob)
        target.parent.mkdir(exist_ok=True)
        os.replace(source, target)
        doc = (docwsid or _new_id()).upper()
        now = time.time()
        with self._tx() as db:
            free = free_name(name, lambda n: self.name_taken(parent.drivewsid, n), is_file=True)
            item = self._new(
                f"FILE::{zone}::{doc}",
                doc,
                zone,
                "FILE",
                parent.drivewsid,
                free,
                now,
                size=target.stat().st_size,
                blob=blob,
                modified=mtime,
            )
            if btime is not None:
                item = replace(item, created=btime)
            self._insert(db, item)
        return item

    def rename(self, item: Item, name: str) -> Item:
        try:
            with self._tx() as db:
                return self._update(db, item, name=name)
        except sqlite3.IntegrityError as err:
            raise NameConflict(name) from err

    def move(self, item: Item, dest: Item) -> Item:
        try:
            with self._tx() as db:
                return self._update(db, item, parent=dest.drivewsid)
        except sqlite3.IntegrityError as err:
            raise NameConflict(item.name) from err

    def trash(self, item: Item) -> Item:
        with self._tx() as db:
            return self._update(
                db, item, parent=TRASH_PARENT, restore_parent=item.parent, trashed=time.time()
            )

    def put_back(self, item: Item) -> Item:
        """Restore to the old folder (or the root if that is gone), renaming on a clash."""
        home = self.get(item.restore_parent or ROOT_ID)
        if home is None or not self.is_within(home.drivewsid, ROOT_ID):
            home = self.get(ROOT_ID)
        assert home is not None
        with self._tx() as db:
            name = free_name(item.name, lambda n: self.name_taken(home.drivewsid, n), item.kind == "FILE")
            return self._update(db, item, parent=home.drivewsid, name=name, restore_parent=None, trashed=None)

    def delete(self, item: Item) -> None:
        """Delete ``item`` and everything below it for good, blobs included."""
        with self._tx() as db:
            rows = db.execute(
                """WITH RECURSIVE sub(id) AS (SELECT :i UNION ALL
                       SELECT i.drivewsid FROM items i JOIN sub ON i.parent=sub.id)
                   SELECT drivewsid, blob FROM items WHERE drivewsid IN (SELECT id FROM sub)""",
                {"i": item.drivewsid},
            ).fetchall()
            db.executemany("DELETE FROM items WHERE drivewsid=?", [(r[0],) for r in rows])
        for _, blob in rows:
            if blob:
                self.blob_path(blob).unlink(missing_ok=True)

    # ---- account state --------------------------------------------------------------------

    def get_value(self, key: str, default: str = "") -> str:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        return str(row[0]) if row else default

    def set_value(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, value))

    def add_token(self, kind: str, trusted: bool, ttl: float, extra: str = "") -> Token:
        token = Token(_opaque_token(), kind, trusted, time.time() + ttl, extra)
        with self._tx() as db:
            db.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?, ?)",
                (token.token, kind, int(trusted), token.expires, extra),
            )
        return token

    def get_token(self, kind: str, token: str | None) -> Token | None:
        if not token:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT token, kind, trusted, expires, extra FROM tokens WHERE kind=? AND token=?",
                (kind, token),
            ).fetchone()
        return Token(row[0], row[1], bool(row[2]), row[3], row[4]) if row else None

    def set_token_extra(self, token: Token, extra: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE tokens SET extra=? WHERE token=?", (extra, token.token))

    def expire_tokens(self, *kinds: str) -> int:
        with self._tx() as db:
            cur = db.execute(
                f"UPDATE tokens SET expires=? WHERE kind IN ({','.join('?' * len(kinds))})",
                (time.time(), *kinds),
            )
            return cur.rowcount

    def expire_token(self, token: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE tokens SET expires=? WHERE token=?", (time.time(), token))

    def tokens(self, kind: str) -> list[Token]:
        with self._lock:
            rows = self._db.execute(
                "SELECT token, kind, trusted, expires, extra FROM tokens WHERE kind=?", (kind,)
            ).fetchall()
        return [Token(r[0], r[1], bool(r[2]), r[3], r[4]) for r in rows]

    def clear_staging(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _new_id() -> str:
    return str(uuid.uuid4()).upper()


def _opaque_token() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex
