"""Folder listings, cached: LRU bounded in entries, with a TTL and a short negative window.

The unit is a folder listing (a folder and its children), because that is what
one iCloud request returns and what path lookups, ``readdir`` and ``rmdir`` need.
A listing younger than ``ttl`` answers lookups; a miss (the name is absent) is
trusted only while the listing is younger than ``negative_ttl``, after which the
folder is fetched again once. Concurrent lookups of one folder share one fetch.

Walking a tree (``find``, ``cp -r``) would cost one round trip per folder, so
when a folder's entries are read its subfolders are fetched in the background,
``PREFETCH_DEPTH`` levels down, many per ``list_folders`` call; the listings of
the last level mark that edge, and the first a walk reaches moves the prefetch
on for the whole level. A lookup alone (opening a file) fetches no subfolders.

Changes made through this mount are written into the cached listings at once
(create, rename, unlink...), so the mount sees its own writes without a fetch.
Listings hold remote truth only: files with local changes (new ones, with a
temporary ``LOCAL::`` identity, and stored ones being written or replaced) are
shown by the write-back's nodes, which the filesystem lays over the listing.

Namespace changes that wait to be made remotely (iCloud unreachable) are laid over every
listing this cache stores or loads (``overlay``, from the write-back's change log), so no fetch
undoes one. A folder made while iCloud was unreachable has a placeholder id
(``NEW_FOLDER_PREFIX``): its listing is never fetched, and once iCloud has made it, the
placeholder is an alias of the real folder (``folder_made``).

Listings are kept in SQLite in the cache folder (``listing_db``), with the wall-clock time
they were fetched: after a restart a listing still within its TTL is used as is, and when
the drive is unreachable any known listing is served, however old.

Whoever shows these listings (the kernel, through the filesystem) is told which names changed
without being asked (``on_change``): a fetch that finds another device's change, and a change
this mount's background work made (an upload stored, a change replayed).

Locks: ``_lock`` guards the in-memory state and counters; ``ListingDb`` has a lock of its
own for the SQLite connection. They are never held together, and no drive call is made while
holding either. The module is longer than its siblings because that one lock covers the
listings, the fetches in flight and the changes racing them, and each method here keeps that
invariant; the listing type and its diff (``listing``) and its table (``listing_db``) live apart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from pathlib import Path

from cachetools import LRUCache

from icloudfs.cache.listing import (
    CachedListing,
    Changed,
    apply_change,
    differ,
    from_drive,
    name_key,
)
from icloudfs.cache.listing_db import ListingDb
from icloudfs.drive import names
from icloudfs.drive.patience import impatient
from icloudfs.drive.protocol import Drive
from icloudfs.drive.types import Item
from icloudfs.errors import AuthError, NotFound, Throttled, Unavailable

log = logging.getLogger(__name__)

LOCAL_PREFIX = "LOCAL::"
NEW_FOLDER_PREFIX = "NEWFOLDER::"  # a folder made here that iCloud has not made yet
PREFETCH_DEPTH = 3  # levels of subfolders fetched ahead of a walk
PREFETCH_MAX_FOLDERS = 512  # per level and walk step; several list requests of 64 in parallel
_OFFLINE_ERRORS = (Unavailable, Throttled, AuthError)


def is_local(item: Item) -> bool:
    """True for a file created on this mount that has not been uploaded yet."""
    return item.id.startswith(LOCAL_PREFIX)


def is_new_folder(folder_id: str) -> bool:
    """True for a folder made on this mount that iCloud has not made yet (see the module note)."""
    return folder_id.startswith(NEW_FOLDER_PREFIX)


Overlay = Callable[[str, dict[str, Item]], bool]
"""``overlay(folder_id, children)``: lay the waiting changes over a listing; True if it changed."""


def _no_overlay(folder_id: str, children: dict[str, Item]) -> bool:
    return False


def _no_watcher(change: Changed) -> None:
    return None


class MetadataCache:
    """Cached folder listings in front of a ``Drive``. See the module note."""

    def __init__(
        self,
        drive: Drive,
        db_path: Path | None,
        *,
        ttl: float,
        negative_ttl: float,
        max_entries: int = 200_000,
        background: Callable[[Callable[[], None]], object] | None = None,
    ) -> None:
        self._drive = drive
        self.overlay: Overlay = _no_overlay  # set by the write-back (its change log)
        self.on_change: Callable[[Changed], None] = _no_watcher  # set by the filesystem
        self._aliases: dict[str, str] = {}  # a made folder's placeholder id -> its real id
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self._background = background
        self._lock = threading.Lock()
        self._cache: LRUCache[str, CachedListing] = LRUCache(
            maxsize=max_entries, getsizeof=lambda listing: len(listing.children) + 1
        )
        self._dirty: dict[str, CachedListing | None] = {}  # None = delete the persisted row
        # Changes made through this mount while a fetch of their folder is in flight, replayed
        # onto its answer, which may predate them: folder id -> (name key, item, put or remove).
        self._racing: dict[str, list[tuple[str, Item, bool]]] = {}
        self._used: dict[str, float] = {}  # folder id -> when a lookup or readdir last needed it
        self._inflight: dict[str, Future[CachedListing]] = {}
        self.hits = 0
        self.misses = 0
        self.fetches = 0
        self._db = ListingDb(db_path)

    # -- reading ------------------------------------------------------------------------------

    def root(self) -> Item:
        """The drive's top folder (remembered across restarts, so a restart costs no request)."""
        item = self._db.root()
        if item is None:
            item = self._drive.root()
            self._db.set_root(item)
        return item

    def children(self, folder: Item, *, max_age: float | None = None) -> dict[str, Item]:
        """The folder's entries as iCloud last listed them (with this mount's changes), by name
        key (a copy).

        ``max_age`` asks for a listing fetched more recently than the TTL requires.
        """
        listing = self._listing(folder, self.ttl if max_age is None else max_age, walk=True)
        with self._lock:
            return dict(listing.children)

    def lookup(self, folder: Item, name: str) -> Item | None:
        """The child called ``name`` (compared NFC + case-insensitively), or ``None``."""
        key = names.key(name)
        found = self._listing(folder, self.ttl).children.get(key)
        if found is None:  # trust a miss only from a recent listing
            found = self._listing(folder, self.negative_ttl).children.get(key)
        return found

    def subfolders(self, folder_id: str) -> int | None:
        """How many subfolders a folder has, if its listing is in memory (no request, no disk)."""
        with self._lock:
            listing = self._cached(self._aliases.get(folder_id, folder_id))
            if listing is None:
                return None
            if listing.folders is None:  # counted once: a folder's attributes are asked often
                listing.folders = sum(c.is_folder for c in listing.children.values())
            return listing.folders

    def folder_item(self, folder_id: str) -> Item:
        """A folder's ``Item`` by id: from a cached listing, else asked of the drive."""
        with self._lock:
            listing = self._cached(self._aliases.get(folder_id, folder_id))
        return listing.folder if listing is not None else self._drive.stat(folder_id)

    def known_folders(self, folder_id: str) -> list[Item]:
        """Subfolders of a folder that this cache has seen, at any depth (no requests)."""
        found: list[Item] = []
        pending = [folder_id]
        with self._lock:
            while pending:
                listing = self._cached(pending.pop())
                for child in listing.children.values() if listing else ():
                    if child.is_folder:
                        found.append(child)
                        pending.append(child.id)
        return found

    def path_of(self, folder_id: str, top_id: str) -> str | None:
        """The path of a folder below ``top_id``, from cached listings only (None if unknown)."""
        parts: list[str] = []
        with self._lock:
            current = folder_id
            while current != top_id:
                listing = self._cached(current)
                if listing is None or len(parts) > 1000:
                    return None
                parts.append(names.to_local(listing.folder.name))
                current = listing.folder.parent_id or ""
        return "/" + "/".join(reversed(parts))

    def known_files(self, folder_ids: Iterable[str]) -> list[Item]:
        """Files directly inside the given folders, from cached listings only."""
        with self._lock:
            listings = [self._cache.get(f) for f in folder_ids]
            return [
                child
                for listing in listings
                if listing is not None
                for child in listing.children.values()
                if not child.is_folder
            ]

    # -- changes made through this mount ------------------------------------------------------

    def put(self, parent_id: str, item: Item) -> None:
        """Record a new or changed remote child in its folder's listing."""
        if is_local(item):
            raise ValueError(f"{item.name}: a file not uploaded yet is in no listing")
        self._change(parent_id, name_key(item), item, put=True)

    def remove(self, parent_id: str, item: Item) -> None:
        """Forget a remote child that was deleted, renamed away or replaced under a new id."""
        if not is_local(item):  # a local one is never in a listing
            self._change(parent_id, name_key(item), item, put=False)

    def _change(self, parent_id: str, key: str, item: Item, *, put: bool) -> None:
        self._ensure_loaded(parent_id)
        with self._lock:
            racing = self._racing.get(parent_id)
            if racing is not None:
                racing.append((key, item, put))
            listing = self._cached(parent_id)
            changed = listing is not None and apply_change(listing.children, key, item, put=put)
            if listing is not None and changed:
                listing.folders = None
                self._dirty[parent_id] = listing
        if changed:
            self.on_change(Changed(parent_id, (names.to_local(item.name),), found=False))

    def found_changed(self, parent_id: str, names_: Sequence[str]) -> None:
        """These names show something else now (a conflict: the name is the other device's
        version): fetch the folder again on next use, and say so (``on_change``)."""
        self.invalidate(parent_id)
        self.on_change(Changed(parent_id, tuple(names_), found=True))

    def created_folder(self, parent_id: str, folder: Item) -> None:
        """A folder made here: known to be empty, so looking inside needs no request."""
        self.put(parent_id, folder)
        self._store(CachedListing(folder, {}, time.time()))

    def folder_made(self, placeholder: Item, made: Item, *, merged: bool) -> None:
        """iCloud made a folder made here as ``placeholder``: the placeholder becomes an alias of
        ``made`` (a handle or lookup that still holds it finds the real folder). ``merged``: an
        existing folder of that name was taken instead, so its listing is fetched."""
        with self._lock:
            self._aliases[placeholder.id] = made.id
        self.remove(placeholder.parent_id or "", placeholder)
        self.created_folder(made.parent_id or "", made)
        if merged:
            self.invalidate(made.id)
        self.forget(placeholder.id)

    def reapply(self, folder_ids: Iterable[str]) -> None:
        """Lay the waiting changes over these folders' listings again (one was just made
        remotely, and its result put in place of what the change had shown)."""
        for folder_id in folder_ids:
            self._ensure_loaded(folder_id)
            with self._lock:
                listing = self._cached(folder_id)
                if listing is not None and self.overlay(folder_id, listing.children):
                    listing.folders = None
                    self._dirty[folder_id] = listing

    def invalidate(self, folder_id: str) -> None:
        """Fetch this folder again on next use (the stale copy still serves offline)."""
        self._ensure_loaded(folder_id)
        with self._lock:
            listing = self._cached(folder_id)
            if listing is not None:
                listing.fetched = 0.0

    def forget(self, folder_id: str) -> None:
        """Drop a folder that no longer exists, from memory and disk."""
        with self._lock:
            self._cache.pop(folder_id, None)
            self._dirty[folder_id] = None

    def refresh(self, folder_ids: Sequence[str]) -> list[Item]:
        """Fetch these folders now, in one request; returns their subfolders (a folder iCloud
        has not made yet is not fetched)."""
        listings = self._fetch([f for f in folder_ids if not is_new_folder(f)])
        return self._subfolders(listings)

    # -- persistence and stats ----------------------------------------------------------------

    def poll(self, interval: float, batch: int = 64) -> int:
        """Fetch again the folders used within the last few intervals whose listing is older
        than ``interval``, many per request, so changes made on other devices show up without
        waiting for a lookup to find the listing expired. Returns how many were fetched."""
        now = time.time()
        with self._lock:
            recent = {f: t for f, t in self._used.items() if now - t < 5 * interval}
            self._used = recent
            due = [
                f
                for f in recent
                if (listing := self._cached(f)) is not None
                and now - listing.fetched >= interval
                and not is_new_folder(f)
            ]
        for start in range(0, len(due), batch):
            try:
                self._fetch(due[start : start + batch])
            except _OFFLINE_ERRORS as error:
                log.info("polling for remote changes paused: %s", error)
                return start
            except NotFound:
                continue  # a folder went away; the next lookup finds out
        return len(due)

    def flush(self) -> None:
        """Write changed listings to SQLite."""
        with self._lock:
            dirty, self._dirty = self._dirty, {}
        if dirty:
            self._db.save(list(dirty.items()))

    def close(self) -> None:
        self.flush()
        self._db.close()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "entries": int(self._cache.currsize),
                "folders": len(self._cache),
                "hits": self.hits,
                "misses": self.misses,
                "fetches": self.fetches,
            }

    # -- internals ----------------------------------------------------------------------------

    def _listing(self, folder: Item, max_age: float, *, walk: bool = False) -> CachedListing:
        """The folder's listing, fetched when older than ``max_age``. ``walk``: its entries are
        being read (readdir), so a tree walk may follow; subfolders are then fetched ahead. A
        lookup does not: opening one file should not set off a crawl that competes with its read.
        A folder iCloud has not made yet is never fetched: its listing is what was made here."""
        now = time.time()
        with self._lock:
            real = self._aliases.get(folder.id)
            if real is not None:
                folder = dataclasses.replace(folder, id=real)
            self._used[folder.id] = now
            listing = self._cached(folder.id)
        if listing is None:
            listing = self._load(folder.id)
        if listing is None and is_new_folder(folder.id):
            listing = self._store(CachedListing(folder, {}, now))
        if listing is not None and (now - listing.fetched < max_age or is_new_folder(folder.id)):
            with self._lock:
                self.hits += 1
                reached = [self._cached(i) for i in listing.frontier or ()] if walk else []
                frontier = [r for r in reached if r is not None and r.frontier is not None]
                for edge in frontier:
                    edge.frontier = None
            if frontier:  # a walk reached the edge of what was fetched ahead: go on ahead of it
                self._walk_ahead(frontier)
            return listing
        with self._lock:
            self.misses += 1
        # a revalidation, with the cached listing to fall back on: one attempt will do
        patience = impatient() if listing is not None else contextlib.nullcontext()
        try:
            with patience:
                fetched = self._fetch([folder.id], fresh_within=max_age)[0]
        except _OFFLINE_ERRORS as error:
            if listing is None:
                raise
            log.debug("serving %s from cache: %s", folder.name or "/", error)  # per call: detail
            return listing
        except NotFound:
            self.forget(folder.id)
            raise
        if walk:
            self._walk_ahead([fetched])
        else:
            with self._lock:  # a readdir of it later walks ahead from here
                fetched.frontier = fetched.frontier or (folder.id,)
        return fetched

    def _walk_ahead(self, listings: list[CachedListing]) -> None:
        """Fetch the subfolders of these listings (just read) in the background, before a walk
        (``ls -R``, ``find``, ``rsync``) asks for them one round trip at a time."""
        if self._background is not None:
            subfolders = self._subfolders(listings)
            if subfolders:
                self._background(lambda: self._prefetch(subfolders))

    def _fetch(self, folder_ids: Sequence[str], *, fresh_within: float = 0.0) -> list[CachedListing]:
        """Fetch listings, sharing any fetch already in flight for the same folder.
        ``fresh_within``: a listing stored that recently (by a fetch that ended since the
        caller looked) is taken as it is."""
        mine: dict[str, Future[CachedListing]] = {}
        waits: list[Future[CachedListing]] = []
        now = time.time()
        with self._lock:
            for folder_id in folder_ids:
                future = self._inflight.get(folder_id)
                stored = self._cached(folder_id) if future is None else None
                if stored is not None and now - stored.fetched < fresh_within:
                    future = Future()
                    future.set_result(stored)
                elif future is None:
                    future = mine[folder_id] = self._inflight[folder_id] = Future()
                    self._racing[folder_id] = []
                waits.append(future)
        owned = list(mine)
        if mine:
            try:
                results = self._drive.list_folders(list(mine))
                with self._lock:
                    self.fetches += 1
                for result in results:
                    listing = self._store(from_drive(result), fetched=True)
                    mine.pop(result.folder.id).set_result(listing)
                for future in mine.values():  # the drive left one out
                    future.set_exception(NotFound("folder missing from the answer"))
            except BaseException as error:
                for future in mine.values():
                    if not future.done():
                        future.set_exception(error)
                raise
            finally:
                with self._lock:
                    for folder_id in owned:
                        del self._inflight[folder_id]
                        self._racing.pop(folder_id, None)
        return [w.result() for w in waits]

    def _prefetch(self, folders: list[Item], depth: int = PREFETCH_DEPTH) -> None:
        """Fetch these folders ahead of a tree walk, then their subfolders, ``depth`` levels down
        (bounded, so one ``ls`` never crawls a whole drive)."""
        now = time.time()
        with self._lock:
            stale = [
                f.id
                for f in folders
                if ((cached := self._cache.get(f.id)) is None or now - cached.fetched >= self.ttl)
                and not is_new_folder(f.id)
            ][:PREFETCH_MAX_FOLDERS]
        if not stale:
            return
        try:
            listings = self._fetch(stale)
        except Exception as error:  # a hint only: the demand path will ask again
            log.debug("prefetch of %d folders failed: %s", len(stale), error)
            return
        deeper = self._subfolders(listings)
        if depth > 1 and deeper and self._background is not None:
            self._background(lambda: self._prefetch(deeper, depth - 1))
        elif deeper:
            edge = tuple(listing.folder.id for listing in listings)
            with self._lock:
                for listing in listings:
                    listing.frontier = edge

    def _subfolders(self, listings: Iterable[CachedListing]) -> list[Item]:
        """The folders in these listings (which other threads may be changing: hold the lock)."""
        with self._lock:
            return [c for listing in listings for c in listing.children.values() if c.is_folder]

    def _ensure_loaded(self, folder_id: str) -> None:
        """Bring a persisted listing into memory, so a change is applied to it, not lost."""
        with self._lock:
            cached = self._cached(folder_id) is not None
        if not cached:
            self._load(folder_id)

    def _cached(self, folder_id: str) -> CachedListing | None:
        """The listing in memory, including one evicted but not yet written (hold ``_lock``)."""
        return self._cache.get(folder_id) or self._dirty.get(folder_id)

    def _store(self, listing: CachedListing, *, fetched: bool = False) -> CachedListing:
        """Keep a listing; one ``fetched`` gets the changes made through this mount while it was
        in flight (an upload finished, a file was renamed), which its answer may predate.
        Without them our change would vanish for everyone waiting on this fetch: a file just
        uploaded would look absent, and the next write to it would become a new file and then a
        conflict copy. Keeping the older listing instead would lose what other devices changed
        and, while uploads go on finishing, make every lookup of a new name fetch again."""
        folder_id = listing.folder.id
        with self._lock:
            for key, item, put in self._racing.pop(folder_id, []) if fetched else []:
                apply_change(listing.children, key, item, put=put)
            self.overlay(folder_id, listing.children)
            # compared with the listing in memory only: one evicted from it (a tree larger than
            # the cache) is not read back from disk on every fetch; what the kernel holds of it
            # lasts until its own timeout, as before
            before = self._cached(folder_id) if fetched else None
            with contextlib.suppress(ValueError):  # larger than the cache: serve, don't keep
                self._cache[folder_id] = listing
            self._dirty[folder_id] = listing
        if before is not None:
            changed = differ(before.children, listing.children)
            if changed:
                self.on_change(Changed(folder_id, changed, found=True))
        return listing

    def _load(self, folder_id: str) -> CachedListing | None:
        listing = self._db.load(folder_id)
        if listing is None:
            return None
        with self._lock:
            self.overlay(folder_id, listing.children)  # kept before a change was, or after it was made
            with contextlib.suppress(ValueError):
                listing = self._cache.setdefault(folder_id, listing)
        return listing
