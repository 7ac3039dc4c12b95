"""A cache dir on a small tmpfs that fills up: writers get ENOSPC, nothing written before is
damaged, clean cached blocks are evicted first, and staged (not yet uploaded) data never is."""

from __future__ import annotations

import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from icloudfs.drive.memory import MemoryDrive
from tests.fuse.conftest import MountFactory
from tests.support.gated import GatedDrive

MiB = 1 << 20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "small-disk"
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


def test_full_cache_disk_gives_enospc_and_damages_nothing(
    small_disk: Path, mount_factory: MountFactory
) -> None:
    drive = MemoryDrive()
    remote = os.urandom(6 * MiB)
    drive.add_file("remote.bin", remote)
    live = mount_factory(drive, cache_dir=small_disk, cache_size=4 * MiB, write_back=3600.0)
    first = os.urandom(3 * MiB)
    (live.path / "first.bin").write_bytes(first)  # staged, not uploaded yet

    with pytest.raises(OSError) as full, open(live.path / "huge.bin", "wb") as handle:
        for _ in range(40):
            handle.write(os.urandom(MiB))
    assert full.value.errno == errno.ENOSPC

    os.unlink(live.path / "huge.bin")
    assert (live.path / "first.bin").read_bytes() == first, "staged data survived the full disk"
    assert (live.path / "remote.bin").read_bytes() == remote, "clean blocks were evicted to make room"
    content = live.fs.stats()["content"]
    assert content["bytes_used"] <= content["bytes_limit"]
    live.settle(30)
    assert drive.content("first.bin") == first
    assert not drive.exists("huge.bin")


def test_uploads_resume_by_themselves_once_the_full_disk_has_room(
    small_disk: Path, mount_factory: MountFactory
) -> None:
    """The write-back's bookkeeping after an upload (forgetting journal rows, saving listings)
    needs the cache disk too. Full then, it must pause with its cause shown, not die: once there
    is room again every queued upload is stored, without a remount."""
    drive = GatedDrive()
    live = mount_factory(drive, cache_dir=small_disk, cache_size=2 * MiB, write_back=0.0)
    gate = drive.hold("upload", "first.txt")
    (live.path / "first.txt").write_bytes(b"first")
    gate.wait_entered()
    filler = open(live.path / "filler.bin", "wb")  # noqa: SIM115 (closed by hand, it may fail)
    with pytest.raises(OSError) as full:
        for _ in range(40):
            filler.write(os.urandom(MiB))
            filler.flush()
    assert full.value.errno == errno.ENOSPC
    gate.open()  # stored now; what follows the upload meets the full disk
    deadline = time.monotonic() + 10
    while "disk full" not in (live.fs.stats()["uploads"]["paused"] or ""):
        assert time.monotonic() < deadline, f"no pause shown: {live.fs.stats()['uploads']}"
        time.sleep(0.1)
    with pytest.raises(OSError):
        filler.close()
    os.unlink(live.path / "filler.bin")
    while os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize < MiB:
        assert time.monotonic() < deadline + 10, "the filler's space never came back"
        time.sleep(0.05)  # the kernel sends the close's RELEASE after close(2) returns
    (live.path / "second.txt").write_bytes(b"second")
    live.settle(30)
    assert drive.content("first.txt") == b"first" and drive.content("second.txt") == b"second"
    deadline = time.monotonic() + 10  # the pause ends when the failed step next works (a settle)
    while live.fs.stats()["uploads"]["paused"] is not None:
        assert time.monotonic() < deadline, f"still paused: {live.fs.stats()['uploads']['paused']}"
        time.sleep(0.1)
