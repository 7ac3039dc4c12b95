"""``icloudfs pin PATH``: downloads a folder into the cache and keeps it there for offline use."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from icloudfs.config import Settings
from icloudfs.control.server import ControlServer
from icloudfs.control.service import ControlService
from icloudfs.control.tokens import TokenStore
from icloudfs.drive.memory import MemoryDrive
from icloudfs.errors import Unavailable
from tests.fuse.conftest import LiveMount, MountFactory

MiB = 1 << 20


@pytest.fixture
def controlled(mount_factory: MountFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveMount]:
    drive = MemoryDrive()
    for n in range(3):
        drive.add_file(f"docs/case{n}.bin", os.urandom(MiB))
    drive.add_file("other.bin", os.urandom(6 * MiB))
    live = mount_factory(drive, cache_size=5 * MiB)
    server = ControlServer(
        ControlService(Settings(control_addr="127.0.0.1:0"), TokenStore(), filesystem=live.fs)
    )
    server.start()
    monkeypatch.setenv("ICLOUDFS_CONTROL_ADDR", f"127.0.0.1:{server.port}")
    yield live
    server.stop()


def icloudfs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "icloudfs", *args], capture_output=True, text=True, timeout=120
    )


def settled_reads(drive: MemoryDrive) -> int:
    """The drive's read count once it has stopped moving for half a second."""
    while True:
        before = drive.calls["read"]
        time.sleep(0.5)
        if drive.calls["read"] == before:
            return before


def test_pinned_files_survive_eviction_and_read_offline(controlled: LiveMount) -> None:
    drive = controlled.drive
    assert isinstance(drive, MemoryDrive)
    done = icloudfs("pin", str(controlled.path / "docs"))
    assert done.returncode == 0, done.stderr
    assert "3 file(s), 3.1 MB kept for offline use" in done.stdout
    assert "100%" in done.stderr
    (controlled.path / "other.bin").read_bytes()  # 6 MiB through a 5 MiB cache: evicts what it may
    assert controlled.fs.content.pinned_bytes() == 3 * MiB, "pinned blocks were not evicted"
    drive.fail("read", Unavailable("offline"), times=1000)
    reads_before = settled_reads(drive)  # other.bin's read-ahead may still be under way
    for n in range(3):
        assert (controlled.path / "docs" / f"case{n}.bin").read_bytes() == drive.content(f"docs/case{n}.bin")
    assert drive.calls["read"] == reads_before, "served from the cache, not the drive"

    undone = icloudfs("unpin", str(controlled.path / "docs"))
    assert undone.returncode == 0 and "may be evicted again" in undone.stdout
