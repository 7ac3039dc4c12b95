"""What the control plane asks of a mount besides POSIX: stats, refresh, uploads, pin, evict."""

from __future__ import annotations

from typing import Any

from icloudfs.cache.content import ContentCache
from icloudfs.cache.metadata import MetadataCache
from icloudfs.cache.writeback import FileNode, Found, WriteBack
from icloudfs.drive import names
from icloudfs.drive.protocol import Drive
from icloudfs.drive.types import Item
from icloudfs.fs.tree import Tree


class Verbs:
    """Control-plane operations on one mounted folder."""

    def __init__(
        self, tree: Tree, meta: MetadataCache, content: ContentCache, writeback: WriteBack, drive: Drive
    ) -> None:
        self._tree, self._meta, self._content, self._writeback, self._drive = (
            tree,
            meta,
            content,
            writeback,
            drive,
        )

    def refresh(self, path: str = "/", recursive: bool = False) -> int:
        """Fetch listings again (the whole subtree if ``recursive``); returns folders fetched."""
        found = self._tree.resolve(path)
        if not _is_folder(found):
            stored = _stored(found)
            if stored is not None:
                fresh = self._drive.stat(stored.id)
                self._meta.put(fresh.parent_id or "", fresh)
            return 0
        assert isinstance(found, Item)
        count, level = 0, [found.id]
        while level:
            batch, level = level[:64], level[64:]
            subfolders = self._meta.refresh(batch)
            count += len(batch)
            if recursive:
                level.extend(f.id for f in subfolders)
        return count

    def uploads(self) -> list[dict[str, Any]]:
        """Pending uploads with their path (as far as known), state, attempts and last error."""
        pending = self._writeback.entries()
        for upload in pending:
            folder = self._meta.path_of(upload.pop("parent_id"), self._tree.top.id)
            name = names.to_local(upload["name"])
            upload["path"] = f"{folder.rstrip('/')}/{name}" if folder is not None else name
        return pending

    def pin(self, path: str, keep: bool = True) -> tuple[int, int]:
        """Keep the files under ``path`` in the content cache for offline use (``keep=False``:
        stop keeping them); returns (files, bytes). Reading them is what fills the cache."""
        found = self._tree.resolve(path)
        files = [] if _is_folder(found) else [found]
        folders = [found] if _is_folder(found) else []
        while folders:
            folder = folders.pop()
            assert isinstance(folder, Item)
            for child in self._tree.children(folder):
                (folders if _is_folder(child) else files).append(child)
        stored = [s for s in map(_stored, files) if s is not None]
        self._content.pin({s.docwsid for s in stored}, keep=keep)
        return len(files), sum(f.item().size if isinstance(f, FileNode) else f.size for f in files)

    def evict(self, path: str | None = "/") -> int:
        """Drop cached content under ``path`` (all with None; never pending writes); bytes freed."""
        if path is None:
            return self._content.clear()
        found = self._tree.resolve(path)
        if isinstance(found, Item) and found.is_folder:
            folders = [found.id, *(f.id for f in self._meta.known_folders(found.id))]
            files = self._meta.known_files(folders)
            for folder_id in folders:
                self._meta.invalidate(folder_id)
        else:
            stored = _stored(found)
            files = [] if stored is None else [stored]
        return self._content.evict({f.docwsid for f in files})


def _is_folder(found: Found) -> bool:
    return isinstance(found, Item) and found.is_folder


def _stored(found: Found) -> Item | None:
    return found.remote if isinstance(found, FileNode) else found
