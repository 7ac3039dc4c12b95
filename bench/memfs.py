"""The binding's own limit: a minimal in-memory filesystem on icloudfs's FUSE binding and options.

Same ``Fuse`` subclass, mount options, ``init_with_config`` settings and 1 MiB readahead as an
icloudfs mount; files live in ``bytearray``s. ``--source DIR`` copies a folder in at start.

    python bench/memfs.py MOUNTPOINT [--source DIR]     # until SIGTERM / fusermount3 -u
"""

from __future__ import annotations

import argparse
import errno
import os
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any

import mfusepy

import icloudfs.fuse  # noqa: F401  (pins libfuse 3 before mfusepy loads)
from icloudfs.fuse.binding import Fuse
from icloudfs.fuse.mount import READ_AHEAD_KB

_NOW = time.time_ns()


class Node:
    def __init__(self, folder: bool) -> None:
        self.folder = folder
        self.data = bytearray()
        self.children: dict[str, Node] = {}
        self.mtime = _NOW

    def attrs(self) -> dict[str, Any]:
        mode = (stat.S_IFDIR | 0o755) if self.folder else (stat.S_IFREG | 0o644)
        return {
            "st_mode": mode,
            "st_nlink": 2 if self.folder else 1,
            "st_size": len(self.data),
            "st_uid": os.getuid(),
            "st_gid": os.getgid(),
            "st_blksize": 1 << 20,
            "st_blocks": (len(self.data) + 511) // 512,
            "st_atime": self.mtime,
            "st_mtime": self.mtime,
            "st_ctime": self.mtime,
        }


class MemoryFs(mfusepy.Operations):  # type: ignore[misc]
    use_ns = True

    def __init__(self) -> None:
        self.root = Node(folder=True)
        self._guard = threading.Lock()
        self._handles: dict[int, Node] = {}
        self._next = 1

    def _find(self, path: str) -> Node:
        node = self.root
        for part in [p for p in path.split("/") if p]:
            child = node.children.get(part)
            if child is None:
                raise mfusepy.FuseOSError(errno.ENOENT)
            node = child
        return node

    def _parent(self, path: str) -> tuple[Node, str]:
        head, _, name = path.rstrip("/").rpartition("/")
        return self._find(head), name

    def _handle(self, node: Node) -> int:
        with self._guard:
            self._next += 1
            self._handles[self._next] = node
            return self._next

    def init_with_config(self, conn: Any, config: Any) -> None:  # as icloudfs.fuse.operations
        config.kernel_cache = 0
        config.auto_cache = 1
        config.attr_timeout = config.entry_timeout = 1.0
        config.negative_timeout = 1.0
        config.hard_remove = 1
        conn.max_readahead = 1 << 20
        conn.max_background = 64
        conn.congestion_threshold = 48

    def getattr(self, path: str | None, fh: int | None = None) -> dict[str, Any]:
        node = self._handles[fh] if fh in self._handles else self._find(path or "/")
        return node.attrs()

    def opendir(self, path: str) -> int:
        return self._handle(self._find(path))

    def readdir_with_offset(self, path: str, offset: int, fh: int) -> list[tuple[str, Any]]:
        node = self._handles[fh]
        entries = [(".", node.attrs()), ("..", node.attrs())]
        entries += [(name, child.attrs()) for name, child in node.children.items()]
        return entries[offset:]

    def releasedir(self, path: str, fh: int) -> int:
        self._handles.pop(fh, None)
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        parent, name = self._parent(path)
        parent.children[name] = Node(folder=True)
        return 0

    def unlink(self, path: str) -> int:
        parent, name = self._parent(path)
        parent.children.pop(name, None)
        return 0

    def rmdir(self, path: str) -> int:
        return self.unlink(path)

    def open(self, path: str, flags: int) -> int:
        node = self._find(path)
        if flags & os.O_TRUNC:
            node.data = bytearray()
        return self._handle(node)

    def create(self, path: str, mode: int, fi: Any = None) -> int:
        parent, name = self._parent(path)
        node = parent.children[name] = Node(folder=False)
        return self._handle(node)

    def read(self, path: str, into: memoryview, offset: int, fh: int) -> int:
        """Into libfuse's buffer, as icloudfs reads (the binding's ``read``), with one copy.
        The view is held only for that copy (a ``bytearray`` cannot grow while viewed)."""
        with memoryview(self._handles[fh].data) as data:
            piece = data[offset : offset + len(into)]
            into[: len(piece)] = piece
            return len(piece)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        node = self._handles[fh]
        if offset > len(node.data):
            node.data.extend(bytes(offset - len(node.data)))
        node.data[offset : offset + len(data)] = data
        return len(data)

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
        node = self._handles[fh] if fh in self._handles else self._find(path or "/")
        del node.data[length:]
        return 0

    def utimens(self, path: str | None, times: Any = None, fh: int | None = None) -> int:
        return 0

    def release(self, path: str, fh: int) -> int:
        self._handles.pop(fh, None)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        return {
            "f_bsize": 4096,
            "f_frsize": 4096,
            "f_blocks": 1 << 30,
            "f_bfree": 1 << 29,
            "f_bavail": 1 << 29,
            "f_namemax": 255,
        }


def load(fs: MemoryFs, source: Path) -> None:
    for folder, dirs, files in os.walk(source):
        rel = Path(folder).relative_to(source)
        node = fs._find(str(rel) if str(rel) != "." else "/")
        for name in dirs:
            node.children[name] = Node(folder=True)
        for name in files:
            child = node.children[name] = Node(folder=False)
            child.data = bytearray(Path(folder, name).read_bytes())


def _raise_read_ahead(mountpoint: Path) -> None:
    for _ in range(200):
        if os.path.ismount(mountpoint):
            device = os.stat(mountpoint).st_dev
            bdi = Path(f"/sys/class/bdi/{os.major(device)}:{os.minor(device)}/read_ahead_kb")
            bdi.write_text(str(READ_AHEAD_KB))
            return
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mountpoint", type=Path)
    parser.add_argument("--source", type=Path)
    args = parser.parse_args()
    fs = MemoryFs()
    if args.source:
        load(fs, args.source)
    threading.Thread(target=_raise_read_ahead, args=(args.mountpoint,), daemon=True).start()
    Fuse(
        fs,
        str(args.mountpoint),
        foreground=True,
        fsname="memfs",
        subtype="memfs",
        max_threads=64,
        max_idle_threads=64,
        default_permissions=True,
        auto_unmount=True,
        noatime=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
