"""A node's journal row: when it is written, and what makes its bytes durable with it.

A row is written when a changed file is closed (``flush``), when a namespace operation changes
its place or the version it replaces (``rewrite``), and when an upload reaches its commit point
with a digest not journaled yet (``record_attempt``). When ``write`` returns, the row and the
staged bytes it stands for are on disk: a small file's bytes (up to ``IN_ROW``) are in the row
itself, so its close costs one sync, not two; a bigger file's copy is fdatasync'ed first. Files
up to ``DIGEST_AT_CLOSE`` are hashed at close (the upload then needs no row of its own); bigger
ones are hashed as they are sent. A node's rows are written in order (``FileNode.journaling``),
and no node lock is held while the journal commits.
"""

from __future__ import annotations

import hashlib
import sqlite3

from icloudfs.cache.writeback import conflicts, staged
from icloudfs.cache.writeback.health import Troubles
from icloudfs.cache.writeback.journal import Journal, Row
from icloudfs.cache.writeback.node import FileNode

DIGEST_AT_CLOSE = 1 << 20
IN_ROW = 64 << 10


class NodeRows:
    """Writes nodes' rows to the journal. See the module note."""

    def __init__(self, journal: Journal, troubles: Troubles) -> None:
        self._journal, self._troubles = journal, troubles

    def flush(self, node: FileNode) -> None:
        """Journal the node, with its bytes, if it changed since last journaled."""
        with node.lock:
            copy = node.staged
            if copy is None or not node.dirty or copy.journaled_generation == copy.generation:
                return
            hashed = copy.size <= DIGEST_AT_CLOSE
            if hashed and copy.size > IN_ROW:  # smaller ones are hashed as read for the row
                copy.remember(conflicts.file_digest(copy.path))
            generation = copy.generation
        self.write(node, hash_content=hashed)
        with node.lock:
            copy.journaled_generation = max(copy.journaled_generation, generation)

    def rewrite(self, node: FileNode) -> None:
        """Write the row again if the node has one (its place or base changed)."""
        with node.lock:
            has_row = node.staged is not None and bool(node.staged.journal_row) and node.dirty
        if has_row:
            self.write(node)

    def record_attempt(self, node: FileNode, digest: str) -> None:
        """Journal the digest of bytes an upload sent, before the request that makes them appear
        (its control calls this): if we crash after iCloud stored them, the next attempt
        recognises them as ours, not as a conflict. Small files' digests were journaled at close."""
        with node.lock:
            copy = node.staged
            if copy is None or digest in copy.attempts:
                return
            copy.remember(digest)
        self.write(node)

    def write(self, node: FileNode, *, hash_content: bool = False) -> None:
        """Write the node's row (see the module note). ``hash_content``: remember the digest of
        a small file's bytes too, read once for both."""
        with node.journaling:
            with node.lock:
                copy = node.staged
                if copy is None or node.deleted:
                    return
                content = staged.pread(copy) if copy.size <= IN_ROW else None
                if content is None:
                    staged.datasync(copy)
                elif hash_content:
                    copy.remember(hashlib.sha256(content).hexdigest())
                row = Row(node.parent_id, node.name, node.remote, copy.mtime, copy.path.name, copy.attempts)
                data = row.encode()
            try:
                self._journal.write(node.key, data, content)
            except (OSError, sqlite3.Error) as error:
                self._troubles.report("journaling", error)
                raise
            self._troubles.report("journaling", None)
            with node.lock:
                copy.journal_row = data
