"""Open files and folders, by the number the kernel hands back to us.

A file handle holds the file's write-back node (the file's identity while it is
open: it follows renames and survives an unlink) and the stored version it reads
while the file has no staged copy, so reads are served from one version until it
turns out stale; and its read-ahead state. A folder handle holds the snapshot
``readdir`` pages through, so offsets stay valid between calls.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any, TypeVar

from icloudfs.cache.reader import ReadStream
from icloudfs.cache.writeback import FileNode
from icloudfs.drive.types import Item
from icloudfs.fs.errors import BadHandle


@dataclass(eq=False)
class FileHandle:
    node: FileNode
    writable: bool
    version: Item | None  # the stored version read while the node has no staged copy
    stream: ReadStream = field(default_factory=ReadStream)
    lock: threading.Lock = field(default_factory=threading.Lock)  # guards ``version``


@dataclass(eq=False)
class FolderHandle:
    folder: Item
    entries: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


_H = TypeVar("_H", FileHandle, FolderHandle)


class HandleTable:
    """Thread-safe map from handle number to handle."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)
        self._open: dict[int, FileHandle | FolderHandle] = {}

    def add(self, handle: FileHandle | FolderHandle) -> int:
        with self._lock:
            number = next(self._numbers)
            self._open[number] = handle
            return number

    def get(self, number: int, kind: type[_H]) -> _H:
        with self._lock:
            handle = self._open.get(number)
        if not isinstance(handle, kind):
            raise BadHandle(f"no open {kind.__name__} {number}")
        return handle

    def find(self, number: int | None) -> FileHandle | FolderHandle | None:
        if number is None:
            return None
        with self._lock:
            return self._open.get(number)

    def pop(self, number: int, kind: type[_H]) -> _H:
        handle = self.get(number, kind)
        with self._lock:
            self._open.pop(number, None)
        return handle

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)
