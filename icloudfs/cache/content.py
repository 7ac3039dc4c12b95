"""File content on local disk, in fixed-size blocks, bounded in bytes, evicted LRU.

A block is named by (docwsid, etag, index). The etag changes with every write,
so a block of an old version can never be served for a new one: a changed file
simply misses. When a new version of a document is stored, the blocks of its
other versions are dropped at once rather than waiting for LRU.

One file per block (``<root>/<h2>/<hash(docwsid)>/<hash(etag)>.<index>``) keeps
partial files natural (only the blocks that were read exist), makes eviction an
``unlink``, and lets a restart rebuild the index by listing the folders (oldest
first by mtime). Blocks are written to a temporary name and renamed, so a crash
never leaves a torn block behind.

Pinned documents (``icloudfs pin``) are kept for offline use: eviction skips
their blocks, and the set survives restarts (``pins.json`` beside the blocks).

Staged (dirty) files are not here: the write-back keeps them in its own folder
and this cache only subtracts their size (``pinned``) from its budget, so dirty
data is never evicted and clean data makes room for it.

``_lock`` guards the index and counters; file I/O happens outside it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

log = logging.getLogger(__name__)

BLOCK_SIZE = 1 << 20


class ContentCache:
    """Blocks of file content on disk. See the module note."""

    def __init__(
        self,
        root: Path,
        limit: int,
        *,
        block_size: int = BLOCK_SIZE,
        pinned: Callable[[], int] = lambda: 0,
    ) -> None:
        self.root = root
        self.limit = limit
        self.block_size = block_size
        self._pinned = pinned
        self._lock = threading.Lock()
        self._index: OrderedDict[str, int] = OrderedDict()  # relative path -> size, LRU first
        self._versions: dict[str, str] = {}  # document folder -> etag hash last stored
        self.used = 0
        self.hits = 0
        self.misses = 0
        root.mkdir(parents=True, exist_ok=True)
        self._pins_file = root / "pins.json"
        self._pins: set[str] = self._load_pins()  # document folders never evicted
        self._scan()

    def read_into(self, docwsid: str, etag: str, index: int, start: int, into: memoryview) -> int | None:
        """Fill ``into`` from ``start`` within one block; the bytes read (short at the block's end),
        or ``None`` when not cached. Reading into the caller's buffer (libfuse's own, for a FUSE
        read) spares a new 1 MiB object per read, whose page faults cost more than the copy."""
        rel = self._rel(docwsid, etag, index)
        try:
            fd = os.open(self.root / rel, os.O_RDONLY)
        except FileNotFoundError:
            with self._lock:
                self.misses += 1
            return None
        try:
            got = os.preadv(fd, [into], start)
        finally:
            os.close(fd)
        with self._lock:
            self.hits += 1
            if rel in self._index:
                self._index.move_to_end(rel)
        return got

    def will_need(self, docwsid: str, etag: str, index: int) -> None:
        """Start reading a cached block from disk into the page cache, so a sequential reader
        finds it there (one file per block: the kernel's own readahead stops at each file's end)."""
        try:
            fd = os.open(self.root / self._rel(docwsid, etag, index), os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        finally:
            os.close(fd)

    def contains(self, docwsid: str, etag: str, index: int) -> bool:
        with self._lock:
            return self._rel(docwsid, etag, index) in self._index

    def put(self, docwsid: str, etag: str, index: int, data: bytes) -> None:
        """Store one block (a whole block, or the short last one)."""
        rel = self._rel(docwsid, etag, index)
        path, tmp = self._slot(rel)
        tmp.write_bytes(data)
        os.replace(tmp, path)
        self._added(rel, len(data))

    def import_file(self, docwsid: str, etag: str, source: Path) -> bool:
        """Store a whole local file (just uploaded) as the blocks of that version.

        A file of one block is hard-linked, not copied: no new inode, and none freed when the
        staged name goes (on ext4 without a journal every new inode scans past those freed in
        the last minute or more: 6-9% of a 1,000-file copy's CPU). Returns True then, and the
        caller must never change ``source`` in place again."""
        try:
            size = source.stat().st_size
            if size > self.limit // 2:
                return False  # would only push out everything else
            if 0 < size <= self.block_size and self._link(self._rel(docwsid, etag, 0), source, size):
                return True
            self._copy(docwsid, etag, source, size)
        except FileNotFoundError:  # the staged copy went (written again, or deleted): no matter
            pass
        return False

    def _link(self, rel: str, source: Path, size: int) -> bool:
        path, tmp = self._slot(rel)
        try:
            os.link(source, tmp)
        except FileNotFoundError:
            raise
        except OSError as error:  # no hard links here (EPERM, EXDEV...): copy instead
            log.debug("content cache: cannot link %s (%s); copying", source, error)
            return False
        os.replace(tmp, path)
        self._added(rel, size)
        return True

    def _copy(self, docwsid: str, etag: str, source: Path, size: int) -> None:
        with source.open("rb") as src:
            src_fd = src.fileno()
            for index in range((size + self.block_size - 1) // self.block_size):
                rel = self._rel(docwsid, etag, index)
                path, tmp = self._slot(rel)
                length = min(self.block_size, size - index * self.block_size)
                with tmp.open("wb") as dst:
                    offset = index * self.block_size
                    copied = 0
                    while copied < length:
                        copied += os.copy_file_range(src_fd, dst.fileno(), length - copied, offset + copied)
                os.replace(tmp, path)
                self._added(rel, length)

    def retag(self, docwsid: str, old_etag: str, new_etag: str) -> None:
        """A version got a new etag without new content (this mount renamed or moved it): its
        blocks are the new etag's, so the file stays readable without a download (offline too)."""
        folder, old, new = self._doc_folder(docwsid), _version(old_etag), _version(new_etag)
        with self._lock:
            moving = [rel for rel in self._index if _split(rel) == (folder, old)]
            if self._versions.get(folder) == old:
                self._versions[folder] = new
        for rel in moving:
            renamed = f"{folder}/{new}.{rel.rpartition('.')[2]}"
            try:
                os.replace(self.root / rel, self.root / renamed)
            except FileNotFoundError:  # evicted meanwhile
                continue
            with self._lock:
                size = self._index.pop(rel, None)
                if size is not None:
                    self._index[renamed] = size

    def evict(self, docwsids: Iterable[str]) -> int:
        """Drop every cached version of these documents; returns the bytes freed."""
        folders = {self._doc_folder(d) for d in docwsids}
        with self._lock:
            victims = [rel for rel in self._index if _split(rel)[0] in folders]
        return self._remove(victims)

    def pin(self, docwsids: Iterable[str], *, keep: bool = True) -> None:
        """Keep (or, with ``keep=False``, stop keeping) these documents' blocks from eviction."""
        folders = {self._doc_folder(d) for d in docwsids}
        with self._lock:
            self._pins = self._pins | folders if keep else self._pins - folders
            pins = sorted(self._pins)
        temporary = self._pins_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(pins))
        os.replace(temporary, self._pins_file)

    def pinned_bytes(self) -> int:
        with self._lock:
            return sum(size for rel, size in self._index.items() if _split(rel)[0] in self._pins)

    def clear(self) -> int:
        with self._lock:
            victims = list(self._index)
        return self._remove(victims)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "bytes_used": self.used,
                "bytes_limit": self.limit,
                "blocks": len(self._index),
                "hits": self.hits,
                "misses": self.misses,
            }

    # -- internals ----------------------------------------------------------------------------

    def _slot(self, rel: str) -> tuple[Path, Path]:
        """A block's path, its folder made, and a temporary name beside it to write or link."""
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path, path.with_name(f"{path.name}.{threading.get_ident()}.tmp")

    def _rel(self, docwsid: str, etag: str, index: int) -> str:
        return f"{self._doc_folder(docwsid)}/{_version(etag)}.{index}"

    @staticmethod
    def _doc_folder(docwsid: str) -> str:
        digest = hashlib.sha256(docwsid.encode()).hexdigest()[:32]
        return f"{digest[:2]}/{digest}"

    def _added(self, rel: str, size: int) -> None:
        folder, version = _split(rel)
        with self._lock:
            victims: list[str] = []
            if self._versions.get(folder, version) != version:  # a new version: drop the old
                victims = [r for r in self._index if _split(r)[0] == folder and _split(r)[1] != version]
            self._versions[folder] = version
            self.used += size - self._index.pop(rel, 0)
            self._index[rel] = size
            budget = max(0, self.limit - self._pinned())
            excess = self.used - budget - sum(self._index[v] for v in victims)
            for candidate, candidate_size in self._index.items():  # least recently used first
                if excess <= 0:
                    break
                if candidate != rel and candidate not in victims and _split(candidate)[0] not in self._pins:
                    victims.append(candidate)
                    excess -= candidate_size
        self._remove(victims)

    def _remove(self, victims: list[str]) -> int:
        freed = 0
        with self._lock:
            for rel in victims:
                size = self._index.pop(rel, None)
                if size is not None:
                    freed += size
            self.used -= freed
        for rel in victims:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.root / rel)
        return freed

    def _load_pins(self) -> set[str]:
        try:
            return set(json.loads(self._pins_file.read_text()))
        except (OSError, ValueError, TypeError):
            return set()

    def _scan(self) -> None:
        found: list[tuple[float, str, int]] = []
        for path in self.root.glob("*/*/*"):  # blocks only: pins.json is one level up
            if path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)
                continue
            st = path.stat()
            found.append((st.st_mtime, str(path.relative_to(self.root)), st.st_size))
        for _, rel, size in sorted(found):
            self._index[rel] = size
            self.used += size
        if found:
            log.info("content cache: %d blocks, %d bytes on disk", len(found), self.used)


def _version(etag: str) -> str:
    return hashlib.sha256(etag.encode()).hexdigest()[:20]


def _split(rel: str) -> tuple[str, str]:
    """(document folder, version hash) of a block's relative path."""
    folder, _, name = rel.rpartition("/")
    return folder, name.partition(".")[0]
