"""An in-memory ``Drive`` for tests and benchmarks.

It behaves like iCloud where the filesystem can tell the difference: names are
unique per folder after NFC + case folding, every write makes a new etag, stale
etags are refused with ``Conflict``, ``replace`` keeps the old bytes until the new
ones are read in full and stores them as a new item (new id and document id, as
iCloud's backend does: there is no overwrite API, rclone PR 7717), and trashed
items leave the tree. Ids and etags come
from counters, so two drives seeded the same way hand out the same ids (a test
can "restart" against a fresh copy).

Tests look inside through the helpers below the protocol methods (``add_file``,
``content``, ``calls``...). ``latency`` adds a sleep to every protocol call, and
``fail`` makes the next calls of one method raise, to exercise retries.
One lock guards all state; sleeps happen outside it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from icloudfs.drive import names
from icloudfs.drive.protocol import Arrived, UploadControl
from icloudfs.drive.types import Item, ItemKind, Listing, Quota
from icloudfs.errors import AlreadyExists, Conflict, DriveError, NotFound

ZONE = "com.apple.CloudDocs"
ROOT_ID = f"FOLDER::{ZONE}::root"
TRASH_ID = f"FOLDER::{ZONE}::TRASH_ROOT"


@dataclass
class _Node:
    item: Item
    data: bytes = b""
    children: dict[str, str] = field(default_factory=dict)  # name key -> id


class MemoryDrive:
    """A thread-safe drive held in memory. See the module note."""

    def __init__(self, *, latency: float = 0.0, capacity: int = 5 << 40) -> None:
        self.latency = latency
        self.capacity = capacity
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._counter = 0
        self._failures: dict[str, list[Exception]] = {}
        self._nodes: dict[str, _Node] = {}
        self._libraries: list[str] = []
        for node_id, name in ((ROOT_ID, "root"), (TRASH_ID, "TRASH_ROOT")):
            item = Item(node_id, None, "", ItemKind.FOLDER, 0, 0.0, "0", ZONE, name)
            self._nodes[node_id] = _Node(item)

    # -- the Drive protocol -------------------------------------------------------------------

    def root(self) -> Item:
        with self._call("root"):
            return self._nodes[ROOT_ID].item

    def list_folders(self, folder_ids: Sequence[str]) -> list[Listing]:
        with self._call("list_folders"):
            listings = []
            for folder_id in folder_ids:
                node = self._folder(folder_id)
                children = tuple(self._nodes[c].item for c in node.children.values())
                listings.append(Listing(node.item, children))
            return listings

    def app_libraries(self) -> list[Item]:
        with self._call("app_libraries"):
            return [self._nodes[i].item for i in self._libraries]

    def stat(self, item_id: str) -> Item:
        with self._call("stat"):
            return self._node(item_id).item

    def read(self, item: Item, offset: int, length: int, arrived: Arrived | None = None) -> bytes:
        with self._call("read"):
            node = self._current(item)
            if node.item.is_folder:
                raise NotFound(f"{item.name} is a folder")
            data = node.data[offset : offset + length]
        if arrived is not None:
            arrived(0, data)  # all of it at once
        return data

    def upload(
        self, parent: Item, name: str, source: Path, mtime: float, control: UploadControl | None = None
    ) -> Item:
        data = _sent(source, control)
        with self._call("upload"):
            folder = self._folder(parent.id)
            self._check_free(folder, name)
            return self._add(folder, name, ItemKind.FILE, data, mtime).item

    def replace(
        self, existing: Item, source: Path, mtime: float, control: UploadControl | None = None
    ) -> Item:
        data = _sent(source, control)  # the new bytes are in hand before the old go
        with self._call("replace"):
            old = self._current(existing)
            folder = self._folder(old.item.parent_id or "")
            self._detach(old)
            self._forget(old)
            return self._add(folder, old.item.name, old.item.kind, data, mtime).item

    def mkdir(self, parent: Item, name: str) -> Item:
        with self._call("mkdir"):
            folder = self._folder(parent.id)
            self._check_free(folder, name)
            return self._add(folder, name, ItemKind.FOLDER, b"", time.time()).item

    def rename(self, item: Item, new_name: str) -> Item:
        with self._call("rename"):
            node = self._current(item)
            folder = self._folder(node.item.parent_id or "")
            self._check_free(folder, new_name, allow=node.item.id)
            del folder.children[names.key(node.item.name)]
            folder.children[names.key(new_name)] = node.item.id
            node.item = dataclasses.replace(node.item, name=new_name, etag=self._next_etag())
            return node.item

    def move(self, item: Item, new_parent: Item) -> Item:
        with self._call("move"):
            node = self._current(item)
            target = self._folder(new_parent.id)
            if self._is_within(target.item.id, node.item.id):
                raise DriveError(f"cannot move {item.name} into itself")
            self._check_free(target, node.item.name)
            self._detach(node)
            target.children[names.key(node.item.name)] = node.item.id
            node.item = dataclasses.replace(node.item, parent_id=target.item.id, etag=self._next_etag())
            return node.item

    def trash(self, item: Item) -> None:
        with self._call("trash"):
            node = self._current(item)
            self._detach(node)
            trash = self._nodes[TRASH_ID]
            trash.children[f"{node.item.id}"] = node.item.id
            node.item = dataclasses.replace(node.item, parent_id=TRASH_ID)

    def delete(self, item: Item) -> None:
        with self._call("delete"):
            node = self._current(item)
            self._detach(node)
            self._forget(node)

    def quota(self) -> Quota | None:
        with self._call("quota"):
            used = sum(len(n.data) for n in self._nodes.values())
            return Quota(used=used, total=self.capacity)

    # -- helpers for tests ----------------------------------------------------------------------

    def fail(self, method: str, error: Exception, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` raise ``error``."""
        with self._lock:
            self._failures.setdefault(method, []).extend([error] * times)

    def add_folder(self, path: str) -> Item:
        """``mkdir -p`` without counting calls; returns the deepest folder."""
        with self._lock:
            node = self._nodes[ROOT_ID]
            for part in _parts(path):
                child_id = node.children.get(names.key(part))
                if child_id is None:
                    node = self._add(node, part, ItemKind.FOLDER, b"", time.time())
                else:
                    node = self._nodes[child_id]
            return node.item

    def add_file(
        self, path: str, data: bytes, *, mtime: float | None = None, kind: ItemKind = ItemKind.FILE
    ) -> Item:
        """Create or overwrite a file (remotely, as another device would)."""
        folder_path, _, name = path.rstrip("/").rpartition("/")
        parent = self.add_folder(folder_path)
        stamp = time.time() if mtime is None else mtime
        with self._lock:
            folder = self._nodes[parent.id]
            existing = folder.children.get(names.key(name))
            if existing is None:
                return self._add(folder, name, kind, data, stamp).item
            node = self._nodes[existing]
            node.data = data
            node.item = dataclasses.replace(node.item, size=len(data), mtime=stamp, etag=self._next_etag())
            return node.item

    def add_app_library(self, name: str, zone: str) -> Item:
        with self._lock:
            item = Item(
                f"FOLDER::{zone}::documents",
                None,
                name,
                ItemKind.APP_LIBRARY,
                0,
                time.time(),
                self._next_etag(),
                zone,
                "documents",
            )
            self._nodes[item.id] = _Node(item)
            self._libraries.append(item.id)
            return item

    def item_at(self, path: str) -> Item:
        """The item at a ``/``-separated path from the root; ``NotFound`` if absent."""
        with self._lock:
            node = self._nodes[ROOT_ID]
            for part in _parts(path):
                child_id = node.children.get(names.key(part))
                if child_id is None:
                    raise NotFound(path)
                node = self._nodes[child_id]
            return node.item

    def exists(self, path: str) -> bool:
        try:
            self.item_at(path)
        except NotFound:
            return False
        return True

    def content(self, path: str) -> bytes:
        item = self.item_at(path)
        with self._lock:
            return self._nodes[item.id].data

    def names(self, path: str = "") -> list[str]:
        """Names in a folder, sorted."""
        item = self.item_at(path)
        with self._lock:
            return sorted(self._nodes[c].item.name for c in self._nodes[item.id].children.values())

    def tree(self, path: str = "") -> dict[str, bytes | None]:
        """Every path below ``path``: a file's bytes, None for a folder."""
        found: dict[str, bytes | None] = {}
        top = self.item_at(path)
        with self._lock:
            pending = [("", self._nodes[top.id])]
            while pending:
                prefix, node = pending.pop()
                for child_id in node.children.values():
                    child = self._nodes[child_id]
                    name = f"{prefix}{child.item.name}"
                    found[name] = None if child.item.is_folder else child.data
                    if child.item.is_folder:
                        pending.append((f"{name}/", child))
        return found

    def trashed(self) -> list[Item]:
        with self._lock:
            return [self._nodes[c].item for c in self._nodes[TRASH_ID].children.values()]

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    # -- internals (callers hold ``_lock``) -----------------------------------------------------

    @contextmanager
    def _call(self, method: str) -> Iterator[None]:
        """Sleep the latency, count the call, raise an injected failure, then hold the lock."""
        if self.latency:
            time.sleep(self.latency)
        with self._lock:
            self.calls[method] += 1
            pending = self._failures.get(method)
            if pending:
                raise pending.pop(0)
            yield

    def _next_etag(self) -> str:
        self._counter += 1
        return f"e{self._counter}"

    def _node(self, item_id: str) -> _Node:
        node = self._nodes.get(item_id)
        if node is None or node.item.parent_id == TRASH_ID:
            raise NotFound(item_id)
        return node

    def _folder(self, folder_id: str) -> _Node:
        node = self._node(folder_id)
        if not node.item.is_folder:
            raise NotFound(f"{node.item.name} is not a folder")
        return node

    def _current(self, item: Item) -> _Node:
        node = self._node(item.id)
        if node.item.etag != item.etag:
            raise Conflict(f"{item.name}: etag {item.etag} is stale (now {node.item.etag})")
        return node

    def _check_free(self, folder: _Node, name: str, allow: str | None = None) -> None:
        taken = folder.children.get(names.key(name))
        if taken is not None and taken != allow:
            raise AlreadyExists(name)

    def _add(self, folder: _Node, name: str, kind: ItemKind, data: bytes, mtime: float) -> _Node:
        self._counter += 1
        docwsid = f"{self._counter:08X}-0000-4000-8000-000000000000"
        prefix = "FOLDER" if kind.is_folder else "FILE"
        item = Item(
            f"{prefix}::{folder.item.zone}::{docwsid}",
            folder.item.id,
            name,
            kind,
            len(data),
            mtime,
            self._next_etag(),
            folder.item.zone,
            docwsid,
        )
        node = _Node(item, data)
        self._nodes[item.id] = node
        folder.children[names.key(name)] = item.id
        return node

    def _detach(self, node: _Node) -> None:
        parent = self._nodes[node.item.parent_id or ""]
        parent.children = {k: v for k, v in parent.children.items() if v != node.item.id}

    def _forget(self, node: _Node) -> None:
        for child_id in node.children.values():
            self._forget(self._nodes[child_id])
        del self._nodes[node.item.id]

    def _is_within(self, folder_id: str, ancestor_id: str) -> bool:
        current: str | None = folder_id
        while current is not None:
            if current == ancestor_id:
                return True
            current = self._nodes[current].item.parent_id
        return False


def _sent(source: Path, control: UploadControl | None) -> bytes:
    """The bytes an upload sends, announced before they are stored (as iCloud's backend does)."""
    if control is not None:
        control.check()
    data = source.read_bytes()
    if control is not None:
        control.committing(hashlib.sha256(data).hexdigest())
    return data


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p]
