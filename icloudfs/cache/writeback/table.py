"""The live nodes, and the three ways to find one.

- by ``key``: the upload queue and the journal name nodes so;
- by remote id: a listing names a stored file by its id, and the node bound to that id is that
  file here. Every id a node has had while alive stays bound to it (an upload gives the file a
  new one), so an id looked up just before an upload ended still finds the node;
- by where it is shown: a node with a staged copy is shown at its ``(folder, name)`` over
  whatever the listing says there, until it is clean and closed. So a file being written or
  uploaded never vanishes from its folder, whatever a listing fetched meanwhile says.

A listing's file that is bound to a node is not shown from the listing: the node is shown where
it is (or nowhere, once unlinked). That makes an unlink or a rename final the moment it returns,
whatever a listing fetched before it still says.

``_lock`` is a leaf: taken with a node's lock held, never the other way round.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable

from icloudfs.cache.writeback.node import FileNode
from icloudfs.drive import names
from icloudfs.drive.types import Item


class NodeTable:
    """Live nodes by key, by remote id and by place. See the module note."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, FileNode] = {}
        self._by_remote: dict[str, FileNode] = {}
        self._ids: dict[str, set[str]] = {}  # node key -> remote ids bound to it
        self._shown: dict[str, dict[str, FileNode]] = {}  # folder id -> name key -> node
        self._places: dict[str, tuple[str, str]] = {}  # node key -> (folder id, name key)

    # -- finding ------------------------------------------------------------------------------

    def get(self, key: str) -> FileNode | None:
        with self._lock:
            return self._by_key.get(key)

    def bound(self, remote_id: str) -> FileNode | None:
        with self._lock:
            return self._by_remote.get(remote_id)

    def bound_among(self, items: Iterable[Item]) -> dict[str, FileNode]:
        """The nodes bound to any of these items, by id (one lock for a whole listing; nothing
        to look up at all while no file is open or pending, the common case of a tree walk)."""
        with self._lock:
            found = self._by_remote
            return {i.id: found[i.id] for i in items if i.id in found} if found else {}

    def shown_at(self, folder_id: str, name: str) -> FileNode | None:
        with self._lock:
            return self._shown.get(folder_id, {}).get(names.key(name))

    def shown_in(self, folder_id: str) -> list[FileNode]:
        with self._lock:
            return list(self._shown.get(folder_id, {}).values())

    def live(self) -> list[FileNode]:
        with self._lock:
            return list(self._by_key.values())

    # -- changing -----------------------------------------------------------------------------

    def add(self, node: FileNode) -> None:
        with self._lock:
            self._by_key[node.key] = node
            self._ids.setdefault(node.key, set())
            if node.remote is not None:
                self._bind(node, node.remote.id)

    def claim(self, node: FileNode) -> FileNode:
        """Add a node made for a stored file, unless a live one is bound to that file already:
        then that one (whose lock the caller takes, to see it is still live)."""
        assert node.remote is not None
        with self._lock:
            existing = self._by_remote.get(node.remote.id)
            if existing is not None and not existing.retired:
                return existing
            self._by_key[node.key] = node
            self._bind(node, node.remote.id)
            return node

    def pin(
        self, found: FileNode | Item, *, handles: int = 0, writers: int = 0, ops: int = 0
    ) -> FileNode | None:
        """Count handles (and writers) or operations on a file's node: a node, unless it was
        retired since it was found (then None), or a stored file's live node, made if it has
        none. Counted, it is not retired until the counts go back."""
        if isinstance(found, FileNode):
            with found.lock:
                if found.retired:
                    return None
                found.handles += handles
                found.writers += writers
                found.ops += ops
            return found
        while True:
            node = self.bound(found.id)
            if node is None:
                fresh = FileNode(uuid.uuid4().hex, found.parent_id or "", found.name, found)
                fresh.handles, fresh.writers, fresh.ops = handles, writers, ops
                node = self.claim(fresh)
                if node is fresh:
                    return fresh
            with node.lock:
                if not node.retired:
                    node.handles += handles
                    node.writers += writers
                    node.ops += ops
                    return node

    def bind(self, node: FileNode, remote_id: str) -> None:
        """``remote_id`` names this node from now on (as do its earlier ids, while it lives)."""
        with self._lock:
            self._bind(node, remote_id)

    def unbind(self, node: FileNode, remote_id: str) -> None:
        """The id no longer names this node (another node took the stored file over)."""
        with self._lock:
            if self._by_remote.get(remote_id) is node:
                del self._by_remote[remote_id]
            self._ids.get(node.key, set()).discard(remote_id)

    def show(self, node: FileNode) -> None:
        """Show the node at its place (caller holds its lock), instead of where it was shown."""
        place = (node.parent_id, names.key(names.to_local(node.name)))
        with self._lock:
            self._hide(node)
            self._shown.setdefault(place[0], {})[place[1]] = node
            self._places[node.key] = place

    def hide(self, node: FileNode) -> None:
        """Stop showing the node anywhere: the listing shows the file again (or, while the node
        lives and is bound to its id, nothing)."""
        with self._lock:
            self._hide(node)

    def drop(self, node: FileNode) -> None:
        """Forget the node (caller holds its lock and has marked it retired)."""
        with self._lock:
            self._hide(node)
            if self._by_key.get(node.key) is node:
                del self._by_key[node.key]
            for remote_id in self._ids.pop(node.key, set()):
                if self._by_remote.get(remote_id) is node:
                    del self._by_remote[remote_id]

    # -- internals (hold ``_lock``) -----------------------------------------------------------

    def _bind(self, node: FileNode, remote_id: str) -> None:
        self._by_remote[remote_id] = node
        self._ids.setdefault(node.key, set()).add(remote_id)

    def _hide(self, node: FileNode) -> None:
        place = self._places.pop(node.key, None)
        if place is None:
            return
        shown = self._shown.get(place[0], {})
        if shown.get(place[1]) is node:
            del shown[place[1]]
            if not shown:
                del self._shown[place[0]]
