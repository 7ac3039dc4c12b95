"""A ``Filesystem`` over a ``MemoryDrive``, driven directly (no kernel)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from icloudfs.drive.memory import MemoryDrive
from icloudfs.fs.core import Filesystem
from tests.support.buffers import filled

FsFactory = Callable[..., Filesystem]


@pytest.fixture
def drive() -> MemoryDrive:
    return MemoryDrive()


@pytest.fixture
def fs_factory(tmp_path: Path, drive: MemoryDrive) -> Iterator[FsFactory]:
    made: list[Filesystem] = []

    def make(**options: Any) -> Filesystem:
        options.setdefault("cache_dir", tmp_path / "cache")
        options.setdefault("cache_size", 64 << 20)
        options.setdefault("write_back", 3600.0)
        fs = Filesystem(drive, **options)
        fs.start()
        made.append(fs)
        return fs

    yield make
    for fs in made:
        fs.close()


@pytest.fixture
def fs(fs_factory: FsFactory) -> Filesystem:
    return fs_factory()


def write_file(fs: Filesystem, path: str, data: bytes) -> None:
    """create + write + release, as ``open(path, 'wb').write(data)`` would."""
    fh = fs.create(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    fs.write(fh, data, 0)
    fs.release(fh)


def read_at(fs: Filesystem, fh: int, size: int, offset: int) -> bytes:
    """``pread`` on a handle, as the FUSE layer asks: into a buffer of ``size`` bytes."""
    return filled(size, lambda into: fs.read_into(fh, into, offset)) or b""


def read_file(fs: Filesystem, path: str) -> bytes:
    """Read to the end in 1 MiB requests, as the kernel would."""
    fh = fs.open(path, os.O_RDONLY)
    try:
        parts: list[bytes] = []
        while part := read_at(fs, fh, 1 << 20, sum(map(len, parts))):
            parts.append(part)
        return b"".join(parts)
    finally:
        fs.release(fh)
